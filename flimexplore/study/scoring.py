"""Training and scoring the models of a study's context: the batched engine (every fit) and the reference path.

:class:`~flimexplore.study.context.StudyContext` calls these; they read the
context's prepared tensors and settings and return
:class:`~flimexplore.study.pair_scores.PairScores`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from flimexplore.engine.batched import (
    ImageGroup,
    score_models,
    train_models,
)
from flimexplore.engine.decision import head_gap
from flimexplore.engine.reference import run_reference
from flimexplore.engine.scores import METRICS, metrics_from_counts
from flimexplore.study.checks import _check_pairs
from flimexplore.study.pair_scores import LAYER_KEYS, FitScores, PairScores
from flimexplore.study.repeats import cluster_seeds, decision_seeds

__all__ = ["score_pixels", "score_reference"]


def score_pixels(
    ctx: Any,
    obj_pixels: torch.Tensor | Sequence[NDArray[np.int64]] | Sequence[Sequence[NDArray[np.int64]]],
    bg_pixels: torch.Tensor | Sequence[NDArray[np.int64]] | Sequence[Sequence[NDArray[np.int64]]],
    seeds: Sequence[int],
    memory_mb: float,
    progress: Callable[[int, int], None] | None = None,
    repeats: Sequence[int] = (0,),
    marked: Sequence[ImageGroup] | None = None,
    keep_trained: bool = False,
) -> PairScores:
    """Train the models of the given marker pixels and score them on validation and test images.

    Every model is fitted once per entry of ``repeats`` (:mod:`flimexplore.study.repeats`).
    ``marked`` (several marked images, with per-image pixels per model) replaces the marked image.
    Fits that share a model's encoder (only the decision seed varies) are
    scored as extra heads on the same validation features, so a repeat
    costs a decision layer and its counting, not a FLIM encoding.
    """
    cfg = ctx.config
    repeats = tuple(int(r) for r in repeats)
    b, r_n = len(seeds), len(repeats)
    dseeds = decision_seeds(seeds, repeats, cfg.repeat_over)  # (B, R)
    cseeds = cluster_seeds(cfg.cluster_seed, repeats, cfg.repeat_over, cfg.clustering)
    if cseeds == [cfg.cluster_seed]:  # fit 0 alone: the study's own encoder
        cseeds = None
    trained = train_models(ctx.marked if marked is None else marked, obj_pixels, bg_pixels, [s[0] for s in dseeds] if r_n == 1 else dseeds,
                           epochs=cfg.epochs, lr=cfg.lr, settings=cfg.flim(), cluster_seeds=cseeds)
    a, c = head_gap(trained.params, trained.bn)  # (B * R, E, C), (B * R, E): fit r of model b is b * R + r
    m, heads, e = len(trained.bank), trained.heads, a.shape[1]
    n_val, n_test = len(ctx.split.val), len(ctx.split.test)
    val_counts = score_models(
        trained.bank, a.reshape(m, heads * e, -1), c.reshape(m, heads * e), ctx.val_groups, memory_mb,
        _images(progress, 0, n_val, n_val + n_test),
    ).numpy().reshape(b, r_n, e, n_val, 4)
    val_metrics = metrics_from_counts(val_counts)
    curve = val_metrics["dice"].mean(axis=3)  # (B, R, E)
    best = curve.argmax(axis=2)  # (B, R)
    pick = torch.as_tensor(best.reshape(-1), device=a.device)
    idx = torch.arange(b * r_n, device=a.device)
    test_counts = score_models(
        trained.bank, a[idx, pick].reshape(m, heads, -1), c[idx, pick].reshape(m, heads), ctx.test_groups,
        memory_mb, _images(progress, n_val, n_test, n_val + n_test),
    ).numpy().reshape(b, r_n, n_test, 4)
    bi, ri = np.ogrid[:b, :r_n]
    val = {k: v.mean(axis=3)[bi, ri, best] for k, v in val_metrics.items()}  # (B, R)
    test = {k: v.mean(axis=2) for k, v in metrics_from_counts(test_counts).items()}
    fits = FitScores(repeats, best + 1, val, test, np.asarray(dseeds, dtype=np.int64),
                     None if cseeds is None else np.asarray(cseeds, dtype=np.int64))
    first = torch.arange(b, device=a.device) * r_n  # every model's first fit
    bank = trained.bank if heads == r_n else trained.bank.select(first)
    p = trained.params.at_epoch(pick)
    t = lambda x: x.detach().cpu().numpy()  # noqa: E731
    arrays = {
        "kernels": t(bank.kernels), "norm_mean": t(bank.mean),
        "norm_std": t(bank.std), "kernel_labels": t(bank.kernel_labels),
        "gamma": t(p.gamma[first]), "beta": t(p.beta[first]), "weight": t(p.weight[first]), "bias": t(p.bias[first]),
        "bn_mean": t(trained.bn.mean[first]), "bn_var": t(trained.bn.var[first]),
        "bn_running_var": t(trained.bn.running_var[first]), "val_dice_curve": curve[:, 0],
    }
    for number, layer in enumerate(bank.deeper, start=2):
        arrays |= {f"{key}{number}": t(v) for key, v in zip(LAYER_KEYS, layer.astuple(), strict=True)}
    return PairScores(best[:, 0] + 1, {k: v.mean(axis=1) for k, v in val.items()},
                      {k: v.mean(axis=1) for k, v in test.items()}, arrays, fits, trained if keep_trained else None)


def score_reference(
    ctx: Any, obj: NDArray[np.integer], bg: NDArray[np.integer], seeds: Sequence[int], repeats: Sequence[int] | None = None
) -> PairScores:
    """Score ``B`` marker pairs one fit at a time with the reference path (no parameters kept)."""
    obj, bg = _check_pairs(obj, bg, ctx.mask)
    cfg, ds = ctx.config, ctx.dataset
    repeats = tuple(ctx.all_repeats if repeats is None else repeats)
    val = ([ds.images[i] for i in ctx.split.val], [ds.masks[i] for i in ctx.split.val])
    test = ([ds.images[i] for i in ctx.split.test], [ds.masks[i] for i in ctx.split.test])
    dseeds = decision_seeds(seeds, repeats, cfg.repeat_over)
    cseeds = cluster_seeds(cfg.cluster_seed, repeats, cfg.repeat_over, cfg.clustering)
    settings = [cfg.flim() if cseeds is None else cfg.flim().replace(cluster_seed=c) for c in (cseeds or repeats)]
    results = [
        [run_reference(ctx.image, ctx.mask, o, g, cfg.radius, int(ds_[j]), val, test,
                       epochs=cfg.epochs, lr=cfg.lr, settings=settings[j]) for j in range(len(repeats))]
        for o, g, ds_ in zip(np.asarray(obj), np.asarray(bg), dseeds, strict=True)
    ]
    best = np.array([[r.best_epoch for r in row] for row in results])
    vm = [[metrics_from_counts(r.val_counts) for r in row] for row in results]
    tm = [[metrics_from_counts(r.test_counts) for r in row] for row in results]
    val = {k: np.array([[m[k].mean() for m in row] for row in vm]) for k in METRICS}
    test = {k: np.array([[m[k].mean() for m in row] for row in tm]) for k in METRICS}
    fits = FitScores(repeats, best, val, test, np.asarray(dseeds, dtype=np.int64),
                     None if cseeds is None else np.asarray(cseeds, dtype=np.int64))
    return PairScores(
        best[:, 0], {k: v.mean(axis=1) for k, v in val.items()}, {k: v.mean(axis=1) for k, v in test.items()},
        {"val_dice_curve": np.stack([row[0].val_dice for row in results])}, fits,
    )


def _images(progress: Callable[[int, int], None] | None, before: int, n: int, total: int) -> Callable[[int, int], None] | None:
    """Turn score_models' image passes over `n` images into ``progress(images done, total images)``."""
    if progress is None:
        return None
    return lambda done, passes: progress(before + (n * done) // max(passes, 1), total)
