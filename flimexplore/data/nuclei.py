"""Real fluorescence nuclei: the DSB2018 image that ships inside the stardist wheel.

``stardist==0.9.2`` bundles one 512x512 training image of the Data Science
Bowl 2018 (``stardist/data/images/img2d.tif``) with its label image
(``mask2d.tif``), under stardist's BSD-3 licence.  The files are located through
the installed distribution's metadata, so stardist (and TensorFlow) is never
imported.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import tifffile
from numpy.typing import NDArray

from flimexplore.data._dataset import Dataset
from flimexplore.errors import DatasetError

__all__ = ["INSTALL_NUCLEI", "load_nuclei", "nuclei_files"]

INSTALL_NUCLEI = "pip install --no-deps stardist==0.9.2"
TILE = 128
DESCRIPTION = "real fluorescence nuclei (DSB2018), one 512x512 image cut into 16 tiles of 128x128"
ORIGIN = (
    "Data Science Bowl 2018 training image shipped in the stardist 0.9.2 wheel "
    "(stardist/data/images/img2d.tif, mask2d.tif), BSD-3 licence"
)


def nuclei_files() -> tuple[Path, Path] | None:
    """Locate the DSB2018 image and label files of an installed stardist, without importing it.

    Returns
    -------
    tuple of Path or None
        ``(image_path, label_path)``, or None when stardist or its data files
        are not installed.
    """
    names = ("stardist/data/images/img2d.tif", "stardist/data/images/mask2d.tif")
    try:
        dist = importlib.metadata.distribution("stardist")
        found = tuple(Path(str(dist.locate_file(n))) for n in names)
    except importlib.metadata.PackageNotFoundError:
        found = ()
    if len(found) == 2 and all(p.is_file() for p in found):
        return found[0], found[1]
    spec = importlib.util.find_spec("stardist")  # a top-level package: its code is not run
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations))).parent
    found = tuple(root / n for n in names)
    return (found[0], found[1]) if all(p.is_file() for p in found) else None


def load_nuclei(n_images: int | None = None) -> Dataset:
    """Load the DSB2018 nuclei image from the stardist wheel as 128x128 tiles.

    Intensities are scaled so that the 1st and 99.8th percentiles of the whole
    image map to 0 and 1, then clipped; the grey image is replicated to RGB.
    The mask is the label image > 0.

    Parameters
    ----------
    n_images : int or None, optional
        Keep at most this many tiles (the first ones, row by row); None keeps all 16.

    Returns
    -------
    Dataset
        Named ``"nuclei"`` with stems ``"nuclei_r{row}_c{col}"``: float32
        images of shape (128, 128, 3) in [0, 1], bool masks of shape
        (128, 128); radius=3, n_bg=30, n_superpixels=20, no markers.

    Raises
    ------
    DatasetError
        If stardist's data files are not installed (the message gives the
        command to install them), cannot be read, or `n_images` < 1.
    """
    if n_images is not None and n_images < 1:
        raise DatasetError(f"nuclei: n_images must be at least 1, got {n_images}")
    files = nuclei_files()
    if files is None:
        raise DatasetError(f"the nuclei dataset needs stardist's data files; install them with: {INSTALL_NUCLEI}")
    tiles = _tiles(*files)[: n_images or None]
    return Dataset(
        name="nuclei",
        images=tuple(t[1].copy() for t in tiles),
        masks=tuple(t[2].copy() for t in tiles),
        stems=tuple(t[0] for t in tiles),
        description=DESCRIPTION,
        origin=ORIGIN,
        radius=3,
        n_bg=30,
        n_superpixels=20,
    )


@lru_cache(maxsize=1)
def _tiles(image_path: Path, label_path: Path) -> tuple[tuple[str, NDArray[np.float32], NDArray[np.bool_]], ...]:
    """Read, normalise and tile the image once per process; arrays are read-only."""
    try:
        raw = tifffile.imread(image_path).astype(np.float64)
        labels = tifffile.imread(label_path)
    except Exception as err:  # tifffile raises many kinds of error on corrupt files
        raise DatasetError(f"cannot read the nuclei files {image_path} / {label_path}: {err}") from err
    if raw.ndim != 2 or labels.shape != raw.shape:
        raise DatasetError(f"nuclei: expected two 2D images of one shape, got {raw.shape} and {labels.shape}")
    lo, hi = np.percentile(raw, (1.0, 99.8))
    grey = np.clip((raw - lo) / max(hi - lo, 1e-12), 0.0, 1.0).astype(np.float32)
    out = []
    for r in range(raw.shape[0] // TILE):
        for c in range(raw.shape[1] // TILE):
            window = np.s_[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE]
            image = np.repeat(grey[window][:, :, None], 3, axis=2)
            mask = labels[window] > 0
            image.flags.writeable = False
            mask.flags.writeable = False
            out.append((f"nuclei_r{r}_c{c}", image, mask))
    return tuple(out)
