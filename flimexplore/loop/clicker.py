"""The error-driven robot user: a marker at the centre of the largest error region.

What a user sees on screen and corrects, and what the clicker of
interactive segmentation benchmarks does (RITM, CGAM, SimpleClick: error
maps, a distance transform, the next click at its maximum): the current
model's prediction on the marked image is compared with the image's own
mask; every connected region of false object (predicted object on
background) or missed object (background predicted on object) is an error
region.  The largest region (most pixels; the first in raster order of its
first pixel on ties) gets the next marker at its centre, the pixel farthest
from the region's border by the Euclidean distance transform (the image
border counts as border: the map is padded by one pixel, as RITM's; when
several pixels are equally deep, as along the ridge of an elongated region,
the one nearest the region's centroid, then the first in raster order).  A
false-object region gets a background marker, a missed-object region an
object marker.  Unlike RITM's clicks, our markers are disks: the centre
must be admissible (:func:`flimexplore.loop.drawn.admissible`), so the
deepest admissible pixel is taken, and a region without one passes to the
next largest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

__all__ = ["Click", "error_click", "error_regions"]

EIGHT = np.ones((3, 3), bool)


@dataclass(frozen=True)
class Click:
    """Where the error policy puts its marker.

    Attributes
    ----------
    row, col : int
    label : int
        1 (object: a missed-object region) or 0 (background: a false-object region).
    region_pixels : int
        Size of the error region it corrects (0 when no region had an admissible pixel).
    depth : float
        Distance of the centre to the region's border, in pixels.
    """

    row: int
    col: int
    label: int
    region_pixels: int
    depth: float


def error_regions(pred: NDArray[np.bool_], mask: NDArray[np.bool_]) -> list[tuple[NDArray[np.bool_], int]]:
    """Connected error regions of a prediction, largest first.

    Parameters
    ----------
    pred : ndarray of shape (H, W), bool
        Predicted object.
    mask : ndarray of shape (H, W), bool
        Ground truth.

    Returns
    -------
    list of (ndarray of shape (H, W), bool; int)
        Each region's pixels and the label its marker takes (1 for missed
        object, 0 for false object); sorted by size, descending, ties by the
        raster position of the region's first pixel (8-connected regions).

    Examples
    --------
    >>> mask = np.zeros((6, 6), bool); mask[1:5, 1:3] = True
    >>> pred = np.zeros((6, 6), bool); pred[4:6, 4:6] = True
    >>> [(int(r.sum()), label) for r, label in error_regions(pred, mask)]
    [(8, 1), (4, 0)]
    """
    found = []
    for errors, label in ((mask & ~pred, 1), (~mask & pred, 0)):
        labelled, n = ndimage.label(errors, structure=EIGHT)
        for j in range(1, n + 1):
            region = labelled == j
            first = int(np.flatnonzero(region)[0])
            found.append((int(region.sum()), first, region, label))
    found.sort(key=lambda x: (-x[0], x[1]))
    return [(region, label) for _, _, region, label in found]


def error_click(pred: NDArray[np.bool_], mask: NDArray[np.bool_], admissible: NDArray[np.bool_]) -> Click | None:
    """The next marker of the error policy, or None when no error region holds an admissible centre.

    Parameters
    ----------
    pred, mask : ndarray of shape (H, W), bool
        Prediction of the current model and the image's own mask.
    admissible : ndarray of shape (H, W), bool
        Where a marker centre may go.

    Returns
    -------
    Click or None

    Examples
    --------
    >>> mask = np.zeros((9, 9), bool); mask[1:8, 1:8] = True
    >>> pred = np.zeros((9, 9), bool)
    >>> c = error_click(pred, mask, np.ones((9, 9), bool))
    >>> (c.row, c.col, c.label, c.region_pixels)
    (4, 4, 1, 49)
    """
    for region, label in error_regions(pred, mask):
        inside = region & admissible
        if not inside.any():
            continue
        depth = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
        score = np.where(inside, depth, -1.0)
        tied = np.argwhere(score >= score.max() - 1e-9)  # a ridge of equally deep pixels: the one nearest the centroid
        centroid = np.argwhere(region).mean(axis=0)
        r, c = (int(v) for v in tied[int(np.argmin(((tied - centroid) ** 2).sum(axis=1)))])
        return Click(r, c, label, int(region.sum()), float(depth[r, c]))
    return None
