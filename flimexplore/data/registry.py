"""Named datasets and the one entry point that loads a name or a folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from flimexplore.data import nuclei, synthetic
from flimexplore.data._dataset import Dataset
from flimexplore.data.folder import load_folder
from flimexplore.errors import DatasetError

__all__ = ["DEFAULT_DATASET", "DatasetInfo", "list_datasets", "load_dataset", "require_dataset"]

DEFAULT_DATASET = "fish"


@dataclass(frozen=True)
class DatasetInfo:
    """What :func:`list_datasets` says about one named dataset.

    Parameters
    ----------
    name : str
        The name to pass to :func:`load_dataset`.
    description : str
        One line about the images.
    origin : str
        Where the data comes from and its licence.
    n_images : int
        Number of images loaded by default.
    available : bool
        Whether it can be loaded now.
    how_to_install : str
        Command that makes it available; empty when nothing is needed.
    """

    name: str
    description: str
    origin: str
    n_images: int
    available: bool
    how_to_install: str


_SYNTHETIC: dict[str, tuple[Callable[..., Dataset], str]] = {
    "fish": (synthetic.make_fish, synthetic.FISH),
    "eggs": (synthetic.make_eggs, synthetic.EGGS),
    "fundus": (synthetic.make_fundus, synthetic.FUNDUS),
}
_N_SYNTHETIC = 60
_N_NUCLEI = 16


def list_datasets() -> list[DatasetInfo]:
    """List the named datasets, without loading them.

    Returns
    -------
    list of DatasetInfo
        ``fish``, ``eggs``, ``fundus`` (synthetic, always available) and
        ``nuclei`` (real, shipped inside the package).

    Examples
    --------
    >>> [info.name for info in list_datasets()]
    ['fish', 'eggs', 'fundus', 'nuclei']
    """
    infos = [
        DatasetInfo(name, description, synthetic.ORIGIN, _N_SYNTHETIC, True, "")
        for name, (_, description) in _SYNTHETIC.items()
    ]
    infos.append(DatasetInfo("nuclei", nuclei.DESCRIPTION, nuclei.ORIGIN, _N_NUCLEI, True, ""))
    return infos


def load_dataset(
    name_or_path: str | os.PathLike[str] = DEFAULT_DATASET,
    *,
    n_images: int | None = None,
    object_label: tuple[int, ...] | None = None,
    size: int | None = None,
) -> Dataset:
    """Load a named dataset or a dataset folder.

    Parameters
    ----------
    name_or_path : str or path-like, optional
        ``"fish"`` (the default), ``"eggs"``, ``"fundus"`` or ``"nuclei"``
        (case-insensitive); anything else is read as a folder path (see
        :func:`~flimexplore.data.load_folder`).  To read a folder called like
        a dataset, write it as a path, e.g. ``"./fish"``.
    n_images : int or None, optional
        At most this many images, the first ones.  Synthetic presets then
        draw only those; None gives 60 synthetic images, 16 nuclei tiles or
        the whole folder.
    object_label : tuple of int or None, optional
        Mask values that are object, for folder datasets (see
        :func:`~flimexplore.data.load_folder`); the named datasets have
        boolean masks and take None only.
    size : int or None, optional
        Side of the synthetic presets' square images (32 to 512; None: 128,
        the default images).  Only for the synthetic presets.

    Returns
    -------
    Dataset
        Float32 (H, W, 3) images in [0, 1] with bool (H, W) masks.

    Raises
    ------
    DatasetError
        If `n_images` < 1, the name is unknown and no such folder exists (the
        message lists the names), `object_label` is given for a named dataset,
        `size` is given for a dataset that is not a synthetic preset or is out
        of range, or the dataset cannot be loaded.
    MarkerError
        If a folder's seeds files are malformed.

    Examples
    --------
    >>> ds = load_dataset("fish", n_images=2)
    >>> len(ds), ds.images[0].shape, ds.masks[0].dtype
    (2, (128, 128, 3), dtype('bool'))
    """
    if n_images is not None and (isinstance(n_images, bool) or int(n_images) != n_images or n_images < 1):
        raise DatasetError(f"n_images must be a positive integer or None, got {n_images!r}")
    key = name_or_path.lower() if isinstance(name_or_path, str) else None
    if object_label is not None and (key in _SYNTHETIC or key == "nuclei"):
        raise DatasetError(
            f"object_label (--object-label) applies to mask files of folder datasets; {key!r} has boolean masks"
        )
    if key in _SYNTHETIC:
        n = _N_SYNTHETIC if n_images is None else int(n_images)
        return _SYNTHETIC[key][0](n_images=n) if size is None else _SYNTHETIC[key][0](n_images=n, size=size)
    if size is not None:
        raise DatasetError(
            f"size (--size) only applies to the synthetic presets ({', '.join(_SYNTHETIC)}); "
            f"{str(name_or_path)!r} is loaded at its own size, so leave size unset"
        )
    if key == "nuclei":
        return nuclei.load_nuclei(n_images)
    require_dataset(name_or_path)
    return load_folder(name_or_path, n_images, object_label)


def require_dataset(name_or_path: str | os.PathLike[str]) -> None:
    """Check, without loading anything, that a dataset name is a preset or an existing path.

    Raises
    ------
    DatasetError
        Naming the value and the known names.

    Examples
    --------
    >>> require_dataset("nuclei")
    >>> require_dataset("nope")
    Traceback (most recent call last):
    ...
    flimexplore.errors.DatasetError: no dataset named 'nope' and no folder at that path; known names: fish, eggs, fundus, nuclei
    """
    names = [info.name for info in list_datasets()]
    text = os.fspath(name_or_path)
    if text.lower() not in names and not os.path.exists(text):
        raise DatasetError(f"no dataset named {text!r} and no folder at that path; known names: {', '.join(names)}")
