"""Tests of the Dataset container, its checks, and the paper's split."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flimexplore.data import Dataset, Split, split_dataset
from flimexplore.errors import DatasetError, MarkerError

MASK = np.zeros((16, 16), dtype=bool)
MASK[4:8, 4:8] = True
IMAGE = np.full((16, 16, 3), 0.5, dtype=np.float32)


def make(n=3, **kw):
    args = dict(
        name="tiny",
        images=[IMAGE.copy() for _ in range(n)],
        masks=[MASK.copy() for _ in range(n)],
        stems=[f"s{i}" for i in range(n)],
        description="tiny test data",
        origin="tests",
        radius=1,
        n_bg=2,
        n_superpixels=10,
    )
    args.update(kw)
    return Dataset(**args)


def test_split_sizes_and_partition():
    split = split_dataset(10, seed=0)
    assert isinstance(split, Split)
    assert (len(split.test), len(split.marked), len(split.val)) == (5, 3, 2)
    assert sorted(split.test + split.marked + split.val) == list(range(10))
    assert all(isinstance(i, int) for i in split.test + split.marked + split.val)


def test_split_is_deterministic_per_seed():
    assert split_dataset(60, seed=3) == split_dataset(60, seed=3)
    assert split_dataset(60, seed=3) != split_dataset(60, seed=4)


def test_split_smallest_dataset_keeps_one_test_and_one_val():
    split = split_dataset(5, n_marked=3)
    assert (len(split.test), len(split.marked), len(split.val)) == (1, 3, 1)


def test_split_too_few_images_names_counts():
    with pytest.raises(DatasetError, match=r"4 images.*at least 5"):
        split_dataset(4)
    with pytest.raises(DatasetError, match=r"2 images.*at least 3"):
        split_dataset(2, n_marked=1)


@pytest.mark.parametrize("kw", [{"test_fraction": 0.0}, {"test_fraction": 1.0}, {"n_marked": 0}])
def test_split_rejects_bad_parameters(kw):
    with pytest.raises(DatasetError):
        split_dataset(20, **kw)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(5, 300),
    seed=st.integers(0, 2**32 - 1),
    fraction=st.floats(0.05, 0.95),
    n_marked=st.integers(1, 3),
)
def test_split_properties(n, seed, fraction, n_marked):
    split = split_dataset(n, seed=seed, test_fraction=fraction, n_marked=n_marked)
    assert sorted(split.test + split.marked + split.val) == list(range(n))
    assert len(split.marked) == n_marked
    assert len(split.test) >= 1 and len(split.val) >= 1
    assert len(split.test) == min(max(1, round(n * fraction)), n - n_marked - 1)


def test_dataset_basics_and_tuple_conversion():
    ds = make(3)
    assert len(ds) == 3
    assert isinstance(ds.images, tuple) and isinstance(ds.stems, tuple)
    assert ds.markers == {}


def test_subset_keeps_metadata_and_markers():
    marks = np.array([[5, 5, 1], [0, 0, 0]])
    ds = make(3, markers={"s2": marks, "s0": marks[:1]})
    sub = ds.subset([2, 1])
    assert sub.stems == ("s2", "s1")
    assert (sub.name, sub.radius, sub.n_bg, sub.n_superpixels) == ("tiny", 1, 2, 10)
    assert list(sub.markers) == ["s2"]
    np.testing.assert_array_equal(sub.markers["s2"], marks)
    assert sub.markers["s2"].dtype == np.int64
    assert sub.images[0] is ds.images[2]


def test_subset_out_of_range():
    with pytest.raises(DatasetError, match="out of range"):
        make(3).subset([0, 3])


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"images": [IMAGE.astype(np.float64)] * 3}, "float32"),
        ({"images": [IMAGE[..., 0]] * 3}, r"\(H, W, 3\)"),
        ({"masks": [MASK[:8]] * 3}, "bool array of shape"),
        ({"masks": [MASK.astype(np.uint8)] * 3}, "bool array"),
        ({"images": [np.full((16, 16, 3), np.nan, np.float32)] * 3}, "NaN"),
        ({"images": [np.full((16, 16, 3), 2.0, np.float32)] * 3}, r"outside \[0, 1\]"),
        ({"stems": ["a", "a", "b"]}, "repeats stems"),
        ({"stems": ["a", "b"]}, "equally many"),
        ({"radius": 0}, "radius"),
        ({"images": [], "masks": [], "stems": []}, "no images"),
    ],
)
def test_dataset_rejects_broken_invariants(kw, match):
    with pytest.raises(DatasetError, match=match):
        make(3, **kw)


@pytest.mark.parametrize(
    ("markers", "match"),
    [
        ({"nope": np.array([[0, 0, 1]])}, "not an image"),
        ({"s0": np.array([[16, 0, 1]])}, "outside the 16x16 image"),
        ({"s0": np.array([[0, -1, 0]])}, "outside"),
        ({"s0": np.array([[0, 0, 2]])}, "label 2"),
        ({"s0": np.array([[0.0, 0.0, 1.0]])}, "integer array"),
        ({"s0": np.array([0, 0, 1])}, r"shape \(N, 3\)"),
    ],
)
def test_dataset_rejects_bad_markers(markers, match):
    with pytest.raises(MarkerError, match=match):
        make(1, markers=markers)


def test_dataset_accepts_masks_without_object_or_background():
    ds = make(3, masks=[np.zeros((16, 16), bool), np.ones((16, 16), bool), MASK])
    assert not ds.masks[0].any() and ds.masks[1].all() and ds.masks[2].sum() == MASK.sum()
