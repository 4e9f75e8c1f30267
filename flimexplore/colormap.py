"""The blue-to-red colour map of the paper's heatmaps, shared by PNGs and figures."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["HEAT_STOPS", "heat_colors", "plotly_colorscale"]

HEAT_STOPS: tuple[tuple[float, tuple[int, int, int]], ...] = (
    (0.0, (0, 0, 143)),
    (0.125, (0, 0, 255)),
    (0.375, (0, 255, 255)),
    (0.625, (255, 255, 0)),
    (0.875, (255, 0, 0)),
    (1.0, (128, 0, 0)),
)
"""Jet-like stops: dark blue (low) through cyan and yellow to dark red (high)."""


def heat_colors(values: NDArray[np.floating], vmin: float, vmax: float) -> NDArray[np.uint8]:
    """Map values to RGB with :data:`HEAT_STOPS` (values are clipped to the range).

    Parameters
    ----------
    values : ndarray of any shape, float
    vmin, vmax : float
        Values mapped to the first and last stop; equal bounds map to the middle.

    Returns
    -------
    rgb : ndarray of shape values.shape + (3,), uint8

    Examples
    --------
    >>> heat_colors(np.array([0.0, 1.0]), 0.0, 1.0).tolist()
    [[0, 0, 143], [128, 0, 0]]
    """
    v = np.asarray(values, dtype=np.float64)
    t = np.full(v.shape, 0.5) if vmax <= vmin else np.clip((v - vmin) / (vmax - vmin), 0.0, 1.0)
    xs = [s for s, _ in HEAT_STOPS]
    rgb = [np.interp(t, xs, [c[i] for _, c in HEAT_STOPS]) for i in range(3)]
    return np.rint(np.stack(rgb, axis=-1)).astype(np.uint8)


def plotly_colorscale() -> list[list[float | str]]:
    """The same stops as a Plotly colour scale."""
    return [[s, f"rgb({c[0]},{c[1]},{c[2]})"] for s, c in HEAT_STOPS]
