import numpy as np
import pytest

from flimexplore.engine.colour import lab_norm


def test_white_black_and_grey_are_neutral():
    lab = lab_norm(np.array([[[1.0, 1, 1], [0, 0, 0], [0.5, 0.5, 0.5]]]))
    assert lab.dtype == np.float32 and lab.shape == (1, 3, 3)
    np.testing.assert_allclose(lab[0, :, 0], [1.0, 0.0, lab[0, 2, 0]], atol=1e-4)
    # a and b are the same for every neutral colour
    np.testing.assert_allclose(lab[0, :, 1], lab[0, 0, 1], atol=1e-5)
    np.testing.assert_allclose(lab[0, :, 2], lab[0, 0, 2], atol=1e-5)


def test_red_has_large_a_and_stays_in_unit_range():
    lab = lab_norm(np.array([[[1.0, 0, 0]]]))[0, 0]
    assert lab[1] > 0.85 and ((lab >= 0) & (lab <= 1)).all()


def test_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        lab_norm(np.zeros((4, 4)))
