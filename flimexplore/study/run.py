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

import functools
import math
import numbers
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from flimexplore.colormap import OBJECT_HEX, width_colors
from flimexplore.engine.batched import DEFAULT_MEMORY_MB
from flimexplore.engine.precision import check_precision, precision_scope
from flimexplore.engine.scores import METRICS
from flimexplore.errors import ConfigError, MarkerError
from flimexplore.markers import (
    MARGIN_FACTOR,
    MarkerGroups,
    MarkerPixels,
    MarkerSet,
    ObjectMarkerSet,
    admissible_centres,
    marker_union,
    sample_marker_groups,
    sample_markers,
    sample_object_markers,
)
from flimexplore.study.config import StudyConfig
from flimexplore.study.context import PairScores, StudyContext, _merge
from flimexplore.study.heatmap import HeatLayer, paint_heatmap, paint_pixels, render_heatmap
from flimexplore.study.marked import ImageMarkers
from flimexplore.study.progress import Clock, Progress, StopStudy, evaluate_reporting, time_left
from flimexplore.study.readout_summary import readout_summary
from flimexplore.study.readout_table import TRAINED, join_readouts, other_readouts
from flimexplore.study.readouts import read_out, readouts_to_do
from flimexplore.study.repeats import varied
from flimexplore.study.store import ResultStore, aggregate_fits, result_columns
from flimexplore.study.uncertainty import ALPHA, position_summary

__all__ = [
    "Progress", "StopStudy", "StudyResult", "dense_positions", "model_chunks", "model_rows", "model_seed",
    "ModelEntry", "evaluate_models", "model_table", "plan_markers", "run_study", "run_study_all",
]

REPORT_INSIDE_PIXELS = 16 * 2**20
"""Validation and test pixels above which a chunk is scored in a worker thread that reports progress inside
the chunk (big images); below it a chunk takes about a second and runs in the calling thread."""
Engine = Literal["batched", "sequential"]
MODEL_CHUNK = 32
USER_SPLIT = -1
"""``split`` and ``bg_index`` of the row of the user's own markers (results.csv)."""


def model_seed(seed: int, image: int, split: int, bg_index: int) -> int:
    """The decision-layer seed of one model, derived from the study seed."""
    return int(np.random.SeedSequence([seed, image, split, bg_index]).generate_state(1)[0])


def dense_positions(
    mask: NDArray[np.bool_], obj: NDArray[np.integer], radius: int, spacing: int | None = None, *, on_object: bool = False
) -> NDArray[np.int64]:
    """Every admissible background centre on a regular grid (dense marker maps).

    Centres keep the paper's margins: ``1.5 r`` from the image border and
    from the fixed marker ``obj``; they lie on the background (on the object
    with ``on_object``, for ``--vary object``, where ``obj`` is the fixed
    background marker) and on a grid of the given spacing (default ``r``),
    so neighbouring disks overlap.

    Returns
    -------
    centres : ndarray of shape (M, 2), int64
    """
    step = int(radius if spacing is None else spacing)
    if step <= 0:
        raise MarkerError(f"dense grid spacing must be positive, got {spacing!r}")
    ok = admissible_centres(mask, radius) & (mask if on_object else ~mask)
    rr, cc = np.nonzero(ok)
    on_grid = (rr % step == 0) & (cc % step == 0)
    far = (rr - obj[0]) ** 2 + (cc - obj[1]) ** 2 >= (MARGIN_FACTOR * radius) ** 2
    keep = on_grid & far
    if not keep.any():
        where = "object" if on_object else "background"
        raise MarkerError(f"no {where} grid position fits with radius {radius} and spacing {step}")
    return np.stack([rr[keep], cc[keep]], axis=1).astype(np.int64)


def plan_markers(ctx: StudyContext) -> list[MarkerSet] | list[MarkerGroups] | list[ObjectMarkerSet]:
    """Markers of every split: one object marker and its background markers each.

    With ``markers_per_model = (K, M)`` other than ``(1, 1)`` each split is a
    :class:`~flimexplore.markers.MarkerGroups`: K object disks shared by the
    split's ``n_bg`` models, each with its own M background disks.  With
    ``vary="object"`` each split is an :class:`~flimexplore.markers.ObjectMarkerSet`:
    one background marker and ``n_bg`` object markers (every object grid
    position with ``dense``).  Split ``s`` samples with the generator seeded
    by ``(seed, image, s)``.
    """
    cfg = ctx.config
    if cfg.vary == "object":
        return [_plan_objects(ctx, s) for s in range(cfg.splits)]
    if tuple(cfg.markers_per_model) != (1, 1):
        return [
            sample_marker_groups(ctx.mask, cfg.n_bg, cfg.markers_per_model, cfg.radius, np.random.default_rng([cfg.seed, cfg.image, s]))
            for s in range(cfg.splits)
        ]
    sets = []
    for s in range(cfg.splits):
        rng = np.random.default_rng([cfg.seed, cfg.image, s])
        ms = sample_markers(ctx.mask, 1 if cfg.dense else cfg.n_bg, cfg.radius, rng)
        if cfg.dense:
            ms = MarkerSet(ms.obj, dense_positions(ctx.mask, ms.obj, cfg.radius, cfg.dense_spacing), ms.radius)
        sets.append(ms)
    return sets


