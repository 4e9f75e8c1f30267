"""Orchestration of a marker study: markers per split, models in chunks, results.

:func:`run_study` is a generator: it yields :class:`Progress` events while it
trains and scores the models chunk by chunk, writes each finished chunk to
the output folder (if one is given) and finally returns a
:class:`StudyResult`.  :func:`run_study_all` drains it for scripts; the
command line and the explorer consume the events to show progress.  Because
every chunk is stored atomically as soon as it finishes, an interrupted
study (Ctrl-C, Stop, ``kill -9``) resumes where it stopped when run again
with the same output folder: finished models are read back, not recomputed.

The parts live in their own modules: :mod:`~flimexplore.study.plan` (markers,
the model table, seeds, chunks), :mod:`~flimexplore.study.evaluate` (training
and scoring a chunk), :mod:`~flimexplore.study.result` (:class:`StudyResult`)
and :mod:`~flimexplore.study.outputs` (figures and summary); this module runs
them and keeps the public names.
"""

from __future__ import annotations

import functools
import math
import numbers
import time
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from flimexplore.engine.batched import DEFAULT_MEMORY_MB
from flimexplore.engine.precision import check_precision
from flimexplore.errors import ConfigError
from flimexplore.markers import (
    MarkerPixels,
    MarkerSet,
    ObjectMarkerSet,
)
from flimexplore.study.config import StudyConfig
from flimexplore.study.context import StudyContext
from flimexplore.study.evaluate import _evaluate_batched, evaluate_models, model_rows
from flimexplore.study.outputs import marked_name, write_outputs
from flimexplore.study.plan import (
    MODEL_CHUNK,
    USER_SPLIT,
    ModelEntry,
    dense_positions,
    fits_to_do,
    model_chunks,
    model_seed,
    model_table,
    plan_markers,
    work_chunks,
)
from flimexplore.study.progress import Clock, Progress, StopStudy, evaluate_reporting, time_left
from flimexplore.study.readout_table import join_readouts, other_readouts
from flimexplore.study.readouts import read_out, readouts_to_do
from flimexplore.study.result import StudyResult
from flimexplore.study.store import ResultStore, aggregate_fits, result_columns

__all__ = [
    "MODEL_CHUNK", "USER_SPLIT", "ModelEntry", "Progress", "StopStudy", "StudyResult", "dense_positions",
    "evaluate_models", "fits_to_do", "model_chunks", "model_rows", "model_seed", "model_table", "plan_markers",
    "run_study", "run_study_all", "work_chunks",
]

REPORT_INSIDE_PIXELS = 16 * 2**20
"""Validation and test pixels above which a chunk is scored in a worker thread that reports progress inside
the chunk (big images); below it a chunk takes about a second and runs in the calling thread."""
Engine = Literal["batched", "sequential"]


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
            f"marked image {cfg.image}: {marked_name(ctx)} ({ctx.mask.shape[0]}x{ctx.mask.shape[1]}) of {ctx.dataset.name}; "
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
                    write_outputs(store, result, heatmap_scale)
            finally:
                store.close()
    return result



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



def run_study_all(config: StudyConfig, out: str | Path | None = None, **kwargs: Any) -> StudyResult:
    """Run a study to the end, ignoring progress events (see :func:`run_study`)."""
    gen = run_study(config, out, **kwargs)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
