"""Markers of one model on several marked images: what a FLIM user actually draws.

FLIM users draw several strokes per class on a few training images.  An
:class:`ImageMarkers` holds one model's markers on one or several of the
split's *marked* images (the training images; validation and test images
are never marked), image by image: every marked pixel of every image trains
the model's FLIM block, and every listed image's mask trains its decision
layer (:meth:`flimexplore.study.context.StudyContext.evaluate_image_markers`).

Images are named by their marked-image number ``k`` (``StudyConfig.image``,
``--image K``: the split's ``k``-th marked image), so a validation or test
image cannot be named at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from flimexplore.errors import MarkerError
from flimexplore.markers import MarkerPixels

__all__ = ["ImageMarkers"]


@dataclass(frozen=True, eq=False)
class ImageMarkers:
    """One model's markers of any shape on one or several marked images.

    Attributes
    ----------
    images : tuple of int
        Marked-image numbers ``k`` (0-based, as ``StudyConfig.image``), distinct, in the order given.
    obj : tuple of ndarray of shape (K_i, 2), int64
        ``(row, col)`` of the object pixels on each image (``K_i`` may be 0).
    bg : tuple of ndarray of shape (L_i, 2), int64
        ``(row, col)`` of the background pixels on each image (``L_i`` may be 0).

    Notes
    -----
    Every image holds at least one marked pixel, and the object and the
    background class each hold one somewhere (:meth:`check`).

    Examples
    --------
    >>> m = ImageMarkers.from_rows({0: [[5, 5, 1], [9, 9, 0]], 2: [[3, 4, 0]]})
    >>> m.images, m.n_pixels, m.on(2).tolist()
    ((0, 2), 3, [[3, 4, 0]])
    """

    images: tuple[int, ...]
    obj: tuple[NDArray[np.int64], ...]
    bg: tuple[NDArray[np.int64], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "images", tuple(int(k) for k in self.images))
        for name in ("obj", "bg"):
            arrays = tuple(np.asarray(a, dtype=np.int64).reshape(-1, 2) for a in getattr(self, name))
            object.__setattr__(self, name, arrays)
        if not (len(self.images) == len(self.obj) == len(self.bg)):
            raise MarkerError(
                f"{len(self.images)} images but {len(self.obj)} object and {len(self.bg)} background pixel arrays"
            )

    def __len__(self) -> int:
        return 1

    @classmethod
    def from_rows(cls, rows: Mapping[int, NDArray[np.integer] | Sequence[Sequence[int]]]) -> ImageMarkers:
        """Build from seeds rows ``(row, col, label)`` per marked image (label 1 object, 0 background).

        Parameters
        ----------
        rows : mapping of int to array_like of shape (N, 3)
            Marked-image number -> its markers, in the order the images should take.
        """
        images, obj, bg = [], [], []
        for k, r in rows.items():
            a = np.asarray(r, dtype=np.int64).reshape(-1, 3)
            images.append(int(k))
            obj.append(a[a[:, 2] == 1, :2])
            bg.append(a[a[:, 2] == 0, :2])
        return cls(tuple(images), tuple(obj), tuple(bg))

    @property
    def n_pixels(self) -> int:
        """Marked pixels over every image and both classes."""
        return int(sum(len(a) for a in (*self.obj, *self.bg)))

    def on(self, k: int) -> NDArray[np.int64]:
        """Seeds rows ``(row, col, label)`` of marked image ``k`` (object pixels first; empty if it holds none)."""
        if k not in self.images:
            return np.zeros((0, 3), np.int64)
        j = self.images.index(k)
        parts = [np.column_stack([self.obj[j], np.ones(len(self.obj[j]), np.int64)]),
                 np.column_stack([self.bg[j], np.zeros(len(self.bg[j]), np.int64)])]
        return np.concatenate(parts).astype(np.int64)

    def pixels_on(self, k: int) -> MarkerPixels:
        """Object and background pixels of marked image ``k`` (empty arrays if it holds none)."""
        rows = self.on(k)
        return MarkerPixels(rows[rows[:, 2] == 1, :2], rows[rows[:, 2] == 0, :2])

    def positions(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Where the object and the background marker are said to be (``results.csv``'s positions).

        For each class, the pixel nearest the centroid of that class's pixels
        on the first image (in :attr:`images` order) that holds any.
        """
        out = []
        for arrays in (self.obj, self.bg):
            px = next((a for a in arrays if len(a)), np.zeros((1, 2), np.int64))
            d = ((px - px.mean(axis=0)) ** 2).sum(axis=1)
            out.append(px[int(np.argmin(d))])
        return out[0], out[1]

    def pairs(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Object and background pixels of every image as ``(image, row, col)`` rows (a fingerprint's input)."""
        def rows(arrays: tuple[NDArray[np.int64], ...]) -> NDArray[np.int64]:
            parts = [np.column_stack([np.full(len(a), k, np.int64), a]) for k, a in zip(self.images, arrays, strict=True)]
            return np.concatenate(parts).astype(np.int64) if parts else np.zeros((0, 3), np.int64)

        return rows(self.obj), rows(self.bg)

    def check(self, shapes: Mapping[int, tuple[int, int]], where: str = "the markers") -> ImageMarkers:
        """Refuse markers that name no marked image, lie off their image, or lack a class.

        Parameters
        ----------
        shapes : mapping of int to tuple of int
            ``(H, W)`` of each marked image of the split, by marked-image number.
        where : str
            What the markers are (a file), for messages.

        Returns
        -------
        ImageMarkers
            ``self``, so that calls can be chained.

        Raises
        ------
        MarkerError
            Naming ``where`` and what to change.
        """
        if not self.images:
            raise MarkerError(f"{where}: no marked image holds a marker")
        if len(set(self.images)) != len(self.images):
            raise MarkerError(f"{where}: marked images {list(self.images)} are given more than once; one entry per image")
        for k, o, b in zip(self.images, self.obj, self.bg, strict=True):
            if k not in shapes:
                raise MarkerError(
                    f"{where}: there is no marked image {k}; the split has {len(shapes)} marked images "
                    f"(0..{len(shapes) - 1}), and validation and test images cannot be marked"
                )
            h, w = shapes[k]
            if not len(o) and not len(b):
                raise MarkerError(f"{where}: marked image {k} holds no marker pixel; leave it out")
            for name, a in (("object", o), ("background", b)):
                off = (a[:, 0] < 0) | (a[:, 0] >= h) | (a[:, 1] < 0) | (a[:, 1] >= w)
                if off.any():
                    j = int(np.argmax(off))
                    raise MarkerError(
                        f"{where}: {name} pixel (row {a[j, 0]}, col {a[j, 1]}) lies outside the {h}x{w} marked image {k}"
                    )
        for name, arrays, label in (("object", self.obj, 1), ("background", self.bg, 0)):
            if not sum(len(a) for a in arrays):
                raise MarkerError(f"{where}: no {name} pixel (label {label}) on any marked image; a model needs both classes")
        return self