def model_chunks(total: int, step: int, done: set[int] | dict[int, Any]) -> list[list[int]]:
    """Ids of the models still to compute, in the chunks a study trains together."""
    chunks = [[m for m in range(lo, min(total, lo + step)) if m not in done] for lo in range(0, total, step)]
    return [c for c in chunks if c]
def _plan_objects(ctx: StudyContext, split: int) -> ObjectMarkerSet:
    cfg = ctx.config
    rng = np.random.default_rng([cfg.seed, cfg.image, split])
    ms = sample_object_markers(ctx.mask, 1 if cfg.dense else cfg.n_bg, cfg.radius, rng)
    if cfg.dense:
        grid = dense_positions(ctx.mask, ms.background, cfg.radius, cfg.dense_spacing, on_object=True)
        ms = ObjectMarkerSet(ms.background, grid, ms.radius)
    return ms


@dataclass
class StudyResult:
    """Everything a finished (or stopped) study produced.

    Attributes
    ----------
    config : StudyConfig
        Resolved settings.
    markers : list of MarkerSet, of MarkerGroups or of ObjectMarkerSet
        One per split (:class:`ObjectMarkerSet` when the study varies the
        object marker; ``flimexplore score`` of a seeds file gives a
        :class:`MarkerPixels`).
    rows : list of dict
        One per finished model (columns of :data:`flimexplore.study.store.COLUMNS`);
        the model of the user's own markers (if any) is last, with ``split``
        and ``bg_index`` -1 and the marked pixels nearest each class's centre
        as its object and background positions.
    arrays : dict of int to dict
        Parameters of each finished model, keyed by model id.
    device : str
    elapsed_s : float
    complete : bool
        False when the study was stopped before its last model.
    context : StudyContext
    fits : list of dict
        Every fit of every finished model (columns of
        :data:`flimexplore.study.store.FIT_COLUMNS`), sorted by model and
        repeat; with one fit per model, one per row.
    readouts : list of dict
        With other readouts (``config.decoders``, ``config.attention``): the
        rows of ``results.csv``, one per model and readout, with a ``decoder``
        column and the attention scores (:mod:`flimexplore.study.readouts`);
        empty otherwise.  ``rows`` stays the trained layer's.
    """

    config: StudyConfig
    markers: list[MarkerSet] | list[MarkerGroups] | list[ObjectMarkerSet] | list[MarkerPixels]
    rows: list[dict[str, Any]]
    arrays: dict[int, dict[str, NDArray]] = field(repr=False)
    device: str
    elapsed_s: float
    complete: bool
    context: StudyContext = field(repr=False)
    fits: list[dict[str, Any]] = field(default_factory=list, repr=False)
    readouts: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def decoder_rows(self, decoder: str = TRAINED) -> list[dict[str, Any]]:
        """The rows of one readout: from :attr:`readouts` when the study has them, else ``rows`` (trained only)."""
        if not self.readouts:
            if decoder != TRAINED:
                raise ConfigError(f"this study has no {decoder!r} readout; run it with --decoders {TRAINED},{decoder}")
            return self.rows
        rows = [r for r in self.readouts if r["decoder"] == decoder]
        if not rows and decoder not in self.config.decoders:
            raise ConfigError(f"this study has no {decoder!r} readout (it has {', '.join(self.config.decoders)})")
        return rows

    def for_decoder(self, decoder: str) -> StudyResult:
        """The same study seen through one readout: ``rows`` are that readout's (heatmaps, columns, figures)."""
        return replace(self, rows=self.decoder_rows(decoder))

    def column(self, name: str, split: int | None = None) -> NDArray:
        """One results column as an array (optionally of one split; -1 is the user's model)."""
        return np.array([r[name] for r in self.rows if split is None or r["split"] == split])

    def heatmap(self, split: int, metric: str = "val_dice") -> HeatLayer:
        """The paper's heatmap of one split's varied markers (every disk of a model in its score).

        The varied markers are the background markers, or the object markers
        of a ``vary="object"`` study.  ``split = -1`` paints the background
        pixels of the user's own markers.
        """
        shape = self.context.mask.shape
        rows = [r for r in self.rows if r["split"] == split]
        if split == USER_SPLIT:
            markers = self.context.user_markers
            score = rows[0][metric] if rows else float("nan")
            return paint_pixels(shape, markers[markers[:, 2] == 0, :2] if markers is not None else np.zeros((0, 2)), score)
        ms = self.markers[split]
        if isinstance(ms, ImageMarkers):  # markers on several marked images: those of the study's marked image
            ms = ms.pixels_on(self.config.image)
        if isinstance(ms, MarkerPixels):
            return paint_pixels(shape, ms.bg, rows[0][metric] if rows else float("nan"))
        if isinstance(ms, ObjectMarkerSet):
            centres = np.array([[r["obj_row"], r["obj_col"]] for r in rows]).reshape(-1, 2)
            return paint_heatmap(shape, centres, np.array([r[metric] for r in rows]), self.config.radius)
        if isinstance(ms, MarkerGroups):
            centres = np.concatenate([ms.bg[r["bg_index"]] for r in rows]).reshape(-1, 2)
            scores = np.repeat([r[metric] for r in rows], ms.bg.shape[1])
            return paint_heatmap(shape, centres, scores, self.config.radius)
        centres = np.array([[r["bg_row"], r["bg_col"]] for r in rows]).reshape(-1, 2)
        return paint_heatmap(shape, centres, np.array([r[metric] for r in rows]), self.config.radius)

    def summary(self) -> dict[str, Any]:
        """Summary numbers (what ``summary.json`` holds).

        Minimum, maximum and mean are over the sampled models; the model of
        the user's markers, if any, is reported apart as ``user_markers``.
        """
        val = np.array([r["val_dice"] for r in self.rows if r["split"] >= 0])
        ctx = self.context
        out: dict[str, Any] = {
            "n_models": len(self.rows),
            "complete": self.complete,
            "device": self.device,
            "elapsed_s": round(self.elapsed_s, 3),
            "config": self.config.to_dict(),
            "n_val_images_without_object": ctx.without_object("val"),
            "n_test_images_without_object": ctx.without_object("test"),
        }
        user = [r for r in self.rows if r["split"] == USER_SPLIT]
        if user and ctx.user_markers is not None:
            labels = ctx.user_markers[:, 2]
            out["user_markers"] = {
                "source": ctx.user_markers_source, "model": user[0]["model"],
                "n_object_pixels": int((labels == 1).sum()), "n_background_pixels": int((labels == 0).sum()),
                "val_dice": user[0]["val_dice"], "test_dice": user[0]["test_dice"],
            }
        if self.config.repeats > 1 and self.complete:
            out["repeats"] = self.repeat_summary()
        if self.readouts:
            out["readouts"] = readout_summary(self.readouts, self.config.decoders)
        if len(val):
            test = np.array([r["test_dice"] for r in self.rows if r["split"] >= 0])
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


    def repeat_summary(self) -> dict[str, Any]:
        """What the repeated fits say (``summary.json["repeats"]``): spread, position share, ties with the best.

        Per split (one fixed marker and its varied markers) and over all
        sampled models: :func:`~flimexplore.study.uncertainty.position_summary`;
        ``rank_agreement_halves`` is Spearman's rho between the markers' mean
        Dice over the first and over the second half of the fits.
        """
        from scipy.stats import spearmanr

        cfg, n_rep = self.config, self.config.repeats
        sampled = [f for f in self.fits if f["split"] >= 0 and f["repeat"] < n_rep]
        rows = [r for r in self.rows if r["split"] >= 0]
        what = "object markers" if cfg.vary == "object" else "background markers"
        sd = np.array([r["val_dice_sd"] for r in rows], dtype=np.float64)
        width = np.array([r["val_dice_hi"] - r["val_dice_lo"] for r in rows], dtype=np.float64)
        out: dict[str, Any] = {
            "n_repeats": n_rep, "repeat_over": cfg.repeat_over, "varied": list(varied(cfg.repeat_over, cfg.clustering)),
            "interval": f"Student t, 95 %, {n_rep - 1} df, of each marker's mean validation Dice over its fits",
            "ties": f"Welch t-test against the best marker, two-sided, Holm-corrected, alpha {ALPHA}",
            "val_dice_sd_median": _rounded(np.nanmedian(sd)) if len(sd) else None,
            "val_dice_sd_max": _rounded(np.nanmax(sd)) if len(sd) else None,
            "interval_width_median": _rounded(np.nanmedian(width)) if len(width) else None,
        }
        half = n_rep // 2
        by_model: dict[int, list[float]] = {}
        for f in sorted(sampled, key=lambda f: (f["model"], f["repeat"])):
            by_model.setdefault(f["model"], []).append(f["val_dice"])
        full = [v for v in by_model.values() if len(v) == n_rep]
        if len(full) > 2:
            a, b = np.array([np.mean(v[:half]) for v in full]), np.array([np.mean(v[half:]) for v in full])
            rho = spearmanr(a, b).statistic if np.ptp(a) > 0 and np.ptp(b) > 0 else float("nan")
            out["rank_agreement_halves"] = _rounded(rho)
        out["all_models"] = position_summary(sampled, n_rep, seed=cfg.seed, what="models")
        out["splits"] = [
            {"split": s} | (position_summary([f for f in sampled if f["split"] == s], n_rep, seed=cfg.seed, what=what) or {})
            for s in range(len(self.markers))
        ]
        return out


