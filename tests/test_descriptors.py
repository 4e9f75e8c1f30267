"""Values of the image-only marker descriptors on tiny literal images."""

import numpy as np
import pytest

from flimexplore.analysis.descriptors import DESCRIPTORS, position_descriptors, signed_border_distance
from flimexplore.engine.colour import lab_norm
from flimexplore.errors import MarkerError


def _scene():
    """20x20 grey image: flat left half (0.5), checkerboard right half (0/1); object square on the left."""
    img = np.full((20, 20, 3), 0.5)
    yy, xx = np.mgrid[:20, :20]
    img[:, 10:] = ((yy + xx) % 2)[:, 10:, None].astype(float)
    mask = np.zeros((20, 20), bool)
    mask[2:8, 2:8] = True
    return img, mask


def test_signed_border_distance_is_negative_inside_and_positive_outside():
    mask = np.zeros((5, 5), bool)
    mask[1:4, 1:4] = True
    d = signed_border_distance(mask)
    assert d[2, 2] == -2.0 and d[1, 1] == -1.0
    assert d[0, 0] == pytest.approx(np.sqrt(2)) and d[0, 2] == 1.0
    assert (d[mask] < 0).all() and (d[~mask] > 0).all()


def test_flat_patch_has_zero_texture_and_checkerboard_known_values():
    img, mask = _scene()
    d = position_descriptors(img, mask, (4, 4), np.array([[12, 4], [10, 15]]), 1)
    assert set(d) == set(DESCRIPTORS)
    assert d["bg_std"][0] == 0.0 and d["bg_gradient"][0] == 0.0 and d["bg_entropy"][0] == 0.0
    # checkerboard disk of radius 1: centre (10, 15) is 1 (white), its 4 neighbours 0 -> L in {1, 0}
    lab = lab_norm(np.array([[[1.0, 1, 1], [0, 0, 0]]], dtype=np.float64))
    l1, l0 = lab[0, 0, 0], lab[0, 1, 0]
    expected_std = np.sqrt(1 / 5 * 4 / 5) * abs(l1 - l0)  # one value 1, four 0: Bernoulli(1/5) spread
    assert d["bg_std"][1] == pytest.approx(expected_std, rel=1e-5)
    p = np.array([1 / 5, 4 / 5])
    assert d["bg_entropy"][1] == pytest.approx(-(p * np.log2(p)).sum())
    assert d["bg_gradient"][1] == pytest.approx(2 * (l1 - l0) ** 2, rel=1e-5)  # both neighbours differ
    # object disk is flat too
    assert d["obj_std"][0] == 0.0 and d["obj_std"][1] == 0.0


def test_border_distances_and_pair_distance():
    img, mask = _scene()
    d = position_descriptors(img, mask, (4, 4), np.array([[12, 4], [4, 12]]), 1)
    assert d["bg_border_distance"].tolist() == [5.0, 5.0]  # rows 8..: row 12 is 5 px below row 7
    assert d["obj_border_distance"][0] == -3.0
    assert d["obj_bg_distance"].tolist() == [8.0, 8.0]


def test_identical_colours_have_zero_distance_and_separated_ones_a_perfect_nearest_mean():
    img = np.zeros((16, 16, 3))
    img[:, :, 0] = 1.0  # red everywhere
    mask = np.zeros((16, 16), bool)
    mask[:, :8] = True
    d = position_descriptors(img, mask, (8, 3), np.array([[8, 12]]), 2)
    assert d["colour_distance"][0] == 0.0 and d["texture_distance"][0] == 0.0
    img[:, 8:] = [0.0, 0.0, 1.0]  # blue background: a colour rule segments perfectly
    d = position_descriptors(img, mask, (8, 3), np.array([[8, 12]]), 2)
    assert d["colour_distance"][0] > 0.3
    assert d["nearest_mean_dice"][0] == pytest.approx(1.0)
    assert d["patch_fisher"][0] > 10.0


def test_descriptors_are_vectorised_consistently():
    rng = np.random.default_rng(0)
    img = rng.random((24, 24, 3))
    mask = np.zeros((24, 24), bool)
    mask[8:16, 8:16] = True
    centres = np.array([[3, 3], [20, 20], [4, 19]])
    together = position_descriptors(img, mask, (12, 12), centres, 2)
    for i, c in enumerate(centres):
        alone = position_descriptors(img, mask, (12, 12), c[None], 2)
        for k in DESCRIPTORS:
            assert alone[k][0] == pytest.approx(together[k][i], rel=1e-9, abs=1e-12), k


def test_bad_centres_raise_marker_errors():
    img, mask = _scene()
    with pytest.raises(MarkerError, match="outside the 20x20 image"):
        position_descriptors(img, mask, (4, 4), np.array([[25, 4]]), 1)
    with pytest.raises(MarkerError, match="whole"):
        position_descriptors(img, mask, (4, 4), np.array([[2.5, 4]]), 1)
    with pytest.raises(MarkerError, match="radius"):
        position_descriptors(img, mask, (4, 4), np.array([[12, 4]]), 0)
