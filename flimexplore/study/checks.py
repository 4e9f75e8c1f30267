"""Checks of a study's data and markers before any work: values, the marked image, user markers, pair centres."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from flimexplore.data import Dataset, Split, split_dataset
from flimexplore.data.folder import SEEDS_SUFFIX
from flimexplore.data.seeds import check_seeds_shape, read_seeds
from flimexplore.data.store import ImageStore
from flimexplore.errors import DatasetError, MarkerError

__all__ = ["load_user_markers"]


def _check_values(dataset: Dataset) -> None:
    """Refuse NaN, inf or out-of-range pixels (arrays of a Dataset can be changed after it was built).

    An :class:`ImageStore` checked its images when it stored them, and reads give copies, so it is not read here.
    """
    if isinstance(dataset.images, ImageStore):
        return
    for stem, image in zip(dataset.stems, dataset.images, strict=True):
        if not np.isfinite(image).all():
            raise DatasetError(f"image {stem!r} of dataset {dataset.name!r} holds NaN or infinite values")
        if image.min() < 0.0 or image.max() > 1.0:
            raise DatasetError(f"image {stem!r} of dataset {dataset.name!r} has values outside [0, 1]")


def _check_marked(dataset: Dataset, split: Split, image: int, seed: int) -> None:
    """Refuse a marked image without object or background, naming the images that could be marked instead."""
    mask = dataset.masks[split.marked[image]]
    if mask.any() and not mask.all():
        return
    both = [k for k, i in enumerate(split.marked) if dataset.masks[i].any() and not dataset.masks[i].all()]
    if both:
        instead = "marked images of this split that hold both: " + ", ".join(
            f"--image {k} ({dataset.stems[split.marked[k]]!r})" for k in both
        )
    else:
        usable = {i for i, m in enumerate(dataset.masks) if m.any() and not m.all()}
        other = next(
            (s for s in range(seed + 1, seed + 200) if usable & set(split_dataset(len(dataset), seed=s).marked)), None
        )
        instead = f"none of this split's {len(split.marked)} marked images does" + (
            f"; --seed {other} draws a split whose marked images include one that does" if other is not None else ""
        )
    lacks = "object" if not mask.any() else "background"
    raise DatasetError(
        f"marked image {dataset.stems[split.marked[image]]!r} (--image {image}) of dataset {dataset.name!r} has no "
        f"{lacks} pixels; the marked image must hold both object and background (validation and test images "
        f"need not); {instead}"
    )


def load_user_markers(
    source: str | None, dataset: Dataset, index: int
) -> tuple[NDArray[np.int64] | None, str | None]:
    """The user's markers of one image: from a seeds file or folder, or from the dataset's ``markers/``.

    Parameters
    ----------
    source : str or None
        A ``<stem>-seeds.txt`` file, or a folder holding ``<stem>-seeds.txt``
        for the image's stem; None takes ``dataset.markers`` of the stem.
    dataset : Dataset
    index : int
        The image.

    Returns
    -------
    markers : ndarray of shape (N, 3), int64, or None
        Rows ``(row, col, label)``; None when there are none.
    where : str or None
        Where they came from, for messages.

    Raises
    ------
    MarkerError
        If the file or folder is missing, does not fit the image (size, x/y
        swapped), or lacks object (label 1) or background (label 0) markers.
    """
    stem, mask = dataset.stems[index], dataset.masks[index]
    if source is None:
        if stem not in dataset.markers:
            return None, None
        markers, where = dataset.markers[stem], f"markers/{stem}{SEEDS_SUFFIX} of dataset {dataset.name!r}"
    else:
        path = Path(source)
        if path.is_dir():
            path = path / f"{stem}{SEEDS_SUFFIX}"
            if not path.is_file():
                found = sorted(p.name for p in Path(source).glob(f"*{SEEDS_SUFFIX}"))[:5]
                raise MarkerError(
                    f"--markers {source}: no {path.name} for the marked image {stem!r} "
                    f"(found: {', '.join(found) or 'no seeds files'}); give the file or choose the image with --image"
                )
        elif not path.is_file():
            raise MarkerError(f"--markers {source}: no such seeds file or folder")
        markers, shape = read_seeds(path, image_shape=mask.shape)
        check_seeds_shape(path, markers, shape, mask)
        where = str(path)
    labels = set(markers[:, 2].tolist())
    for label, name in ((1, "object (label 1)"), (0, "background (label 0)")):
        if label not in labels:
            raise MarkerError(f"the user markers {where} hold no {name} pixels; a model needs both")
    return markers, where


def _check_pairs(obj: NDArray, bg: NDArray, mask: NDArray[np.bool_]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Marker centres as (B, 2) int64 arrays, refusing ones outside the image or on the wrong class."""
    pairs = []
    for name, centres, want in (("object", obj, True), ("background", bg, False)):
        c = np.asarray(centres)
        whole = c.dtype.kind in "iu" or (c.dtype.kind == "f" and np.isfinite(c).all() and (c == np.round(c)).all())
        if c.ndim != 2 or c.shape[1] != 2 or not whole:
            raise MarkerError(f"{name} marker centres must be whole numbers of shape (B, 2), got {c.dtype} {c.shape}")
        c = c.astype(np.int64)
        h, w = mask.shape
        inside = (c[:, 0] >= 0) & (c[:, 0] < h) & (c[:, 1] >= 0) & (c[:, 1] < w)
        if not inside.all():
            i = int(np.argmin(inside))
            raise MarkerError(f"{name} marker {i} at ({c[i, 0]}, {c[i, 1]}) is outside the {h}x{w} image")
        wrong = mask[c[:, 0], c[:, 1]] != want
        if wrong.any():
            i = int(np.argmax(wrong))
            raise MarkerError(
                f"{name} marker {i} at ({c[i, 0]}, {c[i, 1]}) lies on the {'background' if want else 'object'}"
            )
        pairs.append(c)
    if len(pairs[0]) != len(pairs[1]):
        raise MarkerError(f"{len(pairs[0])} object but {len(pairs[1])} background markers; they come in pairs")
    return pairs[0], pairs[1]
