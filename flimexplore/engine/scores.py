"""Segmentation scores; arrays in, arrays out (NumPy only).

Scores follow the definitions in the interpretability paper (Dice, Jaccard,
sensitivity, specificity), computed per image from the confusion counts and
averaged over the images of a set.  Conventions for empty sets: when the
ground truth and the prediction are both empty, Dice and Jaccard are 1 (the
model correctly found nothing) and 0 when only one of them is empty;
sensitivity is 1 on an image without object, specificity 1 on an image
without background.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["METRICS", "dice", "metrics_from_counts"]

METRICS = ("dice", "jaccard", "sensitivity", "specificity")


def _safe(num: NDArray, den: NDArray, empty: float) -> NDArray[np.float64]:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, empty, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def metrics_from_counts(counts: NDArray[np.integer]) -> dict[str, NDArray[np.float64]]:
    """Per-image scores from confusion counts.

    Parameters
    ----------
    counts : ndarray of shape (..., 4), int
        ``(TP, FP, FN, TN)`` of each image.

    Returns
    -------
    scores : dict of str to ndarray of shape (...)
        ``dice``, ``jaccard``, ``sensitivity`` and ``specificity`` in [0, 1].

    Examples
    --------
    >>> s = metrics_from_counts(np.array([[3, 1, 1, 5], [0, 0, 0, 9]]))
    >>> s["dice"].tolist(), s["sensitivity"].tolist()
    ([0.75, 1.0], [0.75, 1.0])
    """
    tp, fp, fn, tn = np.moveaxis(np.asarray(counts), -1, 0)
    return {
        "dice": _safe(2 * tp, 2 * tp + fp + fn, 1.0),
        "jaccard": _safe(tp, tp + fp + fn, 1.0),
        "sensitivity": _safe(tp, tp + fn, 1.0),
        "specificity": _safe(tn, tn + fp, 1.0),
    }


def dice(pred: NDArray[np.bool_], truth: NDArray[np.bool_]) -> float:
    """Dice of two binary masks (1 when both are empty).

    Examples
    --------
    >>> dice(np.array([1, 1, 0], bool), np.array([1, 0, 0], bool))
    0.6666666666666666
    """
    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    tp = int((p & t).sum())
    den = int(p.sum() + t.sum())
    return 1.0 if den == 0 else 2.0 * tp / den
