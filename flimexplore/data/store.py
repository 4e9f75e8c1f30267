"""Images kept on disk and read one at a time, masks kept as bits: bounded memory for paper-sized image sets.

A study reads each validation and test image once per chunk of models and
never needs them all at once, yet a :class:`~flimexplore.data.Dataset`
held its images in memory: 632 RGB images of 400x400 as float32 are 1.2 GB,
and memory grew with the validation set.  :class:`ImageStore` keeps the
images of a large set in one temporary file instead; indexing it reads one
image (a fresh, writable float32 array) with a plain file read, so the
process holds only the images in use.  The masks of such a set are kept in
memory as packed bits (:class:`PackedMasks`, 1/8 byte per pixel, 1/96 of the
images' float32 bytes) and unpacked one at a time.

The file lives in a private temporary folder that is removed when the last
store using it is garbage-collected (or at exit).  Stores are meant for one
machine: a pickled store names its file, so it unpickles only where the
file is.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

import numpy as np
from numpy.typing import NDArray

from flimexplore.errors import DatasetError

__all__ = ["STORE_BYTES", "ImageStore", "PackedMasks", "image_shape"]

STORE_BYTES = 256 * 2**20
"""Image sets above this many bytes (float32 RGB) are kept in an :class:`ImageStore` by the loaders."""


class _File:
    """One store file and the folder that holds it; the folder goes when this object does."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="flimexplore-images-")
        self.path = os.path.join(self.folder, "images.f32")
        open(self.path, "wb").close()
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.folder, True)


class ImageStore(Sequence[NDArray[np.float32]]):
    """A sequence of float32 RGB images of any sizes, kept in a temporary file.

    Build it with :meth:`append` (each image is checked then: float32, shape
    ``(H, W, 3)``, finite values in [0, 1]); read it like a tuple.

    Examples
    --------
    >>> store = ImageStore()
    >>> store.append(np.zeros((2, 3, 3), np.float32))
    >>> store.append(np.ones((4, 4, 3), np.float32))
    >>> len(store), store.shape(1), float(store[1].sum())
    (2, (4, 4, 3), 48.0)
    >>> len(store.take([1, 1, 0]))
    3
    """

    def __init__(self) -> None:
        self._file = _File()
        self._offsets: list[int] = []
        self._shapes: list[tuple[int, int, int]] = []
        self._end = 0
        self._owner = True

    # -- building -------------------------------------------------------------------------------
    def append(self, image: NDArray[np.float32], name: str = "image") -> None:
        """Check one image and write it at the end of the file.

        Raises
        ------
        DatasetError
            If it is not a float32 ``(H, W, 3)`` array of finite values in [0, 1]; the message names ``name``.
        """
        if not self._owner:
            raise DatasetError("this store is a view of another one (take); append to the original")
        if not isinstance(image, np.ndarray) or image.dtype != np.float32 or image.ndim != 3 or image.shape[2] != 3:
            got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
            raise DatasetError(f"image {name!r} must be a float32 array of shape (H, W, 3), got {got}")
        if not np.isfinite(image).all():
            raise DatasetError(f"image {name!r} holds NaN or infinite values")
        if image.size and (image.min() < 0.0 or image.max() > 1.0):
            raise DatasetError(f"image {name!r} has values outside [0, 1]")
        data = np.ascontiguousarray(image).tobytes()
        with open(self._file.path, "r+b") as f:
            f.seek(self._end)
            f.write(data)
        self._offsets.append(self._end)
        self._shapes.append(tuple(int(v) for v in image.shape))  # type: ignore[arg-type]
        self._end += len(data)

    def take(self, indices: Iterable[int]) -> ImageStore:
        """A store of the chosen images (in that order) that shares this store's file; nothing is copied."""
        idx = [int(i) for i in indices]
        view = ImageStore.__new__(ImageStore)
        view._file = self._file  # keeps the file alive as long as the view
        view._offsets = [self._offsets[i] for i in idx]
        view._shapes = [self._shapes[i] for i in idx]
        view._end = self._end
        view._owner = False
        return view

    # -- reading --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._offsets)

    @overload
    def __getitem__(self, index: int) -> NDArray[np.float32]: ...

    @overload
    def __getitem__(self, index: slice) -> ImageStore: ...

    def __getitem__(self, index: int | slice) -> NDArray[np.float32] | ImageStore:
        if isinstance(index, slice):
            return self.take(range(len(self))[index])
        i = range(len(self))[index]  # IndexError and negative indices as for a tuple
        shape = self._shapes[i]
        count = shape[0] * shape[1] * shape[2]
        return np.fromfile(self._file.path, dtype=np.float32, count=count, offset=self._offsets[i]).reshape(shape)

    def __iter__(self) -> Iterator[NDArray[np.float32]]:
        for i in range(len(self)):
            yield self[i]

    def shape(self, i: int) -> tuple[int, int, int]:
        """Shape of image ``i``, without reading it."""
        return self._shapes[i]

    def nbytes(self, i: int) -> int:
        """Bytes of image ``i`` as an array, without reading it."""
        h, w, c = self._shapes[i]
        return h * w * c * 4

    def __reduce__(self) -> tuple[Any, ...]:
        return (_reopen, (self._file.path, self._offsets, self._shapes))

    def __repr__(self) -> str:
        return f"<ImageStore of {len(self)} images, {self._end / 2**20:.0f} MiB in {self._file.path}>"


