"""Property tests of the marker sampler: the paper's margins always hold, or a MarkerError says what fits."""

import re

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from flimexplore.errors import MarkerError
from flimexplore.markers import MARGIN_FACTOR, admissible_centres, sample_markers


@st.composite
def masks(draw):
    """Random (H, W) masks of 24..96 px: a rectangle, or a union of a few disks (blobs)."""
    h, w = draw(st.integers(24, 96)), draw(st.integers(24, 96))
    mask = np.zeros((h, w), bool)
    if draw(st.booleans()):
        r0, c0 = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))
        r1, c1 = draw(st.integers(r0 + 1, h)), draw(st.integers(c0 + 1, w))
        mask[r0:r1, c0:c1] = True
    else:
        rr, cc = np.mgrid[:h, :w]
        for _ in range(draw(st.integers(1, 4))):
            r, c, size = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1)), draw(st.integers(1, 30))
            mask |= (rr - r) ** 2 + (cc - c) ** 2 <= size**2
    return mask


@settings(max_examples=40, deadline=None)
@given(mask=masks(), radius=st.integers(1, 6), n_bg=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_margins_hold_or_the_error_says_what_fits(mask, radius, n_bg, seed):
    h, w = mask.shape
    margin = MARGIN_FACTOR * radius
    try:
        ms = sample_markers(mask, n_bg, radius, seed)
    except MarkerError as err:
        message = str(err)
        fit = re.search(r"only (\d+) fit .* ask for at most (\d+)", message)
        too_big = re.search(r"largest radius that fits is (\d+)", message)
        if fit:
            k = int(fit.group(1))
            assert int(fit.group(2)) == k < n_bg
            if k:  # the advice works: with the same seed, k markers are sampled
                assert len(sample_markers(mask, k, radius, seed).bg) == k
        elif too_big:
            biggest = int(too_big.group(1))
            assert not admissible_centres(mask, radius).any()
            assert biggest < radius and (biggest == 0 or admissible_centres(mask, biggest).any())
        else:
            assert "no object pixel keeps" in message, message
            assert not (mask & admissible_centres(mask, radius)).any()
        return

    assert len(ms.bg) == n_bg and ms.radius == radius  # the count is exact
    centres = np.vstack([ms.obj, ms.bg])
    assert (centres[:, 0] >= margin).all() and (centres[:, 0] <= h - 1 - margin).all()
    assert (centres[:, 1] >= margin).all() and (centres[:, 1] <= w - 1 - margin).all()
    d = np.hypot(*(centres[:, None, :] - centres[None, :, :]).transpose(2, 0, 1))
    assert d[~np.eye(len(centres), dtype=bool)].min() >= margin
    assert mask[ms.obj[0], ms.obj[1]]
    assert not mask[ms.bg[:, 0], ms.bg[:, 1]].any()


@settings(max_examples=20, deadline=None)
@given(mask=masks(), radius=st.integers(1, 6), n_bg=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_same_seed_same_markers(mask, radius, n_bg, seed):
    try:
        a = sample_markers(mask, n_bg, radius, seed)
    except MarkerError:
        return
    b = sample_markers(mask, n_bg, radius, seed)
    np.testing.assert_array_equal(a.obj, b.obj)
    np.testing.assert_array_equal(a.bg, b.bg)
