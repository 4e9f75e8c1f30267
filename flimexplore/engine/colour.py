"""Colour conversion used as FLIM's layer-0 input.

FLIM's public reference code feeds its first layer with a *normalised Lab*
image (libift's "LABNorm2"): the XYZ matrix is applied to RGB/255 directly,
without sRGB gamma decoding, and L, a, b are rescaled to about [0, 1].  We
follow that choice (rather than :func:`skimage.color.rgb2lab`) because the
reference implementations report better results with it, and it keeps our
numbers comparable with theirs.  Grey images reach here as three equal RGB
channels, so their a and b channels are constant.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["lab_norm"]

_RGB_TO_XYZ = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
_WHITE = np.array([0.950456, 1.0, 1.088754])
_L_MAX = 99.998337
_A_RANGE = (-86.182236, 98.258614)
_B_RANGE = (-107.867744, 94.481682)


def _f(t: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.where(t >= 0.008856, np.cbrt(t), 841.0 / 108.0 * t + 4.0 / 29.0)


def lab_norm(rgb: NDArray[np.floating]) -> NDArray[np.float32]:
    """Convert RGB in [0, 1] to normalised Lab in about [0, 1].

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), float
        RGB image with values in [0, 1] (no gamma decoding is applied).

    Returns
    -------
    lab : ndarray of shape (H, W, 3), float32
        ``L / 99.998``, ``(a + 86.18) / 184.44`` and ``(b + 107.87) / 202.35``.

    Examples
    --------
    >>> import numpy as np
    >>> lab = lab_norm(np.ones((1, 1, 3)))
    >>> [round(float(v), 3) for v in lab[0, 0]]
    [1.0, 0.467, 0.533]
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"lab_norm expects an (H, W, 3) RGB image, got shape {rgb.shape}")
    xyz = rgb @ _RGB_TO_XYZ.T / _WHITE
    fx, fy, fz = (_f(xyz[..., i]) for i in range(3))
    L = np.where(xyz[..., 1] > 0.008856, 116.0 * fy - 16.0, 903.3 * xyz[..., 1])
    a = 500.0 * (fx - fy)
    b = 200.0 * (fy - fz)
    out = np.stack(
        [
            L / _L_MAX,
            (a - _A_RANGE[0]) / (_A_RANGE[1] - _A_RANGE[0]),
            (b - _B_RANGE[0]) / (_B_RANGE[1] - _B_RANGE[0]),
        ],
        axis=-1,
    )
    return out.astype(np.float32)
