"""Tests of the DSB2018 nuclei tiles read from the stardist wheel."""

import subprocess
import sys

import numpy as np
import pytest

from flimexplore.data import list_datasets, load_dataset, load_nuclei, nuclei
from flimexplore.errors import DatasetError

needs_files = pytest.mark.skipif(
    nuclei.nuclei_files() is None,
    reason=f"stardist's data files are not installed; run: {nuclei.INSTALL_NUCLEI}",
)


@needs_files
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


@needs_files
def test_robust_normalisation():
    grey = np.concatenate([img[..., 0].ravel() for img in load_nuclei().images])
    assert grey.min() == 0.0 and grey.max() == 1.0
    assert 0.01 <= np.mean(grey == 0.0) < 0.05  # about 1 % at or below the 1st percentile
    assert 0.0005 < np.mean(grey == 1.0) < 0.01  # about 0.2 % above the 99.8th


@needs_files
def test_tiles_match_the_label_image():
    import tifffile

    labels = tifffile.imread(nuclei.nuclei_files()[1])
    ds = load_dataset("nuclei", n_images=6)
    assert len(ds) == 6
    np.testing.assert_array_equal(ds.masks[5], labels[128:256, 128:256] > 0)


@needs_files
def test_finding_files_does_not_import_stardist():
    code = "import sys; from flimexplore.data import nuclei; nuclei.load_nuclei(); print('stardist' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_stardist_says_how_to_install(monkeypatch):
    monkeypatch.setattr(nuclei, "nuclei_files", lambda: None)
    with pytest.raises(DatasetError, match=r"pip install --no-deps stardist==0\.9\.2"):
        load_nuclei()
    info = {i.name: i for i in list_datasets()}["nuclei"]
    assert not info.available and info.how_to_install == "pip install --no-deps stardist==0.9.2"


def test_bad_n_images():
    with pytest.raises(DatasetError, match="n_images"):
        load_nuclei(0)
