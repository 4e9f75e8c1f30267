"""The :class:`Dataset` container, the paper's image split, and checks on arrays.

Every loader in :mod:`flimexplore.data` ends by building a :class:`Dataset`,
whose constructor checks the invariants the rest of flimexplore relies on
(float32 RGB images in [0, 1], boolean masks of the image's shape, unique
stems, markers inside their image).  A mask may hold no object (a tile
without object is common in validation and test data); only the marked image
of a study must hold both classes, which the study checks.  The helpers here turn raw arrays read
from disk into that form and raise :class:`~flimexplore.errors.DatasetError`
with a message that names the offending image.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from flimexplore.data.store import ImageStore, PackedMasks
from flimexplore.errors import DatasetError, MarkerError

__all__ = ["Dataset", "Split", "check_markers", "split_dataset"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images, ground-truth masks and suggested marker settings of one dataset.

    Parameters
    ----------
    name : str
        Short name, e.g. ``"fish"`` or the folder name.
    images : tuple of ndarray of shape (H, W, 3), dtype float32, or ImageStore
        RGB images with finite values in [0, 1]; sizes may differ between images.  Large sets come as an
        :class:`~flimexplore.data.store.ImageStore` (on disk, read one image at a time; each read is a
        fresh copy, so editing it does not change the dataset).
    masks : tuple of ndarray of shape (H, W), dtype bool, or PackedMasks
        Ground truth, True = object; a mask may be all background (or all object).  Large sets come as
        :class:`~flimexplore.data.store.PackedMasks` (bits, unpacked one at a time, as fresh copies).
    stems : tuple of str
        One unique name per image (file stem, or ``"fish_000"`` style).
    description : str
        One line; says "synthetic" for the synthetic presets.
    origin : str
        Where the data comes from and under which licence.
    radius : int
        Suggested marker radius in pixels.
    n_bg : int
        Suggested number of background markers.
    n_superpixels : int
        Suggested number of SLIC superpixels per image for projections.
    markers : dict of str to ndarray of shape (N, 3), dtype int64
        User markers by stem, rows ``(row, col, label)`` with label 0 =
        background and 1 = object; may be empty.

    Raises
    ------
    DatasetError
        If the arrays break any of the invariants above.
    MarkerError
        If a marker array is malformed, names an unknown stem or lies outside
        its image.

    Notes
    -----
    Lists are accepted for the tuple fields and converted to tuples.
    """

    name: str
    images: Sequence[NDArray[np.float32]]
    masks: Sequence[NDArray[np.bool_]]
    stems: tuple[str, ...]
    description: str
    origin: str
    radius: int
    n_bg: int
    n_superpixels: int
    markers: dict[str, NDArray[np.int64]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for attr in ("images", "masks", "stems"):
            if not isinstance(getattr(self, attr), (ImageStore, PackedMasks)):
                object.__setattr__(self, attr, tuple(getattr(self, attr)))
        n = len(self.images)
        if n == 0:
            raise DatasetError(f"dataset {self.name!r} holds no images")
        if len(self.masks) != n or len(self.stems) != n:
            raise DatasetError(
                f"dataset {self.name!r} has {n} images, {len(self.masks)} masks "
                f"and {len(self.stems)} stems; they must be equally many"
            )
        if len(set(self.stems)) != n:
            dup = sorted({s for s in self.stems if self.stems.count(s) > 1})
            raise DatasetError(f"dataset {self.name!r} repeats stems {dup[:5]}")
        for key in ("radius", "n_bg", "n_superpixels"):
            if int(getattr(self, key)) < 1:
                raise DatasetError(f"{key} must be at least 1, got {getattr(self, key)}")
        if isinstance(self.images, ImageStore):  # its images were checked as they were stored
            for i, (mask, stem) in enumerate(zip(self.masks, self.stems, strict=True)):
                _check_mask(mask, self.images.shape(i)[:2], stem)
        else:
            for image, mask, stem in zip(self.images, self.masks, self.stems, strict=True):
                _check_pair(image, mask, stem)
        shapes = dict(zip(self.stems, (m.shape for m in self.masks), strict=True))
        checked = {}
        for stem, marks in self.markers.items():
            if stem not in shapes:
                raise MarkerError(f"markers given for {stem!r}, which is not an image of {self.name!r}")
            checked[stem] = check_markers(marks, shapes[stem], where=f"markers of {stem!r}")
        object.__setattr__(self, "markers", checked)

    def __len__(self) -> int:
        """Return the number of images."""
        return len(self.images)

    def subset(self, indices: Iterable[int]) -> Dataset:
        """Return a dataset with the chosen images and the same metadata.

        Parameters
        ----------
        indices : iterable of int
            Positions of the images to keep, in the order wanted.

        Returns
        -------
        Dataset
            The chosen images, masks, stems and their markers; arrays are shared.

        Raises
        ------
        DatasetError
            If an index is out of range or no index is given.
        """
        idx = [int(i) for i in indices]
        bad = [i for i in idx if not 0 <= i < len(self)]
        if bad:
            raise DatasetError(f"indices {bad[:5]} are out of range for {len(self)} images")
        stems = tuple(self.stems[i] for i in idx)
        return Dataset(
            name=self.name,
            images=self.images.take(idx) if isinstance(self.images, ImageStore) else tuple(self.images[i] for i in idx),
            masks=self.masks.take(idx) if isinstance(self.masks, PackedMasks) else tuple(self.masks[i] for i in idx),
            stems=stems,
            description=self.description,
            origin=self.origin,
            radius=self.radius,
            n_bg=self.n_bg,
            n_superpixels=self.n_superpixels,
            markers={s: m for s, m in self.markers.items() if s in stems},
        )


@dataclass(frozen=True)
class Split:
    """Indices of the test holdout, the marked images and the validation set.

    Parameters
    ----------
    test : tuple of int
        Holdout images for the final evaluation.
    marked : tuple of int
        Images on which markers are drawn.
    val : tuple of int
        Validation images used to pick the decision layer's weights.
    """

    test: tuple[int, ...]
    marked: tuple[int, ...]
    val: tuple[int, ...]


def split_dataset(n_images: int, seed: int = 0, test_fraction: float = 0.5, n_marked: int = 3) -> Split:
    """Split image indices as in the paper: test holdout, marked images, validation.

    A permutation seeded by `seed` is cut into ``round(n_images *
    test_fraction)`` test images (at least 1, and fewer when needed to leave one
    validation image), then `n_marked` marked images; the rest is validation.

    Parameters
    ----------
    n_images : int
        Number of images in the dataset.
    seed : int, optional
        Seed of the permutation; the same seed gives the same split.
    test_fraction : float, optional
        Fraction of the images held out for testing, in (0, 1).
    n_marked : int, optional
        Number of images to mark, at least 1.

    Returns
    -------
    Split
        Three disjoint tuples of indices that together cover ``range(n_images)``.

    Raises
    ------
    DatasetError
        If there are fewer than ``n_marked + 2`` images, or the parameters are
        out of range.

    Examples
    --------
    >>> split = split_dataset(10, seed=0)
    >>> len(split.test), len(split.marked), len(split.val)
    (5, 3, 2)
    """
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if n_marked < 1:
        raise DatasetError(f"n_marked must be at least 1, got {n_marked}")
    needed = n_marked + 2
    if n_images < needed:
        raise DatasetError(
            f"the dataset has {n_images} images but the split needs at least {needed} "
            f"(1 test, {n_marked} marked, 1 validation)"
        )
    order = [int(i) for i in np.random.default_rng(seed).permutation(n_images)]
    n_test = min(max(1, round(n_images * test_fraction)), n_images - n_marked - 1)
    stop = n_test + n_marked
    return Split(test=tuple(order[:n_test]), marked=tuple(order[n_test:stop]), val=tuple(order[stop:]))


def check_markers(markers: np.ndarray, shape: tuple[int, int], where: str) -> NDArray[np.int64]:
    """Check an array of markers against an image shape.

    Parameters
    ----------
    markers : array_like of shape (N, 3), integer dtype
        Rows ``(row, col, label)``, label 0 = background and 1 = object.
    shape : tuple of int
        ``(H, W)`` of the image the markers belong to.
    where : str
        What the markers are (a file or stem), for error messages.

    Returns
    -------
    ndarray of shape (N, 3), dtype int64
        A copy of the markers.

    Raises
    ------
    MarkerError
        If the array is not (N, 3) integers, a label is not 0 or 1, or a
        marker lies outside the image (the first such row is named).
    """
    arr = np.asarray(markers)
    if arr.size == 0:
        arr = arr.reshape(0, 3)
    if arr.ndim != 2 or arr.shape[1] != 3 or not (arr.dtype.kind in "iu" or arr.size == 0):
        raise MarkerError(f"{where}: expected an integer array of shape (N, 3), got {arr.dtype} {arr.shape}")
    arr = arr.astype(np.int64)
    h, w = shape
    outside = (arr[:, 0] < 0) | (arr[:, 0] >= h) | (arr[:, 1] < 0) | (arr[:, 1] >= w)
    if outside.any():
        i = int(np.argmax(outside))
        raise MarkerError(f"{where}: marker {i} at (row {arr[i, 0]}, col {arr[i, 1]}) is outside the {h}x{w} image")
    bad = ~np.isin(arr[:, 2], (0, 1))
    if bad.any():
        i = int(np.argmax(bad))
        raise MarkerError(f"{where}: marker {i} has label {arr[i, 2]}; labels are 0 (background) or 1 (object)")
    return arr


def _check_mask(mask: np.ndarray, shape: tuple[int, ...], stem: str) -> None:
    """Raise DatasetError unless `mask` is a bool array of the image's ``(H, W)``."""
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != tuple(shape):
        got = f"{mask.dtype} {mask.shape}" if isinstance(mask, np.ndarray) else type(mask).__name__
        raise DatasetError(f"mask {stem!r} must be a bool array of shape {tuple(shape)}, got {got}")


def _check_pair(image: np.ndarray, mask: np.ndarray, stem: str) -> None:
    """Raise DatasetError unless `image` and `mask` meet the Dataset invariants."""
    if not isinstance(image, np.ndarray) or image.dtype != np.float32 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise DatasetError(f"image {stem!r} must be a float32 array of shape (H, W, 3), got {got}")
    _check_mask(mask, image.shape[:2], stem)
    if not np.isfinite(image).all():
        raise DatasetError(f"image {stem!r} holds NaN or infinite values")
    if image.min() < 0.0 or image.max() > 1.0:
        raise DatasetError(f"image {stem!r} has values outside [0, 1]")
