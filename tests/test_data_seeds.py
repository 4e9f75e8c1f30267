"""Tests of reading and writing LIDS seeds files."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from flimexplore.data import read_seeds, write_seeds
from flimexplore.errors import MarkerError

# 2 markers on a 5-wide (x), 4-high (y) image: object at x=1 y=2, background at x=4 y=0.
SEEDS = "2 5 4\n1 2 -1 1\n4 0 -1 0\n"
MARKERS = np.array([[2, 1, 1], [0, 4, 0]])


def test_read_literal_file(tmp_path):
    path = tmp_path / "a-seeds.txt"
    path.write_text(SEEDS)
    markers, shape = read_seeds(path)
    assert shape == (4, 5)
    assert markers.dtype == np.int64 and markers.shape == (2, 3)
    np.testing.assert_array_equal(markers, MARKERS)


def test_read_accepts_handicap_fields_and_blank_trailing_lines(tmp_path):
    path = tmp_path / "a-seeds.txt"
    path.write_text("2 5 4\n1 2 -1 1 0\n4 0 -1 0 0.5 extra\n\n\n")
    markers, _ = read_seeds(str(path))
    np.testing.assert_array_equal(markers, MARKERS)


def test_write_exact_text(tmp_path):
    path = tmp_path / "a-seeds.txt"
    write_seeds(path, MARKERS, (4, 5))
    assert path.read_text() == SEEDS


def test_write_replaces_atomically_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "a-seeds.txt"
    path.write_text("old")
    write_seeds(path, MARKERS[:1], (4, 5))
    assert read_seeds(path)[0].tolist() == [[2, 1, 1]]
    assert [p.name for p in tmp_path.iterdir()] == ["a-seeds.txt"]


def test_empty_markers_round_trip(tmp_path):
    path = tmp_path / "e-seeds.txt"
    write_seeds(path, np.zeros((0, 3), dtype=np.int64), (7, 9))
    markers, shape = read_seeds(path)
    assert markers.shape == (0, 3) and shape == (7, 9)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("2 5\n1 2 -1 1\n4 0 -1 0\n", "line 1: header"),
        ("2 5 4 3\n1 2 -1 1\n4 0 -1 0\n", "line 1: header"),
        ("two 5 4\n", "line 1: .*non-integer"),
        ("1 0 4\n0 0 -1 1\n", "line 1: header"),
        ("2 5 4\n1 2 -1\n4 0 -1 0\n", "line 2: .*3 fields"),
        ("2 5 4\n1 2 -1 1\n4 x -1 0\n", "line 3: .*non-integer"),
        ("2 5 4\n1 2 -1 1\n4 0.5 -1 0\n", "line 3: .*non-integer"),
        ("3 5 4\n1 2 -1 1\n4 0 -1 0\n", "announces 3 markers but 2"),
        ("1 5 4\n1 2 -1 1\n4 0 -1 0\n", "announces 1 markers but 2"),
        ("2 5 4\n1 2 -1 1\n5 0 -1 0\n", "line 3: .*outside the 5x4 image"),
        ("2 5 4\n1 4 -1 1\n4 0 -1 0\n", "line 2: .*outside"),
        ("2 5 4\n-1 2 -1 1\n4 0 -1 0\n", "line 2: .*outside"),
        ("2 5 4\n1 2 -1 3\n4 0 -1 0\n", "line 2: .*label 3"),
    ],
)
def test_read_rejects_malformed_files(tmp_path, text, match):
    path = tmp_path / "bad-seeds.txt"
    path.write_text(text)
    with pytest.raises(MarkerError, match=match):
        read_seeds(path)


def test_read_missing_file(tmp_path):
    with pytest.raises(MarkerError, match="cannot read"):
        read_seeds(tmp_path / "none-seeds.txt")


@pytest.mark.parametrize(
    ("markers", "match"),
    [
        (np.array([[4, 0, 1]]), "outside the 4x5 image"),
        (np.array([[0, 5, 1]]), "outside"),
        (np.array([[0, 0, 7]]), "label 7"),
        (np.array([[0.5, 0, 1]]), "integer array"),
        (np.array([[0, 0]]), r"shape \(N, 3\)"),
    ],
)
def test_write_rejects_bad_markers(tmp_path, markers, match):
    path = tmp_path / "a-seeds.txt"
    with pytest.raises(MarkerError, match=match):
        write_seeds(path, markers, (4, 5))
    assert not path.exists()


def test_write_into_missing_folder(tmp_path):
    with pytest.raises(MarkerError, match="cannot write"):
        write_seeds(tmp_path / "nope" / "a-seeds.txt", MARKERS, (4, 5))


@st.composite
def markers_in_shape(draw):
    h, w = draw(st.integers(1, 600)), draw(st.integers(1, 600))
    n = draw(st.integers(0, 40))
    rows = draw(hnp.arrays(np.int64, n, elements=st.integers(0, h - 1)))
    cols = draw(hnp.arrays(np.int64, n, elements=st.integers(0, w - 1)))
    labels = draw(hnp.arrays(np.int64, n, elements=st.integers(0, 1)))
    return np.stack([rows, cols, labels], axis=1).reshape(n, 3), (h, w)


@settings(max_examples=25, deadline=None)
@given(markers_in_shape())
def test_round_trip(case):
    markers, shape = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r-seeds.txt"
        write_seeds(path, markers, shape)
        back, back_shape = read_seeds(path)
    assert back_shape == shape
    assert back.dtype == np.int64
    np.testing.assert_array_equal(back, markers)
