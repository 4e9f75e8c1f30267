"""Shared pieces of the figure builders: colours, the image trace, marker sizes."""

from __future__ import annotations

import base64

import numpy as np
import plotly.graph_objects as go
from numpy.typing import ArrayLike, NDArray

from flimexplore.colormap import BACKGROUND_HEX, OBJECT_HEX, plotly_colorscale

__all__ = [
    "BACKGROUND",
    "FALSE_OBJECT",
    "FOUND",
    "HEAT",
    "MISSED",
    "OBJECT",
    "OBJECT_SYMBOL",
    "SELECTED",
    "legend_below",
    "title_clear_of_toolbar",
    "as_uint8",
    "image_axes",
    "image_trace",
    "marker_size",
    "overlay",
    "png_source",
]

HEAT = plotly_colorscale()
"""The blue-to-red Dice scale, shared with the PNG heatmaps."""
OBJECT = OBJECT_HEX
"""Object markers and object points in every panel (magenta: a colour the blue-to-red Dice scale never takes)."""
OBJECT_SYMBOL = "star"
"""The object marker's glyph (background markers are circles)."""
BACKGROUND = BACKGROUND_HEX
"""Background markers and points where they are not coloured by Dice (dark grey, not a Dice colour)."""
SELECTED = "#00e000"
"""Ring around the selected marker (the paper's "green border" of good markers)."""
FOUND, FALSE_OBJECT, MISSED = (0, 200, 0), (255, 140, 0), (40, 90, 255)
"""Prediction overlay: object pixels found (green), false object (orange), missed object (blue)."""


def title_clear_of_toolbar(text: str, size: int = 13) -> dict:
    """A title placed just above the plot area, below Plotly's toolbar (which sits at the figure's top right).

    Use with a top margin of at least ``size + 40`` px.
    """
    return dict(text=text, x=0.0, xref="paper", xanchor="left", y=1.0, yref="paper", yanchor="bottom",
                pad=dict(b=6), font=dict(size=size))


def legend_below() -> dict:
    """A horizontal legend under the plot area (never over the data, never cut off at the right)."""
    return dict(orientation="h", x=0.0, xanchor="left", y=-0.02, yanchor="top", font=dict(size=11),
                itemclick=False, itemdoubleclick=False)


def as_uint8(image: NDArray) -> NDArray[np.uint8]:
    """RGB image as uint8: float images in [0, 1] are scaled, grey is replicated."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(np.asarray(arr, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    return arr[..., :3]


def png_source(image: NDArray) -> str:
    """An RGB image as a PNG data URI (far smaller in widget messages than a nested list of pixels)."""
    import imageio.v3 as iio

    return "data:image/png;base64," + base64.b64encode(iio.imwrite("<bytes>", as_uint8(image), extension=".png")).decode()


def image_trace(image: NDArray, name: str = "image", hover: bool = True) -> go.Image:
    """An image trace (PNG source); with ``hover`` its hover (and therefore click) reports ``(row, col)``."""
    if hover:
        return go.Image(source=png_source(image), name=name, hovertemplate="row %{y}, col %{x}<extra></extra>")
    return go.Image(source=png_source(image), name=name, hoverinfo="skip")


def image_axes(fig: go.Figure, shape: tuple[int, ...], row: int | None = None, col: int | None = None) -> None:
    """Pin axes to the pixel grid: rows down, square pixels, no ticks."""
    h, w = int(shape[0]), int(shape[1])
    common = dict(showticklabels=False, showgrid=False, zeroline=False, row=row, col=col)
    fig.update_xaxes(range=[-0.5, w - 0.5], constrain="domain", **common)
    fig.update_yaxes(range=[h - 0.5, -0.5], scaleanchor=_anchor(fig, row, col), constrain="domain", **common)


def _anchor(fig: go.Figure, row: int | None, col: int | None) -> str:
    if row is None:
        return "x"
    ref = fig.get_subplot(row, col)
    return ref.yaxis.anchor if ref is not None and ref.yaxis.anchor else "x"


def marker_size(radius: float, image_width: int, plot_px: float) -> float:
    """Screen diameter (px) of a disk of ``radius`` image pixels on a plot ``plot_px`` wide."""
    return max(5.0, 2.0 * float(radius) * float(plot_px) / max(1, int(image_width)))


def overlay(image: NDArray, truth: ArrayLike, pred: ArrayLike, alpha: float = 0.55) -> NDArray[np.uint8]:
    """Prediction against ground truth over a greyed image.

    True positives are green (:data:`FOUND`), false positives orange (:data:`FALSE_OBJECT`), false
    negatives blue (:data:`MISSED`).

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
    truth, pred : array_like of shape (H, W), bool
    alpha : float
        Opacity of the colour code.

    Returns
    -------
    rgb : ndarray of shape (H, W, 3), uint8

    Examples
    --------
    >>> rgb = overlay(np.zeros((1, 3, 3)), np.array([[1, 1, 0]], bool), np.array([[1, 0, 1]], bool), 1.0)
    >>> rgb[0].tolist()
    [[0, 200, 0], [40, 90, 255], [255, 140, 0]]
    """
    grey = as_uint8(image).astype(np.float64).mean(axis=-1, keepdims=True)
    out = np.repeat(grey, 3, axis=-1)
    t, p = np.asarray(truth, bool), np.asarray(pred, bool)
    for where, colour in ((t & p, FOUND), (p & ~t, FALSE_OBJECT), (t & ~p, MISSED)):
        out[where] = (1.0 - alpha) * out[where] + alpha * np.asarray(colour, dtype=np.float64)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
