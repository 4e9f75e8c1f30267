"""Datasets for flimexplore: synthetic presets, real nuclei, users' folders, marker files.

Every loader returns a :class:`Dataset` of float32 RGB images in [0, 1] with
boolean masks.  Use :func:`load_dataset` with a name (``"fish"``, the default,
``"eggs"``, ``"fundus"``, ``"nuclei"``) or a folder path, and
:func:`split_dataset` for the paper's test / marked / validation split.  This
subpackage needs only NumPy, scikit-image and tifffile.
"""

from flimexplore.data._dataset import Dataset, Split, split_dataset
from flimexplore.data.folder import load_folder
from flimexplore.data.nuclei import load_nuclei
from flimexplore.data.registry import (
    DEFAULT_DATASET,
    DatasetInfo,
    list_datasets,
    load_dataset,
)
from flimexplore.data.seeds import read_seeds, write_seeds
from flimexplore.data.synthetic import make_eggs, make_fish, make_fundus

__all__ = [
    "DEFAULT_DATASET",
    "Dataset",
    "DatasetInfo",
    "Split",
    "list_datasets",
    "load_dataset",
    "load_folder",
    "load_nuclei",
    "make_eggs",
    "make_fish",
    "make_fundus",
    "read_seeds",
    "split_dataset",
    "write_seeds",
]
