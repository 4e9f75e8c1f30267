"""Orchestration of a marker study: markers per split, models in chunks, results.

:func:`run_study` is a generator: it yields :class:`Progress` events while it
trains and scores the models chunk by chunk, writes each finished chunk to
the output folder (if one is given) and finally returns a
:class:`StudyResult`.  :func:`run_study_all` drains it for scripts; the
command line and the explorer consume the events to show progress.  Because
every chunk is stored atomically as soon as it finishes, an interrupted
study (Ctrl-C, Stop, ``kill -9``) resumes where it stopped when run again
with the same output folder: finished models are read back, not recomputed.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from flimexplore.engine.batched import DEFAULT_MEMORY_MB
from flimexplore.engine.scores import METRICS
from flimexplore.errors import ConfigError, MarkerError
from flimexplore.markers import MARGIN_FACTOR, MarkerSet, admissible_centres, sample_markers
from flimexplore.study.config import StudyConfig
from flimexplore.study.context import StudyContext
from flimexplore.study.heatmap import HeatLayer, paint_heatmap, render_heatmap
from flimexplore.study.progress import Clock, Progress, StopStudy, evaluate_reporting, time_left
from flimexplore.study.store import ResultStore

__all__ = ["Progress", "StopStudy", "StudyResult", "dense_positions", "model_seed", "plan_markers", "run_study", "run_study_all"]

Engine = Literal["batched", "sequential"]
MODEL_CHUNK = 32


def model_seed(seed: int, image: int, split: int, bg_index: int) -> int:
    """The decision-layer seed of one model, derived from the study seed."""
    return int(np.random.SeedSequence([seed, image, split, bg_index]).generate_state(1)[0])


def dense_positions(mask: NDArray[np.bool_], obj: NDArray[np.integer], radius: int, spacing: int | None = None) -> NDArray[np.int64]:
    """Every admissible background centre on a regular grid (dense marker maps).

    Centres keep the paper's margins: ``1.5 r`` from the image border and
    from the object marker; they lie on the background and on a grid of the
    given spacing (default ``r``), so neighbouring disks overlap.

    Returns
    -------
    centres : ndarray of shape (M, 2), int64
    """
    step = int(radius if spacing is None else spacing)
    if step <= 0:
        raise MarkerError(f"dense grid spacing must be positive, got {spacing!r}")
    ok = admissible_centres(mask, radius) & ~mask
    rr, cc = np.nonzero(ok)
    on_grid = (rr % step == 0) & (cc % step == 0)
    far = (rr - obj[0]) ** 2 + (cc - obj[1]) ** 2 >= (MARGIN_FACTOR * radius) ** 2
    keep = on_grid & far
    if not keep.any():
        raise MarkerError(f"no background grid position fits with radius {radius} and spacing {step}")
    return np.stack([rr[keep], cc[keep]], axis=1).astype(np.int64)


def plan_markers(ctx: StudyContext) -> list[MarkerSet]:
    """Markers of every split: one object marker and its background markers each."""
    cfg = ctx.config
    sets = []
    for s in range(cfg.splits):
        rng = np.random.default_rng([cfg.seed, cfg.image, s])
        ms = sample_markers(ctx.mask, 1 if cfg.dense else cfg.n_bg, cfg.radius, rng)
        if cfg.dense:
            ms = MarkerSet(ms.obj, dense_positions(ctx.mask, ms.obj, cfg.radius, cfg.dense_spacing), ms.radius)
        sets.append(ms)
    return sets


@dataclass
class StudyResult:
    """Everything a finished (or stopped) study produced.

    Attributes
    ----------
    config : StudyConfig
        Resolved settings.
    markers : list of MarkerSet
        One per split.
    rows : list of dict
        One per finished model (columns of :data:`flimexplore.study.store.COLUMNS`).
    arrays : dict of int to dict
        Parameters of each finished model, keyed by model id.
    device : str
    elapsed_s : float
    complete : bool
        False when the study was stopped before its last model.
    """

    config: StudyConfig
    markers: list[MarkerSet]
    rows: list[dict[str, Any]]
    arrays: dict[int, dict[str, NDArray]] = field(repr=False)
    device: str
    elapsed_s: float
    complete: bool
    context: StudyContext = field(repr=False)

    def column(self, name: str, split: int | None = None) -> NDArray:
        """One results column as an array (optionally of one split)."""
        return np.array([r[name] for r in self.rows if split is None or r["split"] == split])

    def heatmap(self, split: int, metric: str = "val_dice") -> HeatLayer:
        """The paper's heatmap of one split's background markers."""
        rows = [r for r in self.rows if r["split"] == split]
        centres = np.array([[r["bg_row"], r["bg_col"]] for r in rows]).reshape(-1, 2)
        return paint_heatmap(self.context.mask.shape, centres, np.array([r[metric] for r in rows]), self.config.radius)

    def summary(self) -> dict[str, Any]:
        """Summary numbers (what ``summary.json`` holds)."""
        val = self.column("val_dice")
        out: dict[str, Any] = {
            "n_models": len(self.rows),
            "complete": self.complete,
            "device": self.device,
            "elapsed_s": round(self.elapsed_s, 3),
            "config": self.config.to_dict(),
        }
        if len(val):
            test = self.column("test_dice")
            out |= {
                "val_dice_min": float(val.min()), "val_dice_max": float(val.max()),
                "val_dice_mean": float(val.mean()), "test_dice_min": float(test.min()),
                "test_dice_max": float(test.max()), "test_dice_mean": float(test.mean()),
                "splits": [
                    {"split": s, "n_models": int(len(self.column("val_dice", s))),
                     "val_dice_min": float(self.column("val_dice", s).min()),
                     "val_dice_max": float(self.column("val_dice", s).max())}
                    for s in range(self.config.splits) if len(self.column("val_dice", s))
                ],
            }
        return out


def _rows(ctx: StudyContext, ids: list[int], table: list[tuple[int, int, NDArray, NDArray, int]], scores: Any) -> list[dict[str, Any]]:
    rows = []
    for j, m in enumerate(ids):
        split, k, obj, bg, seed = table[m]
        row = {
            "model": m, "image": ctx.config.image, "image_stem": ctx.stem, "split": split,
            "bg_index": k, "obj_row": int(obj[0]), "obj_col": int(obj[1]), "bg_row": int(bg[0]),
            "bg_col": int(bg[1]), "radius": ctx.config.radius, "seed": seed,
            "best_epoch": int(scores.best_epoch[j]),
        }
        for metric in METRICS:  # rounded as results.csv stores them: resumed and fresh rows are equal
            row[f"val_{metric}"] = round(float(scores.val[metric][j]), 6)
            row[f"test_{metric}"] = round(float(scores.test[metric][j]), 6)
        bad = [k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)]
        if bad:  # scores come from confusion counts and are always defined; never store nonsense
            raise FloatingPointError(f"model {m} has non-finite scores {bad}; this is a bug in flimexplore")
        rows.append(row)
    return rows


def run_study(
    config: StudyConfig,
    out: str | Path | None = None,
    *,
    device: str = "auto",
    engine: Engine = "batched",
    model_chunk: int = MODEL_CHUNK,
    memory_mb: float = DEFAULT_MEMORY_MB,
    context: StudyContext | None = None,
    heatmap_scale: Literal["fixed", "study"] = "fixed",
) -> Generator[Progress, None, StudyResult]:
    """Run a marker study, yielding progress, returning the result.

    Parameters
    ----------
    config : StudyConfig
    out : path-like, optional
        Output folder; finished chunks are stored there and a rerun resumes.
    device : str, optional
        ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    engine : {"batched", "sequential"}, optional
        The batched engine, or the one-model-at-a-time reference path.
    model_chunk : int, optional
        Models trained together; chunks are also the unit of saving.
    memory_mb : float, optional
        Rough bound of the engine's working memory.
    context : StudyContext, optional
        Reuse prepared data (the explorer does).
    heatmap_scale : {"fixed", "study"}, optional
        Colour range of the PNG heatmaps written to ``out``: validation Dice
        0-1 (``fixed``, the default: figures of different studies compare) or
        the study's own min-max (``study``: close values are told apart).
        It changes only the PNG files, never the results.

    Yields
    ------
    Progress

    Returns
    -------
    StudyResult

    Raises
    ------
    ConfigError
        If a setting, ``engine``, ``model_chunk`` or ``memory_mb`` is out of
        range; raised before any work.
    DatasetError, MarkerError, DeviceError
        If the data, the markers or the device do not fit the settings;
        raised before the output folder is touched.
    ResumeError, OutputError
        If ``out`` holds finished models of a study with other settings, or
        cannot be written (nothing finished is lost: every chunk is stored
        atomically as soon as it finishes).

    Notes
    -----
    ``gen.throw(StopStudy())`` at any yielded event ends the study early and
    returns the partial result; the stored rows stay and a rerun resumes.
    """
    t0 = time.perf_counter()
    config.validate()
    _check_run_options(engine, model_chunk, memory_mb, heatmap_scale)
    ctx = context if context is not None and context.config.to_dict() == _resolved(config, context).to_dict() else StudyContext(config, device)
    cfg = ctx.config
    markers = plan_markers(ctx)
    table = [
        (s, k, ms.obj, bg, model_seed(cfg.seed, cfg.image, s, k))
        for s, ms in enumerate(markers)
        for k, bg in enumerate(ms.bg)
    ]
    total = len(table)
    store = ResultStore(out, cfg, ctx.identity()) if out is not None else None
    rows: dict[int, dict[str, Any]] = {}
    arrays: dict[int, dict[str, NDArray]] = {}
    step = 1 if engine == "sequential" else int(model_chunk)
    complete = False
    try:
        if store is not None:
            arrays = store.load_arrays()
            # a model counts as done only with both its row and its parameters
            rows = {r["model"]: r for r in store.rows() if r["model"] in arrays}
        note = "".join(f"; note: {part}" for part in ctx.dataset.description.split("; ") if "binarised" in part)
        yield Progress(
            len(rows), total,
            f"marked image {cfg.image}: {_marked_name(ctx)} ({ctx.mask.shape[0]}x{ctx.mask.shape[1]}) of {ctx.dataset.name}; "
            f"{total} models on {ctx.device} ({engine}); {len(rows)} already done{note}",
        )
        clock = Clock(total - len(rows))
        for lo in range(0, total, step):
            ids = [m for m in range(lo, min(total, lo + step)) if m not in rows]
            if not ids:
                continue
            obj = np.stack([table[m][2] for m in ids])
            bg = np.stack([table[m][3] for m in ids])
            seeds = [table[m][4] for m in ids]
            stop = False
            clock.start_chunk(len(ids))
            if engine == "sequential":
                scores = ctx.evaluate_reference(obj, bg, seeds)
            else:
                scores, stop = yield from evaluate_reporting(ctx, obj, bg, seeds, memory_mb, clock, len(rows), total, ids)
            new = _rows(ctx, ids, table, scores)
            chunk_arrays = scores.arrays
            if store is not None:
                store.add(new, chunk_arrays)
            for j, r in enumerate(new):
                rows[r["model"]] = r
                arrays[r["model"]] = {k: v[j] for k, v in chunk_arrays.items()}
            best = max(r["val_dice"] for r in new)
            eta = clock.end_chunk()
            if stop:
                raise StopStudy
            yield Progress(len(rows), total, f"models {ids[0]}-{ids[-1]} done (best val Dice {best:.3f}){time_left(eta)}", eta)
        complete = True
    except StopStudy:
        pass
    finally:
        result = StudyResult(
            cfg, markers, [rows[k] for k in sorted(rows)], arrays, str(ctx.device),
            time.perf_counter() - t0, complete, ctx,
        )
        if store is not None:
            try:
                if complete:
                    _finish(store, result, heatmap_scale)
            finally:
                store.close()
    return result


def _marked_name(ctx: StudyContext) -> str:
    """The marked image's file (relative to the dataset folder) or, for a preset, its name."""
    root = Path(ctx.config.dataset)
    if root.is_dir():
        for sub in ("images", "orig"):
            for f in sorted((root / sub).glob(f"{ctx.stem}.*")):
                return f"{sub}/{f.name}"
    return ctx.stem


