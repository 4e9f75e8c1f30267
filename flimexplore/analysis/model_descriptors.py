"""Descriptors of a trained pair's model: how well its own features and decision fit the marked image.

Image-only descriptors of marker positions live in
:mod:`~flimexplore.analysis.descriptors`; these need the pair's stored model
(its FLIM kernels, normalisation and decision layer at the best epoch, see
:data:`~flimexplore.study.context.ARRAY_KEYS`).  One line each:

- ``feature_fisher_marked``: Fisher ratio ``|mu_o - mu_b|^2 / (tr S_o + tr S_b)``
  of the model's FLIM features, object vs background pixels of the marked
  image (its own mask) — features that already split the marked image
  should split unseen images too.
- ``feature_silhouette_marked``: silhouette of the same two pixel classes
  (a seeded sample of pixels, Euclidean) — a separation measure that does
  not assume one direction.
- ``fit_dice_marked``: Dice of the model's decision layer on the marked
  image it was trained on — the model's fit to its own training image; a
  pair that cannot even segment its image is unlikely to generalise.

All three read only the marked image, its mask and the stored model: they
could be used to rank markers once a model is trained.  The RQ2 measure
:func:`validation_separation` is different: it reads the VALIDATION images
and masks (the paper's Fig. 4c), so it is for analysis only.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from flimexplore.analysis.projections import superpixel_features
from flimexplore.study.context import StudyContext, model_features

__all__ = ["MODEL_DESCRIPTORS", "fisher_ratio", "model_descriptors", "silhouette", "validation_separation"]

MODEL_DESCRIPTORS = ("feature_fisher_marked", "feature_silhouette_marked", "fit_dice_marked")
SILHOUETTE_SAMPLE = 1000


def fisher_ratio(x: NDArray[np.floating], labels: NDArray[np.integer]) -> float:
    """Two-class Fisher ratio ``|mu_1 - mu_0|^2 / (tr S_1 + tr S_0)``.

    Parameters
    ----------
    x : ndarray of shape (n, d)
    labels : ndarray of shape (n,), 0 or 1

    Returns
    -------
    float
        NaN when a class is empty; large when the classes are far apart
        compared with their spread.

    Examples
    --------
    >>> x = np.array([[0.0], [2.0], [10.0], [12.0]])
    >>> fisher_ratio(x, np.array([0, 0, 1, 1]))
    50.0
    """
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    y = np.asarray(labels).astype(bool)
    if y.all() or not y.any():
        return float("nan")
    a, b = x[y], x[~y]
    spread = a.var(axis=0).sum() + b.var(axis=0).sum()
    return float(((a.mean(axis=0) - b.mean(axis=0)) ** 2).sum() / max(spread, 1e-12))


def silhouette(x: NDArray[np.floating], labels: NDArray[np.integer], sample: int = SILHOUETTE_SAMPLE, seed: int = 0) -> float:
    """Mean silhouette of two classes on a seeded sample of at most ``sample`` points.

    Returns
    -------
    float
        In [-1, 1]; NaN when a class is empty.

    Examples
    --------
    >>> x = np.array([[0.0], [1.0], [10.0], [11.0]])
    >>> round(silhouette(x, np.array([0, 0, 1, 1])), 3)
    0.9
    """
    from sklearn.metrics import silhouette_score

    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    y = np.asarray(labels).astype(np.int64)
    if len(np.unique(y)) < 2:
        return float("nan")
    if len(x) > sample:
        rng = np.random.default_rng(seed)
        keep = rng.choice(len(x), size=sample, replace=False)
        x, y = x[keep], y[keep]
        if len(np.unique(y)) < 2:
            return float("nan")
    return float(silhouette_score(x, y))


def model_descriptors(ctx: StudyContext, arrays: dict[str, NDArray], seed: int = 0) -> dict[str, float]:
    """The model-based descriptors of one stored model (see the module docstring).

    Parameters
    ----------
    ctx : StudyContext
        The study's prepared data (its marked image and mask are used).
    arrays : dict
        One model's parameters (a study's ``models/*.npz`` entry).
    seed : int
        Seeds the pixel sample of the silhouette.

    Returns
    -------
    dict of str to float
        One value per name of :data:`MODEL_DESCRIPTORS`.
    """
    feats = model_features(ctx, arrays, [ctx.image])[0]  # (C, H, W)
    x = feats.reshape(feats.shape[0], -1).T
    labels = ctx.mask.reshape(-1)
    pred = ctx.predict(arrays, ctx.image)
    inter = float(np.logical_and(pred, ctx.mask).sum())
    total = float(pred.sum() + ctx.mask.sum())
    return {
        "feature_fisher_marked": fisher_ratio(x, labels),
        "feature_silhouette_marked": silhouette(x, labels, seed=seed),
        "fit_dice_marked": 2.0 * inter / total if total else 1.0,
    }


def validation_separation(
    ctx: StudyContext, arrays: dict[str, NDArray], max_images: int | None = None, seed: int = 0
) -> dict[str, float]:
    """Separation of one model's features at validation superpixel centres (paper Fig. 4c, RQ2).

    Reads the validation images AND MASKS: for analysis only, never for advice.

    Returns
    -------
    dict
        ``val_superpixel_fisher`` and ``val_superpixel_silhouette`` (Euclidean,
        in feature space; the paper judged a t-SNE of these points by eye).
    """
    t = superpixel_features(ctx, arrays, max_images=max_images)
    return {
        "val_superpixel_fisher": fisher_ratio(t["features"], t["label"]),
        "val_superpixel_silhouette": silhouette(t["features"], t["label"], seed=seed),
    }