def _reopen(path: str, offsets: list[int], shapes: list[tuple[int, int, int]]) -> ImageStore:
    """Unpickle a store on the machine that holds its file (the file stays the original's)."""
    if not os.path.exists(path):
        raise DatasetError(f"the image store file {path} is not on this machine; load the dataset here instead")
    view = ImageStore.__new__(ImageStore)
    view._file = _Borrowed(path)
    view._offsets, view._shapes = list(offsets), [tuple(s) for s in shapes]
    view._end = max((o + int(np.prod(s)) * 4 for o, s in zip(offsets, shapes, strict=True)), default=0)
    view._owner = False
    return view


class _Borrowed:
    """A store file owned by another process: never removed from here."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.folder = os.path.dirname(path)


class PackedMasks(Sequence[NDArray[np.bool_]]):
    """Boolean masks kept as packed bits (1/8 of a byte per pixel); indexing unpacks one (a fresh copy).

    Examples
    --------
    >>> masks = PackedMasks([np.eye(3, dtype=bool), np.ones((2, 5), bool)])
    >>> len(masks), masks.shape(1), int(masks[0].sum()), masks.take([1])[0].shape
    (2, (2, 5), 3, (2, 5))
    """

    def __init__(self, masks: Iterable[NDArray[np.bool_]] = ()) -> None:
        self._bits: list[NDArray[np.uint8]] = []
        self._shapes: list[tuple[int, int]] = []
        for m in masks:
            self.append(m)

    def append(self, mask: NDArray[np.bool_]) -> None:
        m = np.asarray(mask)
        if m.dtype != np.bool_ or m.ndim != 2:
            raise DatasetError(f"a mask must be a 2-D bool array, got {m.dtype} {m.shape}")
        self._bits.append(np.packbits(m, axis=None))
        self._shapes.append((int(m.shape[0]), int(m.shape[1])))

    def take(self, indices: Iterable[int]) -> PackedMasks:
        """The chosen masks (sharing their bits; nothing is unpacked)."""
        view = PackedMasks()
        for i in indices:
            view._bits.append(self._bits[int(i)])
            view._shapes.append(self._shapes[int(i)])
        return view

    def __len__(self) -> int:
        return len(self._bits)

    @overload
    def __getitem__(self, index: int) -> NDArray[np.bool_]: ...

    @overload
    def __getitem__(self, index: slice) -> PackedMasks: ...

    def __getitem__(self, index: int | slice) -> NDArray[np.bool_] | PackedMasks:
        if isinstance(index, slice):
            return self.take(range(len(self))[index])
        i = range(len(self))[index]
        h, w = self._shapes[i]
        return np.unpackbits(self._bits[i], count=h * w).astype(bool).reshape(h, w)

    def __iter__(self) -> Iterator[NDArray[np.bool_]]:
        for i in range(len(self)):
            yield self[i]

    def shape(self, i: int) -> tuple[int, int]:
        """Shape of mask ``i``, without unpacking it."""
        return self._shapes[i]


def image_shape(images: Sequence[NDArray[np.floating]], i: int) -> tuple[int, ...]:
    """Shape of image ``i`` of a tuple of arrays or an :class:`ImageStore` (which is not read)."""
    return images.shape(i) if isinstance(images, ImageStore) else tuple(images[i].shape)
