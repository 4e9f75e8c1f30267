"""The blue-to-red colour map of the paper's heatmaps, shared by PNGs and figures."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["BACKGROUND_HEX", "HEAT_STOPS", "OBJECT_HEX", "WIDTH_STOPS", "heat_colors", "plotly_colorscale", "width_colors"]

OBJECT_HEX = "#e7298a"
"""The object marker's colour in every figure, interactive or PNG (magenta: no Dice colour is magenta)."""
BACKGROUND_HEX = "#4d4d4d"
"""A background marker that is not coloured by Dice (a fixed one): dark grey, not a Dice colour."""

HEAT_STOPS: tuple[tuple[float, tuple[int, int, int]], ...] = (
    (0.0, (0, 0, 143)),
    (0.125, (0, 0, 255)),
    (0.375, (0, 255, 255)),
    (0.625, (255, 255, 0)),
    (0.875, (255, 0, 0)),
    (1.0, (128, 0, 0)),
)
"""Jet-like stops: dark blue (low) through cyan and yellow to dark red (high)."""


WIDTH_STOPS: tuple[tuple[float, tuple[int, int, int]], ...] = (
    (0.0, (255, 255, 229)),
    (0.25, (254, 227, 145)),
    (0.5, (254, 153, 41)),
    (0.75, (204, 76, 2)),
    (1.0, (102, 37, 6)),
)
"""Light yellow (narrow interval) to dark brown (wide): the uncertainty panel, apart from the Dice scale."""


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
    return _colours(values, vmin, vmax, HEAT_STOPS)


def width_colors(values: NDArray[np.floating], vmin: float, vmax: float) -> NDArray[np.uint8]:
    """Map interval widths to RGB with :data:`WIDTH_STOPS` (as :func:`heat_colors`)."""
    return _colours(values, vmin, vmax, WIDTH_STOPS)


def _colours(
    values: NDArray[np.floating], vmin: float, vmax: float, stops: tuple[tuple[float, tuple[int, int, int]], ...]
) -> NDArray[np.uint8]:
    v = np.asarray(values, dtype=np.float64)
    t = np.full(v.shape, 0.5) if vmax <= vmin else np.clip((v - vmin) / (vmax - vmin), 0.0, 1.0)
    xs = [s for s, _ in stops]
    rgb = [np.interp(t, xs, [c[i] for _, c in stops]) for i in range(3)]
    return np.rint(np.stack(rgb, axis=-1)).astype(np.uint8)


def plotly_colorscale(stops: tuple[tuple[float, tuple[int, int, int]], ...] = HEAT_STOPS) -> list[list[float | str]]:
    """The same stops as a Plotly colour scale (the Dice scale unless other ``stops`` are given)."""
    return [[s, f"rgb({c[0]},{c[1]},{c[2]})"] for s, c in stops]