def _rounded(value: float) -> float | None:
    return round(float(value), 6) if math.isfinite(float(value)) else None


@dataclass(frozen=True, eq=False)
class ModelEntry:
    """One model of a study: its place, its marker positions (first disk) and, for non-disk models, its pixels."""

    split: int
    k: int
    obj: NDArray[np.int64]  # (2,) position written to results.csv
    bg: NDArray[np.int64]
    seed: int
    pixels: tuple[NDArray[np.int64], NDArray[np.int64]] | ImageMarkers | None = None  # (object, background) pixels


def model_table(
    ctx: StudyContext, markers: Sequence[MarkerSet | MarkerGroups | ObjectMarkerSet | MarkerPixels]
) -> list[ModelEntry]:
    """Every model of the study in model-id order: the sampled ones by split, then the user's markers."""
    cfg, shape = ctx.config, ctx.mask.shape
    table = []
    for s, ms in enumerate(markers):
        if isinstance(ms, MarkerGroups):
            obj_px = marker_union(ms.obj, cfg.radius, shape)
            for k, bg in enumerate(ms.bg):
                px = (obj_px, marker_union(bg, cfg.radius, shape))
                table.append(ModelEntry(s, k, ms.obj[0], bg[0], model_seed(cfg.seed, cfg.image, s, k), px))
        elif isinstance(ms, ObjectMarkerSet):
            table += [ModelEntry(s, k, obj, ms.background, model_seed(cfg.seed, cfg.image, s, k)) for k, obj in enumerate(ms.objects)]
        elif isinstance(ms, ImageMarkers):  # markers on several marked images
            table.append(ModelEntry(s, 0, *ms.positions(), model_seed(cfg.seed, cfg.image, s, 0), ms))
        elif isinstance(ms, MarkerPixels):
            px = (np.asarray(ms.obj, np.int64), np.asarray(ms.bg, np.int64))
            table.append(ModelEntry(s, 0, _central(px[0]), _central(px[1]), model_seed(cfg.seed, cfg.image, s, 0), px))
        else:
            table += [ModelEntry(s, k, ms.obj, bg, model_seed(cfg.seed, cfg.image, s, k)) for k, bg in enumerate(ms.bg)]
    if ctx.user_markers is not None:
        m = ctx.user_markers
        obj_px, bg_px = m[m[:, 2] == 1, :2], m[m[:, 2] == 0, :2]
        seed = model_seed(cfg.seed, cfg.image, 2**31 - 1, 0)  # apart from every split's seeds
        table.append(ModelEntry(USER_SPLIT, USER_SPLIT, _central(obj_px), _central(bg_px), seed, (obj_px, bg_px)))
    return table


