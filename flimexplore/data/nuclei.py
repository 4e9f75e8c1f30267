"""Real fluorescence nuclei: 16 tiles of one DSB2018 image, shipped inside flimexplore.

The tiles live in ``flimexplore/data/nuclei_tiles/`` as lossless PNG files:
the raw 16-bit intensities (``nuclei_r<row>_c<col>.png``) and the manual
instance labels (``..._labels.png``).  They were cut from the 512x512 Data
Science Bowl 2018 training image (``img2d.tif``/``mask2d.tif``) of the
stardist 0.9.2 wheel (BSD-3-Clause); ``nuclei_tiles/README.md`` and
``LICENSE`` say how and under which terms.  Nothing is downloaded or
installed separately.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from numpy.typing import NDArray

from flimexplore.data._dataset import Dataset
from flimexplore.errors import DatasetError

__all__ = ["load_nuclei", "tile_folder"]

TILE = 128
GRID = 4
DESCRIPTION = "real fluorescence nuclei (DSB2018), one 512x512 image cut into 16 tiles of 128x128"
ORIGIN = (
    "Data Science Bowl 2018 training image from the stardist 0.9.2 wheel "
    "(img2d.tif, mask2d.tif), BSD-3 licence; shipped in flimexplore/data/nuclei_tiles"
)


def tile_folder() -> Path:
    """The folder of the shipped tile PNG files (inside the installed package)."""
    return Path(str(resources.files("flimexplore.data").joinpath("nuclei_tiles")))


def load_nuclei(n_images: int | None = None) -> Dataset:
    """Load the DSB2018 nuclei tiles shipped with flimexplore.

    Intensities are scaled so that the 1st and 99.8th percentiles of the whole
    512x512 image (all 16 tiles) map to 0 and 1, then clipped; the grey image
    is replicated to RGB.  The mask is the label image > 0.

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
        If `n_images` < 1, or a tile file is missing or unreadable (a broken
        installation: reinstall flimexplore).
    """
    if n_images is not None and n_images < 1:
        raise DatasetError(f"nuclei: n_images must be at least 1, got {n_images}")
    tiles = _tiles(tile_folder())[: n_images or None]
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
def _tiles(folder: Path) -> tuple[tuple[str, NDArray[np.float32], NDArray[np.bool_]], ...]:
    """Read and normalise the tiles once per process; arrays are read-only."""
    stems = [f"nuclei_r{r}_c{c}" for r in range(GRID) for c in range(GRID)]
    raws, labels = [], []
    for stem in stems:
        for name, into in ((f"{stem}.png", raws), (f"{stem}_labels.png", labels)):
            path = folder / name
            try:
                into.append(np.asarray(iio.imread(path.read_bytes(), extension=".png")))
            except Exception as err:  # a missing or damaged file of the installation
                raise DatasetError(
                    f"cannot read the shipped nuclei tile {path}: {err}; reinstall flimexplore"
                ) from err
    raw = np.stack(raws).astype(np.float64)  # (16, 128, 128): the percentiles of the whole image
    if raw.shape != (GRID * GRID, TILE, TILE) or np.stack(labels).shape != raw.shape:
        raise DatasetError(f"the shipped nuclei tiles in {folder} are not 16 tiles of {TILE}x{TILE}; reinstall flimexplore")
    lo, hi = np.percentile(raw, (1.0, 99.8))
    out = []
    for stem, tile, lab in zip(stems, raw, labels, strict=True):
        grey = np.clip((tile - lo) / max(hi - lo, 1e-12), 0.0, 1.0).astype(np.float32)
        image = np.repeat(grey[:, :, None], 3, axis=2)
        mask = lab > 0
        image.flags.writeable = False
        mask.flags.writeable = False
        out.append((stem, image, mask))
    return tuple(out)
