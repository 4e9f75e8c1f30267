"""The Dice distribution of a study's markers, as a strip plot (one row per object marker)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from numpy.typing import ArrayLike

from flimexplore.figures._common import HEAT, SELECTED

__all__ = ["DISTRIBUTION_TRACES", "distribution_figure", "jitter"]

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
        Dice of the user's own marker pair, drawn as a vertical line.
    vrange : tuple of float
        Colour range shared with the heatmap.
    title : str
    width : int

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
    fig = go.Figure([
        go.Scatter(
            x=d, y=y, mode="markers", name="markers", customdata=ids,
            hovertemplate="model %{customdata}<br>Dice %{x:.3f}<extra></extra>",
            marker=dict(size=9, color=d, colorscale=HEAT, cmin=vrange[0], cmax=vrange[1],
                        line=dict(width=1, color="white")),
        ),
        go.Scatter(
            x=d[[selected]] if pick else [], y=y[[selected]] if pick else [], mode="markers", name="selected",
            hoverinfo="skip", marker=dict(size=17, color="rgba(0,0,0,0)", line=dict(width=3, color=SELECTED)),
        ),
        go.Scatter(
            x=[] if user_dice is None else [user_dice, user_dice], y=[] if user_dice is None else line_y,
            mode="lines", name="your pair", line=dict(color="black", dash="dash", width=2),
            hovertemplate="your pair<br>Dice %{x:.3f}<extra></extra>",
        ),
    ])
    fig.update_layout(
        title=dict(text=title, x=0.02, font=dict(size=13)), showlegend=False, width=width, height=120 + 50 * n_rows,
        margin=dict(l=50, r=10, t=40, b=40), hovermode="closest", clickmode="event", plot_bgcolor="#f7f7f7",
        xaxis=dict(title=dict(text="validation Dice"), range=[-0.02, 1.02]),
        yaxis=dict(title=dict(text="object marker"), tickmode="array", tickvals=list(range(n_rows)),
                   ticktext=[str(k + 1) for k in range(n_rows)], range=[n_rows - 0.5, -0.5]),
    )
    return fig
