"""What a study's markers are: one object marker and its background markers, or other shapes of the same.

Coordinates are ``(row, col)`` throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["MarkerGroups", "MarkerPixels", "MarkerSet", "ObjectMarkerSet"]


@dataclass(frozen=True, eq=False)
class MarkerSet:
    """One object marker and its background markers, all of one radius.

    Attributes
    ----------
    obj : ndarray of shape (2,), int64
        ``(row, col)`` of the object-marker centre.
    bg : ndarray of shape (n_bg, 2), int64
        ``(row, col)`` of each background-marker centre.
    radius : int
        Disk radius ``r`` in pixels.
    """

    obj: NDArray[np.int64]
    bg: NDArray[np.int64]
    radius: int

    def __len__(self) -> int:
        return len(self.bg)

    def pairs(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """The (object, background) centre of each of its ``n_bg`` marker pairs, as two (n_bg, 2) arrays."""
        return np.repeat(np.asarray(self.obj)[None], len(self.bg), axis=0), np.asarray(self.bg)


@dataclass(frozen=True, eq=False)
class ObjectMarkerSet:
    """One background marker and the object markers varied against it (``study --vary object``).

    Attributes
    ----------
    background : ndarray of shape (2,), int64
        ``(row, col)`` of the fixed background-marker centre.
    objects : ndarray of shape (n_obj, 2), int64
        ``(row, col)`` of each object-marker centre.
    radius : int
        Disk radius ``r`` in pixels.
    """

    background: NDArray[np.int64]
    objects: NDArray[np.int64]
    radius: int

    def __len__(self) -> int:
        return len(self.objects)

    def pairs(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """The (object, background) centre of each of its ``n_obj`` marker pairs, as two (n_obj, 2) arrays."""
        return np.asarray(self.objects), np.repeat(np.asarray(self.background)[None], len(self.objects), axis=0)


@dataclass(frozen=True, eq=False)
class MarkerPixels:
    """One model's markers of any shape (scribbles): its object and background pixels.

    Attributes
    ----------
    obj : ndarray of shape (K, 2), int64
        ``(row, col)`` of the object-marker pixels.
    bg : ndarray of shape (L, 2), int64
        ``(row, col)`` of the background-marker pixels.
    """

    obj: NDArray[np.int64]
    bg: NDArray[np.int64]

    def __len__(self) -> int:
        return 1


@dataclass(frozen=True, eq=False)
class MarkerGroups:
    """Markers of models that each learn from several disks: K object and M background disks.

    All models of one split share the K object disks; model ``k`` has its
    own M background disks ``bg[k]``.

    Attributes
    ----------
    obj : ndarray of shape (K, 2), int64
        ``(row, col)`` of the object-disk centres.
    bg : ndarray of shape (n_models, M, 2), int64
        ``(row, col)`` of each model's background-disk centres.
    radius : int
        Disk radius ``r`` in pixels.
    """

    obj: NDArray[np.int64]
    bg: NDArray[np.int64]
    radius: int

    def __len__(self) -> int:
        return len(self.bg)
