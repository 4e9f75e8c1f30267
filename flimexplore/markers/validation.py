"""Checks of given markers against a marked image: inside it, on the right class, far enough apart."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from flimexplore.errors import MarkerError
from flimexplore.markers.sampling import _check_radius
from flimexplore.markers.sets import MarkerSet

__all__ = ["validate_markers"]


def validate_markers(markers: MarkerSet, mask: NDArray[np.bool_]) -> None:
    """Check user-given markers against a marked image's ground truth.

    The object centre must be an object pixel and each background centre a
    background pixel, and every centre must lie inside the image.  Unlike
    sampled markers, user markers may be closer than ``1.5 r`` to each other
    or to the border; their disks are clipped to the image.

    Raises
    ------
    MarkerError
        If the radius is not a positive integer that fits the image, the
        centres are not integer ``(row, col)`` pairs (object: shape (2,),
        background: shape (N, 2)), or a centre is outside the image or on the
        wrong class; the message names the first offending marker.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise MarkerError(f"the mask must be 2-D (H, W), got shape {mask.shape}")
    _check_radius(mask.shape, markers.radius)
    obj, bg = np.asarray(markers.obj), np.asarray(markers.bg)
    if obj.shape != (2,) or not _integral(obj):
        raise MarkerError(f"the object marker centre must be one integer (row, col) pair, got {markers.obj!r}")
    if bg.size == 0:
        bg = bg.reshape(0, 2)
    if bg.ndim != 2 or bg.shape[1] != 2 or not _integral(bg):
        raise MarkerError(
            f"background marker centres must be integer (row, col) pairs of shape (N, 2), got {bg.dtype} {bg.shape}"
        )
    h, w = mask.shape
    centres = [("object", obj, True)] + [(f"background #{i}", c, False) for i, c in enumerate(bg)]
    for name, c, want in centres:
        r, col = int(c[0]), int(c[1])
        if not (0 <= r < h and 0 <= col < w):
            raise MarkerError(f"{name} marker centre ({r}, {col}) is outside the {h}x{w} image")
        if bool(mask[r, col]) != want:
            where = "background" if want else "object"
            raise MarkerError(f"{name} marker centre ({r}, {col}) lies on the {where}")


def _integral(values: np.ndarray) -> bool:
    """Whether an array holds whole numbers only (integer dtype, or finite floats without fraction)."""
    if values.dtype.kind in "iu":
        return True
    if values.dtype.kind != "f":
        return False
    return bool(np.isfinite(values).all() and (values == np.round(values)).all())
