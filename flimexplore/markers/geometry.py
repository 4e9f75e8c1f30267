"""Marker geometry: the pixels of disks, unions of disks and freehand strokes."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from flimexplore.errors import MarkerError

__all__ = ["disk_offsets", "marker_pixels", "marker_union", "stroke_pixels"]


def disk_offsets(radius: int) -> NDArray[np.int64]:
    """Offsets ``(drow, dcol)`` of the pixels of a disk of the given radius.

    Parameters
    ----------
    radius : int
        Disk radius ``r >= 0``; a pixel belongs to the disk when its distance
        to the centre is at most ``r``.

    Returns
    -------
    offsets : ndarray of shape (K, 2), int64
        In raster order.

    Examples
    --------
    >>> len(disk_offsets(1)), len(disk_offsets(3))
    (5, 29)
    """
    r = int(radius)
    rr, cc = np.mgrid[-r : r + 1, -r : r + 1]
    keep = rr**2 + cc**2 <= r * r
    return np.stack([rr[keep], cc[keep]], axis=1).astype(np.int64)


def marker_pixels(
    centre: NDArray[np.integer], radius: int, shape: tuple[int, int]
) -> NDArray[np.int64]:
    """Pixels of a disk marker that fall inside an image.

    Parameters
    ----------
    centre : array_like of shape (2,), int
        ``(row, col)`` of the centre.
    radius : int
        Disk radius.
    shape : tuple of int
        ``(H, W)`` of the image.

    Returns
    -------
    pixels : ndarray of shape (K, 2), int64
        ``(row, col)`` of the disk pixels inside the image.
    """
    px = disk_offsets(radius) + np.asarray(centre, dtype=np.int64)
    inside = (px[:, 0] >= 0) & (px[:, 0] < shape[0]) & (px[:, 1] >= 0) & (px[:, 1] < shape[1])
    return px[inside]


def marker_union(centres: NDArray[np.integer], radius: int, shape: tuple[int, int]) -> NDArray[np.int64]:
    """Pixels covered by any of several disks, each once, in raster order.

    Parameters
    ----------
    centres : array_like of shape (K, 2), int
        ``(row, col)`` of each disk's centre.
    radius : int
    shape : tuple of int
        ``(H, W)`` of the image; pixels outside it are dropped.

    Returns
    -------
    pixels : ndarray of shape (P, 2), int64
        For one disk, the same pixels in the same order as :func:`marker_pixels`.

    Examples
    --------
    >>> len(marker_union([[5, 5], [5, 7]], 1, (10, 10)))  # two 5-pixel disks sharing one pixel
    9
    """
    disks = [marker_pixels(c, radius, shape) for c in np.asarray(centres, dtype=np.int64).reshape(-1, 2)]
    return np.unique(np.concatenate(disks), axis=0)


def stroke_pixels(points: NDArray[np.floating], radius: int, shape: tuple[int, int]) -> tuple[NDArray[np.int64], int]:
    """Pixels of a freehand stroke: the polyline through ``points``, widened by a disk of ``radius``.

    A stroke is what a user drags with the mouse (a scribble in LIDS terms).
    Consecutive points are joined by straight pixel lines, every line pixel
    is replaced by its disk, and what falls outside the image is dropped.

    Parameters
    ----------
    points : array_like of shape (K, 2), float
        ``(row, col)`` of the stroke's points in image coordinates, in drawing order (``K >= 1``).
    radius : int
        Brush radius ``>= 0`` (0: a one-pixel line).
    shape : tuple of int
        ``(H, W)`` of the image.

    Returns
    -------
    pixels : ndarray of shape (P, 2), int64
        Each stroke pixel inside the image once, in raster order.
    outside : int
        How many of ``points`` lay outside the image (their part of the stroke is dropped).

    Raises
    ------
    MarkerError
        If ``points`` is not a (K, 2) array of finite numbers, or the whole stroke lies outside the image.

    Examples
    --------
    >>> px, outside = stroke_pixels([[1, 1], [1, 4]], 0, (6, 6))
    >>> px.tolist(), outside
    ([[1, 1], [1, 2], [1, 3], [1, 4]], 0)
    >>> px, outside = stroke_pixels([[2, 2], [2, 8]], 1, (5, 5))  # widened; ends off the image
    >>> len(px), outside
    (10, 1)
    """
    from skimage.draw import line

    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or len(p) == 0 or not np.isfinite(p).all():
        raise MarkerError(f"a stroke is a list of (row, col) points with finite values; got shape {p.shape}")
    h, w = shape
    outside = int((~((p[:, 0] > -0.5) & (p[:, 0] < h - 0.5) & (p[:, 1] > -0.5) & (p[:, 1] < w - 0.5))).sum())
    q = np.rint(p).astype(np.int64)
    rows, cols = [q[:1, 0]], [q[:1, 1]]
    for (r0, c0), (r1, c1) in zip(q[:-1], q[1:], strict=True):
        rr, cc = line(int(r0), int(c0), int(r1), int(c1))
        rows.append(rr[1:])
        cols.append(cc[1:])
    centres = np.stack([np.concatenate(rows), np.concatenate(cols)], axis=1)
    px = (centres[:, None, :] + disk_offsets(radius)[None]).reshape(-1, 2)
    inside = (px[:, 0] >= 0) & (px[:, 0] < h) & (px[:, 1] >= 0) & (px[:, 1] < w)
    if not inside.any():
        raise MarkerError(f"the stroke lies outside the {h}x{w} image: draw it on the image")
    return np.unique(px[inside], axis=0), outside
