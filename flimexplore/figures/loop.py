"""Dice against markers drawn, as a Plotly figure: the explorer's loop plot and the notebook's curves.

:func:`loop_curves_figure` draws one line per policy (its mean over
repeats, a band for the 95 % interval when given) or, in the explorer, one
line of your own markers.  The trace order is fixed by the ``lines`` given:
the explorer always passes the same single name, so its live figure is
updated in place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from numpy.typing import ArrayLike

from flimexplore.figures._common import legend_below, title_clear_of_toolbar
from flimexplore.figures.loop_png import POLICY_COLOURS

__all__ = ["loop_curves_figure"]


def loop_curves_figure(
    lines: Mapping[str, tuple[ArrayLike, ArrayLike, ArrayLike | None, ArrayLike | None]],
    targets: Sequence[float] = (),
    title: str = "",
    height: int = 320,
    width: int | None = None,
) -> go.Figure:
    """Validation Dice against markers drawn.

    Parameters
    ----------
    lines : mapping of str to (x, mean, lo, hi)
        Per line: markers ``x`` (S,), the Dice (S,), and the band's bounds (S,) or None.
    targets : sequence of float
        Dotted horizontal lines.
    title : str
    height, width : int
        Size in screen pixels (``width`` None: as wide as the container).

    Returns
    -------
    go.Figure
        Per line a band trace (``"<name> 95 % CI"``, empty without bounds) then the line (``name``).
    """
    fig = go.Figure()
    for j, (name, (x, mean, lo, hi)) in enumerate(lines.items()):
        colour = POLICY_COLOURS.get(name, f"hsl({(j * 67) % 360},60%,45%)")
        x = np.asarray(x, np.float64)
        band_x: list[float] = []
        band_y: list[float] = []
        if lo is not None and hi is not None and np.isfinite(np.asarray(lo, np.float64)).any():
            band_x = [*x.tolist(), *x[::-1].tolist()]
            band_y = [*np.asarray(hi, np.float64).tolist(), *np.asarray(lo, np.float64)[::-1].tolist()]
        fig.add_trace(go.Scatter(x=band_x, y=band_y, fill="toself", mode="none", fillcolor=colour, opacity=0.18,
                                 name=f"{name} 95 % CI", showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=x, y=np.asarray(mean, np.float64), mode="lines+markers", name=name,
                                 line=dict(color=colour, width=2), marker=dict(size=6),
                                 hovertemplate="%{x} markers: Dice %{y:.3f}<extra>" + name + "</extra>"))
    for t in targets:
        fig.add_hline(y=t, line=dict(color="#444444", dash="dot", width=1))
    fig.update_layout(
        height=height, width=width, margin=dict(l=50, r=10, t=50, b=60), title=title_clear_of_toolbar(title, 12),
        xaxis=dict(title="markers drawn", dtick=1), yaxis=dict(title="validation Dice", range=[0, 1]),
        legend=legend_below(), template="plotly_white",
    )
    return fig
