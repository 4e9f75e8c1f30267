"""2-D t-SNE projections of one model (the paper's Fig. 4 b and c).

- :func:`patch_projection`: the normalised 3x3 patches under the model's two
  markers (perplexity 5).
- :func:`feature_projection`: the model's FLIM features at the centre of
  every superpixel of the validation images (perplexity 15).  The paper used
  DISF superpixels, which have no PyPI package; like the LIDS group's own
  fallback we use scikit-image's SLIC (compactness 10), with the dataset's
  suggested number of superpixels (10-30 per image).  A superpixel's centre
  is its pixel nearest to its centroid, so it always lies inside it.

t-SNE is scikit-learn's, seeded; perplexity is clamped to what the number of
points allows (below ``(n - 1) / 3``), and fewer than 4 points are placed by
PCA instead.  Results are column tables (dicts of equal-length arrays)
ready for plotting.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from flimexplore.study.context import StudyContext, model_features, model_patches

__all__ = [
    "PATCH_PERPLEXITY", "FEATURE_PERPLEXITY", "feature_projection", "patch_projection", "superpixel_centres",
    "superpixel_features", "tsne",
]

PATCH_PERPLEXITY = 5.0
FEATURE_PERPLEXITY = 15.0


def tsne(points: NDArray[np.floating], perplexity: float, seed: int = 0) -> NDArray[np.float64]:
    """Seeded 2-D t-SNE with perplexity clamped to the number of points.

    Parameters
    ----------
    points : ndarray of shape (n, d)
    perplexity : float
    seed : int

    Returns
    -------
    xy : ndarray of shape (n, 2)
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(points, dtype=np.float64)
    n = len(x)
    if n < 4:
        out = np.zeros((n, 2))
        if n > 1:
            k = min(2, n - 1, x.shape[1])
            out[:, :k] = PCA(n_components=k).fit_transform(x)
        return out
    p = float(min(perplexity, (n - 1) / 3.0))
    return TSNE(n_components=2, perplexity=p, random_state=seed, init="pca", learning_rate="auto").fit_transform(x)


@lru_cache(maxsize=512)
def _slic_centres(image_bytes: bytes, shape: tuple[int, int, int], n_segments: int) -> NDArray[np.int64]:
    from skimage.segmentation import slic

    image = np.frombuffer(image_bytes, dtype=np.float32).reshape(shape)
    labels = slic(image, n_segments=n_segments, compactness=10.0, start_label=1, channel_axis=-1)
    centres = []
    for lab in np.unique(labels):
        rr, cc = np.nonzero(labels == lab)
        k = np.argmin((rr - rr.mean()) ** 2 + (cc - cc.mean()) ** 2)
        centres.append((rr[k], cc[k]))
    return np.asarray(centres, dtype=np.int64)


def superpixel_centres(image: NDArray[np.floating], n_superpixels: int) -> NDArray[np.int64]:
    """Centre pixels of the SLIC superpixels of an image.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), float in [0, 1]
    n_superpixels : int
        Approximate number of superpixels.

    Returns
    -------
    centres : ndarray of shape (K, 2), int64
        ``(row, col)`` of the pixel of each superpixel nearest its centroid.
    """
    img = np.ascontiguousarray(image, dtype=np.float32)
    return _slic_centres(img.tobytes(), img.shape, int(n_superpixels))


def patch_projection(
    ctx: StudyContext, arrays: dict[str, NDArray], obj: NDArray, bg: NDArray, seed: int = 0
) -> dict[str, NDArray]:
    """t-SNE of the patches under one model's markers (paper Fig. 4b).

    Returns
    -------
    table : dict
        ``x``, ``y`` (float), ``label`` (1 object, 0 background).
    """
    patches, labels = model_patches(ctx, arrays, obj, bg)
    xy = tsne(patches, PATCH_PERPLEXITY, seed)
    return {"x": xy[:, 0], "y": xy[:, 1], "label": labels}


def superpixel_features(
    ctx: StudyContext,
    arrays: dict[str, NDArray],
    n_superpixels: int | None = None,
    max_images: int | None = None,
) -> dict[str, NDArray]:
    """One model's FLIM features at the superpixel centres of the validation images.

    Reads the validation masks (for the labels): use it for analysis and
    figures, never to rank or recommend markers.

    Parameters
    ----------
    ctx : StudyContext
    arrays : dict
        The model's parameters.
    n_superpixels : int, optional
        Superpixels per image (default: the dataset's suggestion).
    max_images : int, optional
        Use only the first validation images (for speed).

    Returns
    -------
    table : dict
        ``features`` (n, C) float32, ``label`` (n,) 1 object / 0 background
        (the ground truth at the centre), ``image`` (validation position),
        ``row``, ``col``.
    """
    n_sp = int(n_superpixels or ctx.dataset.n_superpixels)
    idx = list(ctx.split.val)[: max_images or None]
    feats, labels, where = [], [], []
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for j, i in enumerate(idx):
        by_shape.setdefault(ctx.dataset.images[i].shape, []).append(j)
    for members in by_shape.values():
        images = [ctx.dataset.images[idx[j]] for j in members]
        f = model_features(ctx, arrays, images)
        for k, j in enumerate(members):
            c = superpixel_centres(images[k], n_sp)
            feats.append(f[k][:, c[:, 0], c[:, 1]].T)
            labels.append(ctx.dataset.masks[idx[j]][c[:, 0], c[:, 1]].astype(np.int64))
            where.append(np.column_stack([np.full(len(c), j), c]))
    w = np.concatenate(where)
    return {"features": np.concatenate(feats), "label": np.concatenate(labels), "image": w[:, 0], "row": w[:, 1], "col": w[:, 2]}


def feature_projection(
    ctx: StudyContext,
    arrays: dict[str, NDArray],
    n_superpixels: int | None = None,
    max_images: int | None = None,
    seed: int = 0,
) -> dict[str, NDArray]:
    """t-SNE of one model's features at superpixel centres of the validation set (Fig. 4c).

    Parameters
    ----------
    ctx : StudyContext
    arrays : dict
        The model's parameters.
    n_superpixels : int, optional
        Superpixels per image (default: the dataset's suggestion).
    max_images : int, optional
        Use only the first validation images (for speed).
    seed : int

    Returns
    -------
    table : dict
        ``x``, ``y``, ``label`` (1 object, 0 background: the ground truth at
        the centre), ``image`` (validation position), ``row``, ``col``.
    """
    t = superpixel_features(ctx, arrays, n_superpixels, max_images)
    xy = tsne(t["features"], FEATURE_PERPLEXITY, seed)
    return {"x": xy[:, 0], "y": xy[:, 1], "label": t["label"], "image": t["image"], "row": t["row"], "col": t["col"]}