def _central(pixels: NDArray[np.int64]) -> NDArray[np.int64]:
    """The pixel nearest the centroid of a set of pixels (where a marker of any shape is said to be)."""
    d = ((pixels - pixels.mean(axis=0)) ** 2).sum(axis=1)
    return pixels[int(np.argmin(d))]


def evaluate_models(
    ctx: StudyContext, models: list[ModelEntry], engine: str, memory_mb: float,
    progress: Callable[[int, int], None] | None = None, precision: str = "fp32",
    repeats: Sequence[int] | None = None,
) -> PairScores:
    """Scores of some models, in order: disk pairs by :meth:`StudyContext.evaluate` (or the reference path),
    markers of any shape by :meth:`StudyContext.evaluate_markers`, in the given arithmetic ``precision``;
    each fitted once per entry of ``repeats`` (default: every repeat of the study)."""
    with precision_scope(precision, ctx.device):
        return _evaluate_in_scope(ctx, models, engine, memory_mb, progress, ctx.all_repeats if repeats is None else repeats)


def _evaluate_in_scope(
    ctx: StudyContext, models: list[ModelEntry], engine: str, memory_mb: float,
    progress: Callable[[int, int], None] | None, repeats: Sequence[int],
) -> PairScores:
    disks = [j for j, m in enumerate(models) if m.pixels is None]
    several = [j for j, m in enumerate(models) if isinstance(m.pixels, ImageMarkers)]
    shaped = [j for j, m in enumerate(models) if m.pixels is not None and j not in several]
    parts, groups = [], []
    if disks:
        obj = np.stack([models[j].obj for j in disks])
        bg = np.stack([models[j].bg for j in disks])
        seeds = [models[j].seed for j in disks]
        if engine == "sequential":
            parts.append(ctx.evaluate_reference(obj, bg, seeds, repeats))
        else:
            parts.append(ctx.evaluate(obj, bg, seeds, memory_mb, progress=progress, repeats=repeats))
        groups.append(np.array(disks))
    if shaped:
        parts.append(
            ctx.evaluate_markers(
                [models[j].pixels[0] for j in shaped],  # type: ignore[index]
                [models[j].pixels[1] for j in shaped],  # type: ignore[index]
                [models[j].seed for j in shaped],
                memory_mb,
                repeats,
            )
        )
        groups.append(np.array(shaped))
    if several:
        parts.append(ctx.evaluate_image_markers([models[j].pixels for j in several], [models[j].seed for j in several],  # type: ignore[misc]
                                                memory_mb, repeats))
        groups.append(np.array(several))
    if len(parts) == 1:
        return parts[0]
    if engine == "sequential":  # the reference path keeps no parameters: keep only what both have
        keys = set.intersection(*(set(p.arrays) for p in parts))
        parts = [PairScores(p.best_epoch, p.val, p.test, {k: p.arrays[k] for k in keys}, p.fits) for p in parts]
    return _merge(parts, groups)


