"""The Dice distribution of a study's markers, as a strip plot (one row per object marker)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from numpy.typing import ArrayLike

from flimexplore.figures._common import HEAT, SELECTED, title_clear_of_toolbar

__all__ = ["DISTRIBUTION_TRACES", "dice_axis_range", "distribution_figure", "jitter"]

DISTRIBUTION_TRACES = ("markers", "selected", "your pair")
"""Names of the traces of :func:`distribution_figure`, in order (the order never changes)."""


def jitter(n: int, width: float = 0.3) -> np.ndarray:
    """Deterministic offsets in ``[-width, width]`` that spread ``n`` points evenly (golden ratio).

    Examples
    --------
    >>> jitter(3).round(3).tolist()
    [-0.3, 0.071, -0.158]
    """
    return (np.arange(n) * 0.6180339887498949 % 1.0 - 0.5) * 2.0 * width


def dice_axis_range(dice: ArrayLike, full: bool = False) -> tuple[float, float]:
    """The Dice axis: the data's range with a 5 % margin (at least 0.02 wide), or 0-1 with ``full``.

    Examples
    --------
    >>> dice_axis_range([0.50, 0.70])
    (0.49, 0.71)
    >>> dice_axis_range([0.5, 0.7], full=True)
    (-0.02, 1.02)
    """
    d = np.asarray(dice, dtype=np.float64).reshape(-1)
    if full or not len(d):
        return -0.02, 1.02
    lo, hi = float(d.min()), float(d.max())
    pad = max(0.05 * (hi - lo), 0.01)
    return round(lo - pad, 6), round(hi + pad, 6)


def distribution_figure(
    dice: ArrayLike,
    splits: ArrayLike,
    models: ArrayLike | None = None,
    *,
    selected: int | None = None,
    user_dice: float | None = None,
    vrange: tuple[float, float] = (0.0, 1.0),
    title: str = "",
    width: int = 420,
    full_range: bool = False,
    intervals: ArrayLike | None = None,
) -> go.Figure:
    """Validation Dice of every model, one jittered row per object marker.

    Parameters
    ----------
    dice : array_like of shape (N,)
        Validation Dice of each model.
    splits : array_like of shape (N,), int
        Object marker (split) of each model; one row each.
    models : array_like of shape (N,), int, optional
        Model ids (hover and clicks); default ``0..N-1``.
    selected : int, optional
        Position of the selected model, drawn with a green ring.
    user_dice : float, optional
        Dice of the user's own marker pair, drawn as a vertical line (at the axis' edge, with an
        arrow head, when it lies outside the axis: the axis never moves for it).
    vrange : tuple of float
        Colour range shared with the heatmap.
    title : str
    width : int
    full_range : bool
        Dice axis 0-1 instead of the data's range (:func:`dice_axis_range`).
    intervals : array_like of shape (N, 2), optional
        ``(lo, hi)`` of each model's 95 % interval over repeated fits, drawn as error bars.

    Returns
    -------
    go.Figure
        Traces named as :data:`DISTRIBUTION_TRACES`, in that order.
    """
    d = np.asarray(dice, dtype=np.float64).reshape(-1)
    s = np.asarray(splits, dtype=np.int64).reshape(-1)
    ids = np.arange(len(d)) if models is None else np.asarray(models, dtype=np.int64)
    y = s + jitter(len(d))
    n_rows = int(s.max()) + 1 if len(s) else 1
    pick = selected is not None and 0 <= selected < len(d)
    line_y = [-0.5, n_rows - 0.5]
    xr = dice_axis_range(d, full_range)
    user_x = None if user_dice is None else float(np.clip(user_dice, xr[0], xr[1]))
    outside = user_dice is not None and user_x != user_dice
    errors: dict = {}
    if intervals is not None and len(d):
        ci = np.asarray(intervals, dtype=np.float64).reshape(-1, 2)
        errors = dict(error_x=dict(type="data", symmetric=False, array=np.maximum(ci[:, 1] - d, 0.0),
                                   arrayminus=np.maximum(d - ci[:, 0], 0.0), color="#777777", thickness=1.2, width=3))
        xr = dice_axis_range(np.concatenate([d, ci[np.isfinite(ci)]]), full_range)
        user_x = None if user_dice is None else float(np.clip(user_dice, xr[0], xr[1]))
        outside = user_dice is not None and user_x != user_dice
    fig = go.Figure([
        go.Scatter(
            x=d, y=y, mode="markers", name="markers", customdata=ids, **errors,
            hovertemplate="model %{customdata}<br>Dice %{x:.3f}<extra></extra>",
            marker=dict(size=9, color=d, colorscale=HEAT, cmin=vrange[0], cmax=vrange[1],
                        line=dict(width=1, color="white")),
        ),
        go.Scatter(
            x=d[[selected]] if pick else [], y=y[[selected]] if pick else [], mode="markers", name="selected",
            hoverinfo="skip", marker=dict(size=17, color="rgba(0,0,0,0)", line=dict(width=3, color=SELECTED)),
        ),
        go.Scatter(
            x=[] if user_x is None else [user_x, user_x], y=[] if user_x is None else line_y,
            mode="lines+markers" if outside else "lines", name="your pair",
            line=dict(color="black", dash="dash", width=2),
            marker=dict(symbol="arrow-left" if user_x == xr[0] else "arrow-right", size=10 if outside else 0,
                        color="black"),
            customdata=[] if user_dice is None else [user_dice, user_dice],
            hovertemplate="your pair<br>Dice %{customdata:.3f}<extra></extra>",
        ),
    ])
    fig.update_layout(
        title=title_clear_of_toolbar(title, 13), showlegend=False, width=width, height=150 + 50 * n_rows,
        margin=dict(l=60, r=14, t=56, b=46), hovermode="closest", clickmode="event", plot_bgcolor="#f7f7f7",
        xaxis=dict(title=dict(text="validation Dice"), range=list(xr)),
        yaxis=dict(title=dict(text="object marker"), tickmode="array", tickvals=list(range(n_rows)),
                   ticktext=[str(k + 1) for k in range(n_rows)], range=[n_rows - 0.5, -0.5]),
    )
    return fig
