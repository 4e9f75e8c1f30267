"""Training and scoring some models of a study: the batched engine or the reference path, and their result rows."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from flimexplore.engine.precision import precision_scope
from flimexplore.engine.scores import METRICS
from flimexplore.study.context import PairScores, StudyContext, merge_scores
from flimexplore.study.marked import ImageMarkers
from flimexplore.study.plan import ModelEntry

__all__ = ["evaluate_models", "model_rows"]


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
    return merge_scores(parts, groups)


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



def _evaluate_batched(
    ctx: StudyContext, models: list[ModelEntry], memory_mb: float, precision: str, repeats: Sequence[int],
    progress: Callable[[int, int], None],
) -> PairScores:
    return evaluate_models(ctx, models, "batched", memory_mb, progress=progress, precision=precision, repeats=repeats)