def model_rows(ctx: StudyContext, ids: list[int], table: list[ModelEntry], scores: Any) -> list[dict[str, Any]]:
    """Fit rows (columns of :data:`flimexplore.study.store.FIT_COLUMNS`) of models ``ids``, every computed fit.

    ``scores.fits`` gives each fit's scores (one fit, ``repeat`` 0, when it is None).
    """
    fits = scores.fits
    repeats = fits.repeats if fits is not None else (0,)
    no_seed = -1 if ctx.config.clustering != "kmeans++" else ctx.config.cluster_seed
    rows = []
    for j, m in enumerate(ids):
        t = table[m]
        for i, r in enumerate(repeats):
            row = {
                "model": m, "image": ctx.config.image, "image_stem": ctx.stem, "split": t.split,
                "bg_index": t.k, "obj_row": int(t.obj[0]), "obj_col": int(t.obj[1]), "bg_row": int(t.bg[0]),
                "bg_col": int(t.bg[1]), "radius": ctx.config.radius, "repeat": int(r),
                "seed": int(fits.seeds[j, i]) if fits is not None else t.seed,
                "cluster_seed": int(fits.cluster_seeds[i]) if fits is not None and fits.cluster_seeds is not None else no_seed,
                "best_epoch": int(fits.best_epoch[j, i] if fits is not None else scores.best_epoch[j]),
            }
            for metric in METRICS:  # rounded as the tables store them: resumed and fresh rows are equal
                val = fits.val[metric][j, i] if fits is not None else scores.val[metric][j]
                test = fits.test[metric][j, i] if fits is not None else scores.test[metric][j]
                row[f"val_{metric}"] = round(float(val), 6)
                row[f"test_{metric}"] = round(float(test), 6)
            bad = [k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)]
            if bad:  # scores come from confusion counts and are always defined; never store nonsense
                raise FloatingPointError(f"model {m} has non-finite scores {bad}; this is a bug in flimexplore")
            rows.append(row)
    return rows


def fits_to_do(total: int, repeats: int, fits: dict[tuple[int, int], Any], arrays: dict[int, Any]) -> dict[int, tuple[int, ...]]:
    """The fits still to compute per model: every missing repeat, and fit 0 again where its parameters are missing."""
    todo = {}
    for m in range(total):
        missing = tuple(r for r in range(repeats) if (m, r) not in fits)
        if m not in arrays and 0 not in missing:
            missing = (0, *missing)
        if missing:
            todo[m] = missing
    return todo


def work_chunks(total: int, step: int, todo: dict[int, tuple[int, ...]]) -> list[tuple[list[int], tuple[int, ...]]]:
    """Models to compute together, with their fits: the chunks of :func:`model_chunks`, split by missing fits."""
    out = []
    for ids in model_chunks(total, step, {m: None for m in range(total) if m not in todo}):
        by_fits: dict[tuple[int, ...], list[int]] = {}
        for m in ids:
            by_fits.setdefault(todo[m], []).append(m)
        out += [(group, reps) for reps, group in by_fits.items()]
    return out


