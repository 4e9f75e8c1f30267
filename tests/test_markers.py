import numpy as np
import pytest

from flimexplore.errors import MarkerError
from flimexplore.markers import MarkerSet, disk_offsets, marker_pixels, sample_markers, validate_markers

SQUARE = np.zeros((40, 40), bool)
SQUARE[10:30, 10:30] = True


def test_disk_offsets_are_the_pixels_within_radius():
    offs = disk_offsets(2)
    assert len(offs) == 13
    assert (np.hypot(offs[:, 0], offs[:, 1]) <= 2).all()
    assert {tuple(o) for o in offs} >= {(0, 0), (2, 0), (0, -2), (1, 1)}
    assert (2, 1) not in {tuple(o) for o in offs}


def test_marker_pixels_clip_to_the_image():
    px = marker_pixels(np.array([0, 0]), 1, (5, 5))
    assert sorted(map(tuple, px)) == [(0, 0), (0, 1), (1, 0)]


def test_sampled_markers_keep_the_paper_margins():
    ms = sample_markers(SQUARE, n_bg=8, radius=2, seed=0)
    centres = np.vstack([ms.obj, ms.bg])
    assert SQUARE[tuple(ms.obj)] and not SQUARE[ms.bg[:, 0], ms.bg[:, 1]].any()
    assert (centres >= 3).all() and (centres <= 39 - 3).all()
    d = np.hypot(*(centres[:, None, :] - centres[None, :, :]).transpose(2, 0, 1))
    assert d[~np.eye(len(centres), dtype=bool)].min() >= 3.0


def test_same_seed_same_markers_other_seed_other_markers():
    a = sample_markers(SQUARE, 6, 2, seed=7)
    b = sample_markers(SQUARE, 6, 2, seed=7)
    c = sample_markers(SQUARE, 6, 2, seed=8)
    assert np.array_equal(a.bg, b.bg) and np.array_equal(a.obj, b.obj)
    assert not np.array_equal(a.bg, c.bg)


def test_too_many_markers_says_how_many_fit():
    with pytest.raises(MarkerError, match=r"only \d+ fit"):
        sample_markers(SQUARE, 500, 3, seed=0)


@pytest.mark.parametrize("radius", [0, -1, 2.5])
def test_bad_radius_is_refused(radius):
    with pytest.raises(MarkerError, match="radius"):
        sample_markers(SQUARE, 2, radius)


def test_radius_too_big_names_the_largest_that_fits():
    # 1.5 * 13 = 19.5 px from each border leaves no row of a 40-px image
    with pytest.raises(MarkerError, match="largest radius that fits is 12"):
        sample_markers(SQUARE, 2, 13)


def test_object_too_close_to_border_is_refused():
    mask = np.zeros((40, 40), bool)
    mask[:2, :2] = True
    with pytest.raises(MarkerError, match="no object pixel"):
        sample_markers(mask, 2, 3)


def test_validate_markers_names_the_offender():
    ok = MarkerSet(np.array([20, 20]), np.array([[2, 2]]), 2)
    validate_markers(ok, SQUARE)
    with pytest.raises(MarkerError, match="background #0 .* lies on the object"):
        validate_markers(MarkerSet(np.array([20, 20]), np.array([[15, 15]]), 2), SQUARE)
    with pytest.raises(MarkerError, match="outside"):
        validate_markers(MarkerSet(np.array([20, 20]), np.array([[45, 2]]), 2), SQUARE)
