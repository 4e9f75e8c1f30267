"""Large image sets on disk (ImageStore): same pixels, same study results, files cleaned up (issue 12)."""

from __future__ import annotations

import gc
import os
import pickle

import imageio.v3 as iio
import numpy as np
import pytest
import torch

import flimexplore.data.folder as folder_module
import flimexplore.data.synthetic as synthetic
from flimexplore.data import Dataset, load_dataset, load_folder
from flimexplore.data.store import ImageStore, PackedMasks, image_shape
from flimexplore.errors import DatasetError
from flimexplore.study.config import StudyConfig
from flimexplore.study.context import StudyContext
from flimexplore.study.run import run_study_all


def images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random((5 + i, 7, 3)).astype(np.float32) for i in range(n)]


def test_store_gives_back_every_image_exactly_and_reads_only_what_is_asked():
    arrays = images(4)
    store = ImageStore()
    for k, a in enumerate(arrays):
        store.append(a, f"im{k}")
    assert len(store) == 4 and [store.shape(i) for i in range(4)] == [a.shape for a in arrays]
    for got, want in zip(store, arrays, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(store[-1], arrays[-1])
    view = store.take([3, 0])
    assert len(view) == 2 and image_shape(view, 0) == arrays[3].shape
    np.testing.assert_array_equal(view[1], arrays[0])
    np.testing.assert_array_equal(store[1:3][0], arrays[1])
    first = store[0]
    first[:] = 0  # a read is a copy: the store does not change
    np.testing.assert_array_equal(store[0], arrays[0])
    with pytest.raises(IndexError):
        store[4]
    again = pickle.loads(pickle.dumps(view))  # on the same machine, by file
    np.testing.assert_array_equal(again[0], arrays[3])


def test_store_checks_images_as_it_stores_them_naming_them():
    store = ImageStore()
    bad = np.zeros((3, 3, 3), np.float32)
    bad[1, 1, 1] = np.nan
    with pytest.raises(DatasetError, match="image 'a.png' holds NaN"):
        store.append(bad, "a.png")
    with pytest.raises(DatasetError, match="'b' has values outside"):
        store.append(np.full((3, 3, 3), 2, np.float32), "b")
    with pytest.raises(DatasetError, match="'c' must be a float32 array of shape"):
        store.append(np.zeros((3, 3), np.float32), "c")
    assert len(store) == 0
    with pytest.raises(DatasetError, match="view"):
        ImageStore().take([]).append(np.zeros((2, 2, 3), np.float32))


def test_the_file_goes_with_the_last_store_that_uses_it():
    store = ImageStore()
    store.append(np.zeros((2, 2, 3), np.float32))
    folder = store._file.folder
    view = store.take([0])
    del store
    gc.collect()
    assert os.path.isdir(folder)  # the view still reads it
    del view
    gc.collect()
    assert not os.path.exists(folder)


def test_packed_masks_give_back_every_mask_exactly():
    rng = np.random.default_rng(3)
    masks = [rng.random((5 + i, 9)) > 0.5 for i in range(4)]  # sizes that are not whole bytes
    packed = PackedMasks(masks)
    assert len(packed) == 4 and [packed.shape(i) for i in range(4)] == [m.shape for m in masks]
    for got, want in zip(packed, masks, strict=True):
        assert got.dtype == np.bool_
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(packed.take([2])[0], masks[2])
    with pytest.raises(DatasetError, match="2-D bool"):
        packed.append(np.zeros((2, 2), np.uint8))


def test_dataset_accepts_a_store_and_checks_masks_against_its_shapes():
    arrays = images(3)
    store = ImageStore()
    for a in arrays:
        store.append(a)
    masks = [np.zeros(a.shape[:2], bool) for a in arrays]
    ds = Dataset("s", store, masks, ("a", "b", "c"), "d", "o", 2, 3, 4)
    assert ds.images is store and len(ds) == 3
    np.testing.assert_array_equal(ds.subset([2]).images[0], arrays[2])
    with pytest.raises(DatasetError, match="mask 'b' must be a bool array of shape"):
        Dataset("s", store, [masks[0], masks[0], masks[2]], ("a", "b", "c"), "d", "o", 2, 3, 4)


@pytest.fixture
def small_store_limit(monkeypatch):
    """Make every set 'large', so that the store path runs on test-sized data."""
    monkeypatch.setattr(synthetic, "STORE_BYTES", 1)
    monkeypatch.setattr(folder_module, "STORE_BYTES", 1)
    synthetic._stored.cache_clear()
    yield
    synthetic._stored.cache_clear()


def test_presets_in_a_store_have_the_same_pixels_and_give_the_same_study(small_store_limit, monkeypatch):
    stored = load_dataset("fish", n_images=20)
    assert isinstance(stored.images, ImageStore) and isinstance(stored.masks, PackedMasks)
    monkeypatch.setattr(synthetic, "STORE_BYTES", 2**40)
    plain = load_dataset("fish", n_images=20)
    assert isinstance(plain.images, tuple)
    for a, b in zip(stored.images, plain.images, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(stored.masks, plain.masks, strict=True):
        np.testing.assert_array_equal(a, b)
    cfg = StudyConfig(dataset="fish", n_images=20, splits=1, n_bg=3, epochs=3)
    ctx = StudyContext(cfg, "cpu", dataset=stored)
    assert ctx.fingerprint == StudyContext(cfg, "cpu", dataset=plain).fingerprint
    got = run_study_all(cfg, None, device="cpu", context=ctx).rows
    want = run_study_all(cfg, None, device="cpu", context=StudyContext(cfg, "cpu", dataset=plain)).rows
    assert [r["val_dice"] for r in got] == [r["val_dice"] for r in want]


def test_lazy_groups_read_a_store_image_by_image(small_store_limit, monkeypatch):
    import flimexplore.study.context as context_module

    monkeypatch.setattr(context_module, "EAGER_BYTES", 0)  # validation and test converted lazily
    ds = load_dataset("fish", n_images=20)
    ctx = StudyContext(StudyConfig(dataset="fish", n_images=20, splits=1, n_bg=2, epochs=2), "cpu", dataset=ds)
    lazy = ctx.val_groups[0].images
    assert isinstance(lazy._rgb, ImageStore) and len(lazy) == len(ctx.split.val)  # a view: nothing read whole
    lazy_masks = ctx.val_groups[0].masks
    assert isinstance(lazy_masks._masks, PackedMasks)
    monkeypatch.setattr(context_module, "EAGER_BYTES", 2**40)
    eager = StudyContext(ctx.config, "cpu", dataset=ds)
    assert np.array_equal(lazy[0:3].numpy(), eager.val_groups[0].images[0:3].numpy())
    assert torch.equal(lazy_masks[1:4], eager.val_groups[0].masks[1:4])
    cfg = ctx.config
    got = run_study_all(cfg, None, device="cpu", context=ctx).rows  # scored from bits, slice by slice
    want = run_study_all(cfg, None, device="cpu", context=eager).rows
    assert [(r["val_dice"], r["test_dice"]) for r in got] == [(r["val_dice"], r["test_dice"]) for r in want]


def test_large_folders_are_read_into_a_store(small_store_limit, tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(4):
        iio.imwrite(tmp_path / "images" / f"im{i}.png", (rng.random((20, 24, 3)) * 255).astype(np.uint8))
        mask = np.zeros((20, 24), np.uint8)
        mask[5:12, 6:15] = 255
        iio.imwrite(tmp_path / "masks" / f"im{i}.png", mask)
    stored = load_folder(tmp_path)
    assert isinstance(stored.images, ImageStore) and isinstance(stored.masks, PackedMasks) and len(stored) == 4
    for i in range(4):
        want = iio.imread(tmp_path / "images" / f"im{i}.png").astype(np.float32) / 255
        np.testing.assert_allclose(stored.images[i], want, atol=1e-6)
        assert stored.masks[i].sum() == 7 * 9