def _check_run_options(engine: str, model_chunk: int, memory_mb: float, heatmap_scale: str = "fixed") -> None:
    problems = []
    if heatmap_scale not in ("fixed", "study"):
        problems.append(f"heatmap_scale (--scale) must be 'fixed' or 'study', got {heatmap_scale!r}")
    if engine not in ("batched", "sequential"):
        problems.append(f"engine (--engine) must be 'batched' or 'sequential', got {engine!r}")
    if isinstance(model_chunk, bool) or not isinstance(model_chunk, numbers.Integral) or model_chunk < 1:
        problems.append(f"model_chunk (--chunk) must be an integer >= 1, got {model_chunk!r}")
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, numbers.Real) or not math.isfinite(memory_mb) or memory_mb <= 0:
        problems.append(f"memory_mb (--memory-mb) must be a finite number > 0, got {memory_mb!r}")
    if problems:
        raise ConfigError("invalid run options: " + "; ".join(problems))


def _resolved(config: StudyConfig, ctx: StudyContext) -> StudyConfig:
    return config.replace(
        n_bg=config.n_bg if config.n_bg is not None else ctx.dataset.n_bg,
        radius=config.radius if config.radius is not None else ctx.dataset.radius,
    )


def _finish(store: ResultStore, result: StudyResult, scale: Literal["fixed", "study"] = "fixed") -> None:
    """Write the heatmap figures (one per object marker, and the overview) and summary.json."""
    from flimexplore.figures.heatmap_png import colour_range, heatmap_split_figure, overview_figure, png_bytes

    vrange = colour_range(result.column("val_dice"), scale)
    name = _marked_name(result.context)
    panels = []
    for s, ms in enumerate(result.markers):
        rows = [r for r in result.rows if r["split"] == s]
        bg = np.array([[r["bg_row"], r["bg_col"]] for r in rows]).reshape(-1, 2)
        dice = np.array([r["val_dice"] for r in rows], dtype=np.float64)
        rgb = render_heatmap(result.context.image, result.heatmap(s), None, ms.radius, *vrange)
        panels.append((rgb, ms.obj, bg, dice))
        fig = heatmap_split_figure(
            rgb, ms.obj, bg, dice, ms.radius, vrange=vrange, scale=scale,
            dataset=result.context.dataset.name, image_name=name, split=s,
        )
        store.write_bytes(f"heatmap_split{s}.png", png_bytes(fig))
    fig = overview_figure(
        *zip(*panels, strict=True), result.config.radius, vrange=vrange, scale=scale,
        dataset=result.context.dataset.name, image_name=name,
    )
    store.write_bytes("heatmap_overview.png", png_bytes(fig))
    store.write_json("summary.json", result.summary())


def run_study_all(config: StudyConfig, out: str | Path | None = None, **kwargs: Any) -> StudyResult:
    """Run a study to the end, ignoring progress events (see :func:`run_study`)."""
    gen = run_study(config, out, **kwargs)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
