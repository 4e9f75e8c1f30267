"""Tests of the synthetic presets and of the registry that names them."""

import numpy as np
import pytest

from flimexplore.data import (
    DEFAULT_DATASET,
    Dataset,
    list_datasets,
    load_dataset,
    make_eggs,
    make_fish,
    make_fundus,
    synthetic,
)
from flimexplore.errors import DatasetError

PRESETS = {"fish": (make_fish, 10), "eggs": (make_eggs, 25), "fundus": (make_fundus, 30)}


@pytest.mark.parametrize("name", PRESETS)
def test_default_preset_has_60_valid_images(name):
    make, n_superpixels = PRESETS[name]
    ds = make()
    assert isinstance(ds, Dataset) and len(ds) == 60 and ds.name == name
    assert ds.stems[:2] == (f"{name}_000", f"{name}_001")
    assert (ds.radius, ds.n_bg, ds.n_superpixels) == (3, 30, n_superpixels)
    assert "synthetic" in ds.description and "synthetic" in ds.origin and ds.markers == {}
    for image, mask in zip(ds.images, ds.masks, strict=True):
        assert image.shape == (128, 128, 3) and image.dtype == np.float32
        assert mask.shape == (128, 128) and mask.dtype == bool
        assert 0.0 <= image.min() and image.max() <= 1.0
        assert 0.01 < mask.mean() < 0.2


@pytest.mark.parametrize("name", PRESETS)
def test_same_seed_same_arrays_even_uncached(name):
    make = PRESETS[name][0]
    first = make(3, seed=5)
    synthetic._render.cache_clear()
    again = make(3, seed=5)
    for a, b in zip(first.images + first.masks, again.images + again.masks, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", PRESETS)
def test_other_seed_other_arrays(name):
    make = PRESETS[name][0]
    a, b = make(2, seed=0), make(2, seed=1)
    assert not np.array_equal(a.images[0], b.images[0])
    assert not np.array_equal(a.masks[0], b.masks[0])


@pytest.mark.parametrize("name", PRESETS)
def test_fewer_images_are_the_first_ones(name):
    make = PRESETS[name][0]
    small, big = make(2), make(5)
    np.testing.assert_array_equal(small.images[1], big.images[1])
    np.testing.assert_array_equal(small.masks[1], big.masks[1])


def test_returned_arrays_are_private_copies():
    ds = make_fish(1)
    ds.images[0][:] = 0.0
    assert make_fish(1).images[0].max() > 0.0


def test_presets_differ_from_each_other():
    images = [PRESETS[name][0](1).images[0] for name in PRESETS]
    assert not np.array_equal(images[0], images[1]) and not np.array_equal(images[1], images[2])


def test_fish_object_covers_5_to_15_percent():
    fractions = [m.mean() for m in make_fish().masks]
    assert 0.04 < min(fractions) and max(fractions) < 0.16


def test_background_mixes_textured_and_plain_regions():
    # the study needs background regions of different texture: local std varies a lot
    image, mask = make_fish(1).images[0], make_fish(1).masks[0]
    grey = image.mean(axis=2)
    stds = [
        grey[r : r + 8, c : c + 8].std()
        for r in range(0, 128, 8)
        for c in range(0, 128, 8)
        if not mask[r : r + 8, c : c + 8].any()
    ]
    assert min(stds) < 0.03 < max(stds)


@pytest.mark.parametrize(("n_images", "seed"), [(0, 0), (2, -1)])
def test_bad_arguments(n_images, seed):
    with pytest.raises(DatasetError):
        make_eggs(n_images, seed=seed)


def test_load_dataset_names():
    assert DEFAULT_DATASET == "fish"
    assert load_dataset(n_images=2).name == "fish"
    assert load_dataset("Eggs", n_images=3).name == "eggs"
    assert len(load_dataset("fundus", n_images=4)) == 4


@pytest.mark.parametrize("n_images", [0, -1, 1.5, True])
def test_load_dataset_rejects_bad_n_images(n_images):
    with pytest.raises(DatasetError, match="n_images"):
        load_dataset("fish", n_images=n_images)


def test_load_dataset_unknown_name_lists_names():
    with pytest.raises(DatasetError, match="no dataset named 'fishh'.*fish, eggs, fundus, nuclei"):
        load_dataset("fishh")


def test_list_datasets():
    infos = {info.name: info for info in list_datasets()}
    assert list(infos) == ["fish", "eggs", "fundus", "nuclei"]
    for name in PRESETS:
        assert infos[name].available and infos[name].n_images == 60 and infos[name].how_to_install == ""
        assert "synthetic" in infos[name].description
    assert infos["nuclei"].n_images == 16


# SHA-256 (first 16 hex digits) of the first 4 images and masks, computed before `size` existed:
# the default 128x128 presets must stay byte-identical.
PINNED = {"fish": "cd40af8abf9ca086", "eggs": "0e6b042a08cdc60d", "fundus": "0bb216a760495916"}


@pytest.mark.parametrize("name", PRESETS)
def test_default_size_is_byte_identical_to_before(name):
    import hashlib

    h = hashlib.sha256()
    for image, mask in zip(*(lambda d: (d.images, d.masks))(PRESETS[name][0](4)), strict=True):
        h.update(image.tobytes())
        h.update(mask.tobytes())
    assert h.hexdigest()[:16] == PINNED[name]


@pytest.mark.parametrize("name", PRESETS)
def test_size_scales_the_scene_and_the_radius(name):
    small, big = PRESETS[name][0](2, size=128), PRESETS[name][0](2, size=256)
    assert big.images[0].shape == (256, 256, 3) and big.masks[0].shape == (256, 256) and big.radius == 6
    assert small.radius == 3
    for s, b in zip(small.masks, big.masks, strict=True):  # the object keeps about its share of the image
        assert 0.5 < b.mean() / s.mean() < 2.0
    assert 0.0 <= big.images[1].min() and big.images[1].max() <= 1.0


def test_large_sets_are_drawn_uncached_with_the_same_pixels(monkeypatch):
    cached = make_eggs(2, size=64)
    monkeypatch.setattr(synthetic, "_UNCACHED_BYTES", 0)
    fresh = make_eggs(2, size=64)
    np.testing.assert_array_equal(cached.images[1], fresh.images[1])
    fresh.images[0][:] = 0.0  # callers may edit them, as cached copies
    assert make_eggs(2, size=64).images[0].max() > 0.0


@pytest.mark.parametrize("size", [16, 600, 100.5, True])
def test_bad_size(size):
    with pytest.raises(DatasetError, match="size must be an integer from 32 to 512"):
        make_fish(1, size=size)


def test_size_is_only_for_presets(tmp_path):
    assert load_dataset("fish", n_images=1, size=64).images[0].shape == (64, 64, 3)
    with pytest.raises(DatasetError, match="only applies to the synthetic presets"):
        load_dataset(str(tmp_path), size=64)
