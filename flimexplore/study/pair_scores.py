"""What evaluating marker pairs returns: every fit's scores, their means, and the parameters kept per model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from flimexplore.engine.batched import (
    TrainedModels,
)

__all__ = ["ARRAY_KEYS", "LAYER_KEYS", "FitScores", "PairScores", "merge_scores"]

ARRAY_KEYS = (
    "kernels", "norm_mean", "norm_std", "kernel_labels", "gamma", "beta", "weight", "bias",
    "bn_mean", "bn_var", "bn_running_var", "val_dice_curve",
)
# Layers 2 and 3 of a multi-layer encoder add these keys with the layer number appended
# ("kernels2", "norm_mean2", ...); pooling and the decision layer's input come from the study's config.
LAYER_KEYS = ("kernels", "norm_mean", "norm_std", "kernel_labels")


@dataclass(frozen=True, eq=False)
class FitScores:
    """Scores of the repeated fits of ``B`` marker pairs (:mod:`flimexplore.study.repeats`).

    Attributes
    ----------
    repeats : tuple of int
        The ``R`` fits computed (0 is the fit of a study without repeats).
    best_epoch : ndarray of shape (B, R), int
    val, test : dict of str to ndarray of shape (B, R)
        Each fit's mean per-image scores at its best epoch.
    seeds : ndarray of shape (B, R), int
        Decision-layer seed of each fit.
    cluster_seeds : ndarray of shape (R,), int, or None
        k-means++ seed of each fit when the repeats re-draw the clustering.
    """

    repeats: tuple[int, ...]
    best_epoch: NDArray[np.int64]
    val: dict[str, NDArray[np.float64]]
    test: dict[str, NDArray[np.float64]]
    seeds: NDArray[np.int64]
    cluster_seeds: NDArray[np.int64] | None = None


@dataclass(frozen=True, eq=False)
class PairScores:
    """Scores and parameters of ``B`` evaluated marker pairs.

    Attributes
    ----------
    best_epoch : ndarray of shape (B,), int
        1-based epoch with the best mean validation Dice (of the first fit).
    val, test : dict of str to ndarray of shape (B,)
        Mean per-image Dice, Jaccard, sensitivity, specificity at the best
        epoch; with repeated fits, their mean over the fits.
    arrays : dict of str to ndarray with leading axis B
        Parameters (see ``ARRAY_KEYS``) of the first fit, for predictions and projections.
    fits : FitScores or None
        Every fit's scores (None from the reference path without repeats).
    trained : TrainedModels or None
        The engine's models with every epoch's decision layer, when asked for
        (``keep_trained``): e.g. to predict on the marked images at the last
        epoch, which no validation image chose.
    """

    best_epoch: NDArray[np.int64]
    val: dict[str, NDArray[np.float64]]
    test: dict[str, NDArray[np.float64]]
    arrays: dict[str, NDArray]
    fits: FitScores | None = None
    trained: TrainedModels | None = None


def merge_scores(parts: Sequence[PairScores], groups: Sequence[NDArray[np.intp]]) -> PairScores:
    """Put the scores of separately evaluated groups of pairs back in the callers' order."""
    order = np.argsort(np.concatenate(groups), kind="stable")

    def cat(values: Sequence[NDArray]) -> NDArray:
        return np.concatenate(values)[order]

    fits = None
    if all(p.fits is not None for p in parts):
        f = [p.fits for p in parts]
        fits = FitScores(
            f[0].repeats, cat([x.best_epoch for x in f]), {k: cat([x.val[k] for x in f]) for k in f[0].val},
            {k: cat([x.test[k] for x in f]) for k in f[0].test}, cat([x.seeds for x in f]), f[0].cluster_seeds,
        )
    return PairScores(
        cat([p.best_epoch for p in parts]),
        {k: cat([p.val[k] for p in parts]) for k in parts[0].val},
        {k: cat([p.test[k] for p in parts]) for k in parts[0].test},
        {k: cat([p.arrays[k] for p in parts]) for k in parts[0].arrays},
        fits,
    )
