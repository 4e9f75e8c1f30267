"""Tests of the DSB2018 nuclei tiles shipped inside the package."""

import hashlib
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest

from flimexplore.data import list_datasets, load_dataset, load_nuclei, nuclei
from flimexplore.errors import DatasetError

# SHA-256 of (image bytes, mask bytes) of the 16 tiles, recorded from the TIFF files of the
# stardist 0.9.2 wheel before the tiles were shipped: loading from the PNG files must not change them.
TILES_SHA256 = "67a76c3de87df1fa1d3c0c96d1414163e730f36dc7f330fb96f32af648211d97"


def test_tiles_are_byte_identical_to_the_wheel_s():
    ds = load_nuclei()
    h = hashlib.sha256()
    for image, mask in zip(ds.images, ds.masks, strict=True):
        h.update(image.tobytes())
        h.update(mask.tobytes())
    assert h.hexdigest() == TILES_SHA256
    assert float(np.mean(ds.images)) == pytest.approx(0.12013009935617447, abs=1e-9)
    assert sum(int(m.sum()) for m in ds.masks) == 52226


def test_sixteen_tiles_with_both_classes():
    ds = load_nuclei()
    assert len(ds) == 16 and ds.name == "nuclei"
    assert ds.stems[:2] == ("nuclei_r0_c0", "nuclei_r0_c1") and ds.stems[-1] == "nuclei_r3_c3"
    assert (ds.radius, ds.n_bg, ds.n_superpixels) == (3, 30, 20)
    assert "BSD-3" in ds.origin and "DSB2018" in ds.description
    for image, mask in zip(ds.images, ds.masks, strict=True):
        assert image.shape == (128, 128, 3) and image.dtype == np.float32
        assert mask.shape == (128, 128) and mask.dtype == bool
        np.testing.assert_array_equal(image[..., 0], image[..., 2])
        assert 0.05 < mask.mean() < 0.5


def test_robust_normalisation():
    grey = np.concatenate([img[..., 0].ravel() for img in load_nuclei().images])
    assert grey.min() == 0.0 and grey.max() == 1.0
    assert 0.01 <= np.mean(grey == 0.0) < 0.05  # about 1 % at or below the 1st percentile
    assert 0.0005 < np.mean(grey == 1.0) < 0.01  # about 0.2 % above the 99.8th


def test_tiles_match_the_label_files():
    labels = iio.imread(nuclei.tile_folder() / "nuclei_r1_c1_labels.png")
    ds = load_dataset("nuclei", n_images=6)
    assert len(ds) == 6
    np.testing.assert_array_equal(ds.masks[5], labels > 0)
    assert labels.max() > 10  # instance labels, one per nucleus


def test_licence_and_origin_ship_next_to_the_tiles():
    folder = nuclei.tile_folder()
    assert "BSD 3-Clause" in (folder / "LICENSE").read_text() and "stardist 0.9.2" in (folder / "LICENSE").read_text()
    assert "export_nuclei_tiles.py" in (folder / "README.md").read_text()


def test_always_available_without_stardist():
    code = "import sys; from flimexplore.data import nuclei; nuclei.load_nuclei(); print('stardist' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    info = {i.name: i for i in list_datasets()}["nuclei"]
    assert info.available and info.how_to_install == "" and info.n_images == 16


def test_damaged_installation_says_reinstall(tmp_path):
    nuclei._tiles.cache_clear()
    try:
        with pytest.raises(DatasetError, match=r"nuclei_r0_c0\.png.*reinstall flimexplore"):
            nuclei._tiles(tmp_path)
    finally:
        nuclei._tiles.cache_clear()


def test_bad_n_images():
    with pytest.raises(DatasetError, match="n_images"):
        load_nuclei(0)
