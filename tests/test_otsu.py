"""Otsu thresholds of many rows and the LIDS binarisation, against scikit-image."""

import numpy as np
import pytest
import torch
from skimage.filters import threshold_otsu

from flimexplore.engine.otsu import binarise, count_binarised, otsu_float, otsu_levels, saliency_levels

RNG = np.random.default_rng(19)


def _uint8_rows():
    rows = [
        RNG.integers(0, 256, 300),
        RNG.integers(120, 140, 50),
        np.concatenate([RNG.integers(0, 30, 200), RNG.integers(200, 210, 40)]),
        RNG.choice([3, 77, 200], 90),  # empty levels between: ties over a run of splits
        np.array([0, 0, 255, 255]),  # symmetric: every split between scores the same
        np.array([9, 10]),
        np.array([17]),
    ]
    rows += [RNG.integers(0, 256, int(RNG.integers(2, 500))) for _ in range(40)]
    return [r.astype(np.uint8) for r in rows]


@pytest.mark.parametrize("row", _uint8_rows())
def test_otsu_levels_equal_threshold_otsu_on_uint8(row):
    assert otsu_levels(torch.from_numpy(row)[None]).item() == threshold_otsu(row)


def test_otsu_levels_of_many_rows_at_once_and_ties_take_the_lowest_level():
    rows = torch.stack([torch.randint(0, 256, (64,), dtype=torch.uint8) for _ in range(5)])
    rows[0] = torch.tensor([0, 255] * 32, dtype=torch.uint8)  # any split 0..254 scores the same
    rows[1] = 42  # one level: the threshold is that level, nothing lies above
    t = otsu_levels(rows)
    assert t.tolist() == [threshold_otsu(r.numpy()) for r in rows]
    assert t[0] == 0 and t[1] == 42


def test_otsu_float_equals_threshold_otsu_on_float64():
    rows = [RNG.random(200), RNG.normal(size=77) * 3 + 1, np.round(RNG.random(120), 1), np.full(9, 0.3), RNG.random(2)]
    for row in rows:
        assert otsu_float(torch.from_numpy(row)[None]).item() == threshold_otsu(row)


def test_otsu_float_ignores_invalid_entries():
    values = torch.tensor([[0.1, 0.2, 0.9, 100.0], [5.0, -3.0, 5.0, 5.0]], dtype=torch.float64)
    valid = torch.tensor([[True, True, True, False], [True, False, False, False]])
    t = otsu_float(values, valid)
    assert t[0].item() == threshold_otsu(np.array([0.1, 0.2, 0.9]))
    assert t[1].item() == 5.0  # a single value is its own threshold


def test_levels_truncate_like_astype_uint8():
    s = torch.tensor([0.0, 0.5, 0.999, 1.0], dtype=torch.float64)
    assert saliency_levels(s).tolist() == (s.numpy() * 255).astype(np.uint8).tolist() == [0, 127, 254, 255]


def test_binarise_is_strictly_above_the_otsu_level_and_empty_for_a_constant_map():
    maps = torch.zeros(2, 4, 4, dtype=torch.float64)
    maps[0, 1:3, 1:3] = torch.tensor([[0.5, 0.5], [1.0, 0.5]])  # levels 127, 127, 255, 127
    maps[1] = 0.7
    objects, t = binarise(maps)
    # levels {0 x12, 127 x3, 255}: splitting above 0 scores 12*4*159**2, above 127 only 15*1*229.6**2
    assert t.tolist() == [0, 178]
    assert objects[0].equal(maps[0] > 0) and not objects[1].any()


def test_counts_from_histograms_equal_counting_the_binarised_maps():
    torch.manual_seed(0)
    maps = torch.rand(3, 4, 9, 11)
    maps[0, 1] = 0.0  # a constant map: nothing predicted
    masks = torch.rand(3, 9, 11) > 0.6
    masks[2] = False  # an image without object
    counts = count_binarised(maps, masks)
    objects, _ = binarise(maps)
    truth = masks[:, None]
    direct = torch.stack(
        [(objects & truth).sum((-2, -1)), (objects & ~truth).sum((-2, -1)),
         (~objects & truth).sum((-2, -1)), (~objects & ~truth).sum((-2, -1))], dim=-1
    ).transpose(0, 1)
    assert counts.dtype == torch.int64 and counts.shape == (4, 3, 4)
    assert torch.equal(counts, direct)
    assert counts[1, 0, :2].tolist() == [0, 0]
