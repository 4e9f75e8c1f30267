"""What a study trains: the markers of every split, the table of its models and their seeds, the chunks still to do."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from flimexplore.errors import MarkerError
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
from flimexplore.study.context import StudyContext
from flimexplore.study.marked import ImageMarkers

__all__ = [
    "MODEL_CHUNK", "USER_SPLIT", "ModelEntry", "dense_positions", "fits_to_do", "model_chunks", "model_seed",
    "model_table", "plan_markers", "work_chunks",
]

MODEL_CHUNK = 32
"""Models trained together by default; chunks are also the unit of saving."""
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
