"""The markers a (simulated) user has drawn so far: disks on the split's marked images.

A marker of the annotation loop is a disk of the study's radius around a
centre, labelled object (1) or background (0), on one marked image
(``Marker.image`` is the marked-image number ``k``, as ``--image K``).
Where disks of two markers overlap, the pixel takes the class of the later
marker (as a user's later stroke paints over an earlier one), so that the
pixels a model trains on and the pixels a LIDS seeds file stores are the
same (:func:`marker_rows`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray

from flimexplore.markers import MARGIN_FACTOR, admissible_centres, marker_pixels
from flimexplore.study.marked import ImageMarkers

__all__ = ["Marker", "admissible", "count_markers", "image_markers", "marker_rows", "markers_of_rows"]


@dataclass(frozen=True)
class Marker:
    """One disk marker drawn in the loop.

    Attributes
    ----------
    image : int
        Marked-image number ``k`` it lies on.
    label : int
        1 object, 0 background.
    row, col : int
        Centre.
    how : str
        Which rule placed it: ``start`` (the study's split-0 markers), ``random``,
        ``advised``, ``error`` (the largest error region's centre), ``uncertain``
        (the error policy where the model made no error it could correct) or ``user``.
    """

    image: int
    label: int
    row: int
    col: int
    how: str = "user"

    def to_dict(self) -> dict[str, int | str]:
        return asdict(self)


def marker_rows(
    markers: Sequence[Marker], radius: int, shapes: Mapping[int, tuple[int, int]],
    base: Mapping[int, NDArray[np.integer]] | None = None,
) -> dict[int, NDArray[np.int64]]:
    """Seeds rows ``(row, col, label)`` of every marked image that holds a marker.

    Parameters
    ----------
    markers : sequence of Marker
        In drawing order (a later disk paints over an earlier one).
    radius : int
        Disk radius.
    shapes : mapping of int to tuple of int
        ``(H, W)`` of each marked image.
    base : mapping of int to ndarray of shape (N, 3), optional
        Markers of any shape drawn before (a user's strokes), as seeds rows
        per marked image; the disks paint over them.

    Returns
    -------
    dict of int to ndarray of shape (N_k, 3), int64
        Images in order of their first marker; rows are the object pixels in
        raster order, then the background pixels in raster order.

    Examples
    --------
    >>> rows = marker_rows([Marker(0, 1, 3, 3), Marker(0, 0, 3, 4)], 1, {0: (8, 8)})
    >>> rows[0][:, 2].tolist()  # the background disk took the shared pixels
    [1, 1, 1, 0, 0, 0, 0, 0]
    """
    maps: dict[int, NDArray[np.int8]] = {}
    for k, rows in (base or {}).items():
        r = np.asarray(rows, np.int64).reshape(-1, 3)
        maps[k] = np.full(shapes[k], -1, np.int8)
        maps[k][r[:, 0], r[:, 1]] = r[:, 2]
    for m in markers:
        if m.image not in maps:
            maps[m.image] = np.full(shapes[m.image], -1, np.int8)
        px = marker_pixels(np.array([m.row, m.col]), radius, shapes[m.image])
        maps[m.image][px[:, 0], px[:, 1]] = m.label
    out = {}
    for k, labels in maps.items():
        parts = [np.column_stack([np.argwhere(labels == v), np.full(int((labels == v).sum()), v)]) for v in (1, 0)]
        out[k] = np.concatenate(parts).astype(np.int64)
    return out


def image_markers(
    markers: Sequence[Marker], radius: int, shapes: Mapping[int, tuple[int, int]],
    base: Mapping[int, NDArray[np.integer]] | None = None,
) -> ImageMarkers:
    """The model's markers (:class:`~flimexplore.study.marked.ImageMarkers`) of drawn disks (see :func:`marker_rows`)."""
    return ImageMarkers.from_rows(marker_rows(markers, radius, shapes, base))


def _components(rows: NDArray[np.integer], shape: tuple[int, int]) -> list[tuple[int, NDArray[np.int64]]]:
    """Each marker of seeds rows: a connected component (8-adjacency) of one label's pixels, with its label."""
    from scipy import ndimage

    r = np.asarray(rows, np.int64).reshape(-1, 3)
    out = []
    for label in (1, 0):
        grid = np.zeros(shape, bool)
        px = r[r[:, 2] == label]
        grid[px[:, 0], px[:, 1]] = True
        comp, n = ndimage.label(grid, structure=np.ones((3, 3)))
        out += [(label, np.argwhere(comp == j)) for j in range(1, n + 1)]
    return out


def count_markers(rows: NDArray[np.integer], shape: tuple[int, int]) -> int:
    """Markers in seeds rows ``(row, col, label)``: connected components (8-adjacency) of each label's pixels.

    Examples
    --------
    >>> count_markers(np.array([[1, 1, 1], [1, 2, 1], [5, 5, 1], [3, 3, 0]]), (8, 8))
    3
    """
    return len(_components(rows, shape))


def markers_of_rows(rows: NDArray[np.integer], shape: tuple[int, int], image: int) -> list[Marker]:
    """A user's markers of any shape as :class:`Marker` centres (each component's pixel nearest its centroid).

    The policies use them to keep a new marker ``1.5 r`` away from what was drawn
    (:func:`admissible`); the pixels themselves are passed on as ``base``.
    """
    out = []
    for label, px in _components(rows, shape):
        c = px[int(np.argmin(((px - px.mean(axis=0)) ** 2).sum(axis=1)))]
        out.append(Marker(image, label, int(c[0]), int(c[1]), "user"))
    return out


def admissible(shape: tuple[int, int], radius: int, markers: Sequence[Marker], image: int) -> NDArray[np.bool_]:
    """Where a new marker's centre may go on one image: the study's rules.

    A centre keeps ``1.5 r`` from the image border (so its disk lies inside
    the image) and from every marker already drawn on that image.

    Parameters
    ----------
    shape : tuple of int
        ``(H, W)`` of the image.
    radius : int
    markers : sequence of Marker
        Markers drawn so far (those of other images are ignored).
    image : int
        The image's marked-image number.

    Returns
    -------
    ok : ndarray of shape (H, W), bool
    """
    ok = admissible_centres(np.zeros(shape, bool), radius).copy()
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    for m in markers:
        if m.image == image:
            ok &= (rr - m.row) ** 2 + (cc - m.col) ** 2 >= (MARGIN_FACTOR * radius) ** 2
    return ok