def run_study(
    config: StudyConfig,
    out: str | Path | None = None,
    *,
    device: str = "auto",
    engine: Engine = "batched",
    model_chunk: int = MODEL_CHUNK,
    memory_mb: float = DEFAULT_MEMORY_MB,
    context: StudyContext | None = None,
    precision: str = "fp32",
    markers: Sequence[MarkerSet | ObjectMarkerSet | MarkerPixels] | None = None,
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
    precision : {"fp32", "tf32", "bf16"}, optional
        Arithmetic on CUDA (see :mod:`flimexplore.engine.precision`); the CPU
        runs fp32 only.
    markers : sequence of MarkerSet, ObjectMarkerSet or MarkerPixels, optional
        Score these markers (one item per split) instead of sampling them
        (``flimexplore score`` does); the results folder then also records
        their fingerprint, so it never mixes models of other markers.
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
    if engine == "sequential" and tuple(cfg.markers_per_model) != (1, 1):
        raise ConfigError("--engine sequential scores the paper's one-disk markers only; use --markers-per-model 1,1")
    reading = other_readouts(cfg.decoders, cfg.attention)
    if engine == "sequential" and reading:
        raise ConfigError("--engine sequential keeps no model parameters, which --decoders and --attention read; "
                          "use --engine batched")
    check_precision(precision, ctx.device)
    identity = ctx.identity()
    if markers is None:
        markers = plan_markers(ctx)
    else:
        markers = list(markers)
        identity["markers_sha256"] = _fingerprint(markers)
    table = model_table(ctx, markers)
    total, n_rep = len(table), cfg.repeats
    store = ResultStore(out, cfg, identity) if out is not None else None
    fits: dict[tuple[int, int], dict[str, Any]] = {}
    arrays: dict[int, dict[str, NDArray]] = {}
    readouts: dict[tuple[int, str], dict[str, Any]] = {}
    step = 1 if engine == "sequential" else int(model_chunk)
    complete = False
    try:
        if store is not None:
            fits = store.fits()
            arrays = store.load_arrays()
            readouts = store.readouts()
        todo = fits_to_do(total, n_rep, fits, arrays)
        done = total - len(todo)
        user = f" (the last scores the user's markers from {ctx.user_markers_source})" if ctx.user_markers is not None else ""
        reps = f" x {n_rep} fits each" if n_rep > 1 else ""
        yield Progress(
            done, total,
            f"marked image {cfg.image}: {_marked_name(ctx)} ({ctx.mask.shape[0]}x{ctx.mask.shape[1]}) of {ctx.dataset.name}; "
            f"{total} models{reps} on {ctx.device} ({engine}){user}; {done} already done",
        )
        if reading:  # models trained before, read out now (more decoders asked, or a crash between two writes)
            late = readouts_to_do(sorted(m for m in arrays if m not in todo), readouts, cfg.decoders)
            for lo in range(0, len(late), step):
                ids = late[lo : lo + step]
                readouts = read_out(ctx, ids, arrays, readouts, store, memory_mb, precision)
                yield Progress(done, total, f"models {ids[0]}-{ids[-1]} read out by {', '.join(cfg.decoders)}")
        clock = Clock(len(todo))
        scored_pixels = ctx.mask.size * (len(ctx.split.val) + len(ctx.split.test))
        for ids, repeats in work_chunks(total, step, todo):
            models = [table[m] for m in ids]
            stop = False
            clock.start_chunk(len(ids))
            if engine == "sequential" or scored_pixels < REPORT_INSIDE_PIXELS:  # a chunk takes a moment: no thread
                scores = evaluate_models(ctx, models, engine, memory_mb, precision=precision, repeats=repeats)
            else:
                scores, stop = yield from evaluate_reporting(
                    functools.partial(_evaluate_batched, ctx, models, memory_mb, precision, repeats),
                    clock, done, total, ids,
                )
            new = model_rows(ctx, ids, table, scores)
            keep = [m for m in ids if m not in arrays] if 0 in repeats else []
            chunk_arrays = {k: v[[ids.index(m) for m in keep]] for k, v in scores.arrays.items()} if keep else {}
            if store is not None:
                store.add(new, chunk_arrays, keep)
                fits = store.fits()
            else:
                fits |= {(f["model"], f["repeat"]): f for f in new}
            for j, m in enumerate(keep):
                arrays[m] = {k: v[j] for k, v in chunk_arrays.items()}
            if reading:
                readouts = read_out(ctx, [m for m in ids if m in arrays], arrays, readouts, store, memory_mb, precision)
            done += len(ids)
            best = max(scores.val["dice"])
            eta = clock.end_chunk()
            if stop:
                raise StopStudy
            yield Progress(done, total, f"models {ids[0]}-{ids[-1]} done (best val Dice {best:.3f}){time_left(eta)}", eta)
        complete = True
    except StopStudy:
        pass
    finally:
        rows = aggregate_fits(fits, n_rep)
        joined = []
        if reading:
            joined = store.joined_rows() if store is not None else join_readouts(rows, readouts, cfg.decoders, result_columns(n_rep))
        result = StudyResult(
            cfg, markers, [rows[k] for k in sorted(rows) if k in arrays], arrays, str(ctx.device),
            time.perf_counter() - t0, complete, ctx, [fits[k] for k in sorted(fits) if k[1] < n_rep and k[0] in arrays],
            [r for r in joined if r["model"] in arrays],
        )
        if store is not None:
            try:
                if complete:
                    _finish(store, result, heatmap_scale)
            finally:
                store.close()
    return result


def _evaluate_batched(
    ctx: StudyContext, models: list[ModelEntry], memory_mb: float, precision: str, repeats: Sequence[int],
    progress: Callable[[int, int], None],
) -> PairScores:
    return evaluate_models(ctx, models, "batched", memory_mb, progress=progress, precision=precision, repeats=repeats)


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


def _fingerprint(markers: Sequence[MarkerSet | ObjectMarkerSet | MarkerPixels]) -> str:
    """First 16 hex digits of a SHA-256 over given markers, split by split."""
    import hashlib

    h = hashlib.sha256()
    for ms in markers:
        parts = (ms.obj, ms.bg) if isinstance(ms, MarkerPixels) else ms.pairs()
        for part in parts:
            h.update(np.ascontiguousarray(part, dtype=np.int64).tobytes() + b"|")
    return h.hexdigest()[:16]


def _finish(store: ResultStore, result: StudyResult, scale: Literal["fixed", "study"] = "fixed") -> None:
    """Write the heatmap figures (one per split, the overview, your own markers') and summary.json."""
    from flimexplore.figures.heatmap_png import colour_range, heatmap_split_figure, overview_figure, png_bytes

    vrange = colour_range(result.column("val_dice")[result.column("split") >= 0] if result.rows else [], scale)
    name, dataset = _marked_name(result.context), result.context.dataset.name
    image = result.context.image
    summary = result.summary()
    repeated = summary.get("repeats", {}).get("splits", [])
    wrange = _width_range(result)
    panels, whats, fixed, ties, notes = [], [], "object", [], []
    for s in range(len(result.markers)):
        rows = [r for r in result.rows if r["split"] == s]
        n_models = len(rows)
        said = repeated[s] if s < len(repeated) and "verdict" in repeated[s] else None
        rgb, glyph, scored, dice, what, fixed = _split_panel(result, s, vrange)
        panels.append((rgb, glyph, scored, dice))
        whats.append(what.replace(" at (row ", " (").replace(", col ", ", "))
        extra: dict[str, Any] = {}
        if said is not None and len(scored):
            per_disk = len(scored) // max(len(rows), 1)
            widths = np.repeat([r["val_dice_hi"] - r["val_dice_lo"] for r in rows], per_disk)
            layer = paint_heatmap(result.context.mask.shape, scored, widths, result.config.radius)
            extra = {
                "width_rgb": render_heatmap(image, layer, vmin=wrange[0], vmax=wrange[1], colours=width_colors),
                "width_range": wrange, "verdict": said["verdict"],
                "tied": np.repeat([r["model"] in said["tied_models"] for r in rows], per_disk),
            }
            notes.append(f"position {100 * said['icc']:.0f} %, {said['n_tied_with_best']} tie with the best")
        else:
            notes.append("")
        ties.append(extra.get("tied"))
        fig = heatmap_split_figure(
            rgb, glyph, scored, dice, result.config.radius, vrange=vrange, scale=scale, dataset=dataset,
            image_name=name, split=s, what=what, fixed=fixed, n_models=n_models, **extra,
        )
        store.write_bytes(f"heatmap_split{s}.png", png_bytes(fig))
    if panels:
        fig = overview_figure(
            *zip(*panels, strict=True), result.config.radius, vrange=vrange, scale=scale, dataset=dataset,
            image_name=name, whats=whats, fixed=fixed, tied=ties if any(t is not None for t in ties) else None,
            notes=notes if any(notes) else None,
        )
        store.write_bytes("heatmap_overview.png", png_bytes(fig))
    markers = result.context.user_markers
    if markers is not None and len(result.column("val_dice", USER_SPLIT)):
        rgb = _object_pixels(
            render_heatmap(image, result.heatmap(USER_SPLIT), vmin=vrange[0], vmax=vrange[1]), markers[markers[:, 2] == 1, :2]
        )
        d = result.column("val_dice", USER_SPLIT).astype(np.float64)
        fig = heatmap_split_figure(
            rgb, np.zeros((0, 2)), np.zeros((0, 2)), d, result.config.radius, vrange=vrange, scale=scale,
            dataset=dataset, image_name=name, what="your own markers (object pixels in magenta)",
        )
        store.write_bytes("heatmap_user.png", png_bytes(fig))
    if result.readouts:
        every = [r["val_dice"] for r in result.readouts if r["split"] >= 0]
        _readout_overviews(store, result, colour_range(every, scale), scale)
    store.write_json("summary.json", summary)


def _split_panel(
    result: StudyResult, s: int, vrange: tuple[float, float]
) -> tuple[NDArray[np.uint8], NDArray, NDArray, NDArray[np.float64], str, str]:
    """One split's heatmap panel: picture, fixed-marker glyph, scored positions, their Dice, title, fixed class."""
    ms, image = result.markers[s], result.context.image
    if isinstance(ms, ImageMarkers):  # markers on several marked images: draw those of the study's marked image
        ms = ms.pixels_on(result.config.image)
    rows = [r for r in result.rows if r["split"] == s]
    dice = np.array([r["val_dice"] for r in rows], dtype=np.float64)
    fixed = "object"
    if isinstance(ms, ObjectMarkerSet):  # `study --vary object`: the fixed background marker is the glyph
        fixed = "background"
        glyph, scored = np.asarray(ms.background).reshape(1, 2), np.array([[r["obj_row"], r["obj_col"]] for r in rows])
        what = f"background marker {s} at (row {int(ms.background[0])}, col {int(ms.background[1])})"
        rgb = render_heatmap(image, result.heatmap(s), None, ms.radius, *vrange)
    elif isinstance(ms, MarkerPixels):  # markers of any shape: object pixels painted magenta
        glyph, scored = np.zeros((0, 2)), np.zeros((0, 2))
        what = f"markers {s} ({len(ms.obj)} object, {len(ms.bg)} background pixels)"
        rgb = _object_pixels(render_heatmap(image, result.heatmap(s), vmin=vrange[0], vmax=vrange[1]), ms.obj)
    elif isinstance(ms, MarkerGroups):  # K object and M background disks per model
        glyph = np.asarray(ms.obj).reshape(-1, 2)
        scored = np.concatenate([ms.bg[r["bg_index"]] for r in rows]).reshape(-1, 2)
        dice = np.repeat(dice, ms.bg.shape[1])
        what = f"object markers {s} ({len(glyph)} disks)"
        rgb = render_heatmap(image, result.heatmap(s), None, ms.radius, *vrange)
    else:
        glyph, scored = np.asarray(ms.obj).reshape(1, 2), np.array([[r["bg_row"], r["bg_col"]] for r in rows])
        what = f"object marker {s} at (row {int(ms.obj[0])}, col {int(ms.obj[1])})"
        rgb = render_heatmap(image, result.heatmap(s), None, ms.radius, *vrange)
    return rgb, glyph, scored.reshape(-1, 2), dice, what, fixed


def _readout_overviews(store: ResultStore, result: StudyResult, vrange: tuple[float, float], scale: str) -> None:
    """``heatmap_overview_<decoder>.png``: every split's heatmap under each adaptive decoder (same colour range)."""
    from flimexplore.figures.heatmap_png import overview_figure, png_bytes

    for d in result.config.decoders:
        if d == TRAINED:
            continue
        view = result.for_decoder(d)
        if not view.rows:
            continue
        splits = [_split_panel(view, s, vrange) for s in range(len(view.markers))]
        fig = overview_figure(
            [p[0] for p in splits], [p[1] for p in splits], [p[2] for p in splits], [p[3] for p in splits],
            result.config.radius, vrange=vrange, scale=scale, dataset=result.context.dataset.name,
            image_name=_marked_name(result.context), fixed=splits[0][5], readout=d,
            whats=[p[4].replace(" at (row ", " (").replace(", col ", ", ") for p in splits],
        )
        store.write_bytes(f"heatmap_overview_{d}.png", png_bytes(fig))


def _width_range(result: StudyResult) -> tuple[float, float]:
    """Colour range of the uncertainty panels: 0 to the widest 95 % interval of the study (at least 0.05)."""
    widths = [r["val_dice_hi"] - r["val_dice_lo"] for r in result.rows if "val_dice_hi" in r and r["split"] >= 0]
    finite = [w for w in widths if math.isfinite(w)]
    return 0.0, max([0.05, *finite])


def _object_pixels(rgb: NDArray[np.uint8], pixels: NDArray[np.integer]) -> NDArray[np.uint8]:
    """Paint object-marker pixels magenta, the object marker's colour in every figure (no Dice colour is magenta)."""
    px = np.asarray(pixels, dtype=np.int64).reshape(-1, 2)
    out = rgb.copy()
    out[px[:, 0], px[:, 1]] = [int(OBJECT_HEX[i : i + 2], 16) for i in (1, 3, 5)]
    return out


def run_study_all(config: StudyConfig, out: str | Path | None = None, **kwargs: Any) -> StudyResult:
    """Run a study to the end, ignoring progress events (see :func:`run_study`)."""
    gen = run_study(config, out, **kwargs)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
