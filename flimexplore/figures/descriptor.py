"""A descriptor of each sampled marker against its validation Dice (the explorer's analysis panel)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from numpy.typing import ArrayLike

from flimexplore.figures._common import HEAT, SELECTED, title_clear_of_toolbar

__all__ = ["DESCRIPTOR_TRACES", "descriptor_figure"]

DESCRIPTOR_TRACES = ("markers", "selected")
"""Names of the traces of :func:`descriptor_figure`, in order (the order never changes)."""


def descriptor_figure(
    values: ArrayLike,
    dice: ArrayLike,
    models: ArrayLike | None = None,
    *,
    name: str = "descriptor",
    rho: float | None = None,
    selected: int | None = None,
    vrange: tuple[float, float] = (0.0, 1.0),
    title: str | None = None,
    width: int = 440,
    height: int = 330,
) -> go.Figure:
    """Scatter of one descriptor (x) against validation Dice (y), one point per sampled marker.

    Parameters
    ----------
    values : array_like of shape (N,)
        The descriptor of each marker (NaN points are not drawn).
    dice : array_like of shape (N,)
        Validation Dice of each marker's model (colour on the shared Dice scale).
    models : array_like of shape (N,), int, optional
        Model ids (hover and clicks); default ``0..N-1``.
    name : str
        The descriptor's name (x-axis title).
    rho : float, optional
        Spearman's rho of descriptor and Dice, written in the title.
    selected : int, optional
        Position of the selected marker, ringed.
    vrange : tuple of float
        Colour range shared with the heatmap.
    title : str, optional
        Default: ``"<name> vs validation Dice (ρ = ...)"``.
    width, height : int

    Returns
    -------
    go.Figure
        Traces named as :data:`DESCRIPTOR_TRACES`, in that order.
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    y = np.asarray(dice, dtype=np.float64).reshape(-1)
    ids = np.arange(len(x)) if models is None else np.asarray(models, dtype=np.int64).reshape(-1)
    keep = np.isfinite(x) & np.isfinite(y)
    pick = selected is not None and 0 <= selected < len(x) and bool(keep[selected])
    rho_text = "ρ = n/a" if rho is None or not np.isfinite(rho) else f"ρ = {rho:+.2f}"
    fig = go.Figure([
        go.Scatter(
            x=x[keep], y=y[keep], mode="markers", name="markers", customdata=ids[keep],
            hovertemplate=f"model %{{customdata}}<br>{name} %{{x:.3g}}<br>Dice %{{y:.3f}}<extra></extra>",
            marker=dict(size=9, color=y[keep], colorscale=HEAT, cmin=vrange[0], cmax=vrange[1],
                        line=dict(width=1, color="white")),
        ),
        go.Scatter(
            x=x[[selected]] if pick else [], y=y[[selected]] if pick else [], mode="markers", name="selected",
            hoverinfo="skip", marker=dict(size=17, color="rgba(0,0,0,0)", line=dict(width=3, color=SELECTED)),
        ),
    ])
    fig.update_layout(
        title=title_clear_of_toolbar(title if title is not None else f"{name} vs validation Dice ({rho_text})", 13),
        showlegend=False, width=width, height=height, margin=dict(l=60, r=14, t=56, b=50), hovermode="closest",
        clickmode="event", plot_bgcolor="#f7f7f7",
        xaxis=dict(title=dict(text=name)), yaxis=dict(title=dict(text="validation Dice")),
    )
    return fig
