"""The paper's marker heatmap (Fig. 5-8) as Plotly figures.

:func:`heatmap_figure` is one marked image with one object marker and its
background markers coloured by validation Dice; the explorer keeps its trace
order (:data:`HEATMAP_TRACES`) fixed so that a live figure is updated in
place.  :func:`heatmap_grid` is the paper's grid of images x object splits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from numpy.typing import ArrayLike, NDArray
from plotly.subplots import make_subplots

from flimexplore.colormap import heat_colors
from flimexplore.figures._common import (
    HEAT,
    OBJECT,
    OBJECT_SYMBOL,
    SELECTED,
    image_axes,
    image_trace,
    legend_below,
    marker_size,
    title_clear_of_toolbar,
)

__all__ = ["HEATMAP_TRACES", "heatmap_figure", "heatmap_grid", "study_heatmap"]

HEATMAP_TRACES = (
    "image",
    "dense map",
    "advice map",
    "background markers",
    "object marker",
    "selected",
    "your object marker",
    "your bg marker",
    "advised positions",
    "your object strokes",
    "your bg strokes",
    "tied with the best",
    "next marker",
)
"""Names of the traces of :func:`heatmap_figure`, in order (the order never changes)."""

DRAW_MODES = ("object", "background")
"""What a freehand stroke drawn on :func:`heatmap_figure` (``drawing=``) marks."""

ADVICE = "#1a9850"
"""Rings of the advised positions (green, as the paper's border of good markers)."""
ADVICE_SCALE = [[0.0, "rgba(255,255,255,0)"], [1.0, "rgba(26,152,80,0.85)"]]
"""The advice map: transparent (worst) to green (best), never a Dice colour."""

_DICE_HOVER = "model %{customdata}<br>Dice %{marker.color:.3f}<extra>background marker</extra>"
_DICE_HOVER_CI = "model %{customdata}<br>Dice %{marker.color:.3f}%{text}<extra>background marker</extra>"
TIED = "white"
"""Rings of the markers statistically tied with the best (repeated fits); the selection keeps its green ring."""
NEXT = "#ffc000"
"""Ring of the advised next marker ("advise next"): gold, neither a Dice colour nor the advice green."""


def interval_text(lo: float, hi: float, n: int) -> str:
    """Hover text of a marker's 95 % interval over its fits.

    Examples
    --------
    >>> interval_text(0.7, 0.8, 5)
    '<br>95 % CI 0.700-0.800 (5 fits)'
    """
    return f"<br>95 % CI {lo:.3f}-{hi:.3f} ({n} fits)"


def _xy(points: ArrayLike | None) -> tuple[list[int], list[int]]:
    """Plot coordinates ``(x = col, y = row)`` of ``(row, col)`` centres; empty for None."""
    if points is None:
        return [], []
    p = np.asarray(points, dtype=np.int64).reshape(-1, 2)
    return p[:, 1].tolist(), p[:, 0].tolist()


def _json_grid(values: NDArray[np.floating]) -> list[list[float | None]]:
    """A 2-D float array as nested lists with None for NaN (JSON has no NaN; widgets send 2-D arrays as lists)."""
    v = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(v), v, None).tolist()


def _rgb(value: float, vrange: tuple[float, float]) -> str:
    c = heat_colors(np.array([value]), *vrange)[0]
    return f"rgb({c[0]},{c[1]},{c[2]})"


def heatmap_figure(
    image: NDArray,
    obj: ArrayLike | None,
    bg: ArrayLike,
    dice: ArrayLike,
    radius: float,
    *,
    models: ArrayLike | None = None,
    vrange: tuple[float, float] = (0.0, 1.0),
    selected: int | None = None,
    dense: NDArray[np.floating] | None = None,
    user_obj: ArrayLike | None = None,
    user_bg: ArrayLike | None = None,
    user_dice: float | None = None,
    title: str = "",
    size: int = 420,
    placing: bool = False,
    scale_label: str = "validation Dice",
    advice_map: NDArray[np.floating] | None = None,
    advice_top: ArrayLike | None = None,
    user_pixels: ArrayLike | None = None,
    drawing: str | None = None,
    intervals: ArrayLike | None = None,
    tied: ArrayLike | None = None,
    next_marker: tuple[int, int, int] | None = None,
) -> go.Figure:
    """Marked image, background markers (circles) coloured by Dice, the object marker as a star.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        The marked image (float in [0, 1] or uint8).
    obj : array_like of shape (2,) or None
        ``(row, col)`` of the object marker (None: not drawn).
    bg : array_like of shape (M, 2)
        ``(row, col)`` of each background marker.
    dice : array_like of shape (M,)
        Validation Dice of each background marker's model.
    radius : float
        Marker radius in image pixels (circles are drawn that size).
    models : array_like of shape (M,), int, optional
        Model id of each marker (shown on hover, returned by clicks); default ``0..M-1``.
    vrange : tuple of float
        Colour range shared by every view (``cmin``, ``cmax``).
    selected : int, optional
        Position in ``bg`` of the selected marker, drawn with a green ring.
    dense : ndarray of shape (H, W), optional
        A painted relevance map (NaN where unpainted) drawn under the markers.
    user_obj, user_bg : array_like of shape (2,), optional
        The user's own markers; ``user_dice`` colours the background one.
    user_dice : float, optional
    title : str
    size : int
        Width of the image area in screen pixels.
    placing : bool
        The user is placing a marker: markers take no hover or click, so a click reports the image
        pixel under the mouse (never a marker's centre).
    scale_label : str
        Title of the colour bar.
    advice_map : ndarray of shape (H, W), optional
        Advice score per pixel (NaN where none), drawn as a green layer.
    advice_top : array_like of shape (K, 2), optional
        The best advised positions ``(row, col)``, best first, ringed and numbered; a click on one
        reports its index in ``customdata``.
    user_pixels : array_like of shape (N, 3), int, optional
        The user's whole markers (scribbles, strokes) as LIDS seeds rows ``(row, col, label)``, drawn
        pixel by pixel: object (label 1) in the object colour, background (0) in ``user_dice``'s colour.
    drawing : {"object", "background"}, optional
        Dragging on the image draws a freehand stroke of that class (Plotly's ``drawopenpath``);
        the stroke arrives as a path in ``layout.shapes``.
    intervals : array_like of shape (M, 3), optional
        ``(lo, hi, fits)`` of each marker's 95 % interval over repeated fits, shown on hover.
    tied : array_like of shape (M,), bool, optional
        Markers statistically tied with the best, ringed in white.
    next_marker : tuple of int, optional
        ``(row, col, label)`` of the advised next marker (the explorer's "advise next"), drawn as a
        gold ring of the marker's size, labelled with its class; a click on it reports nothing but its point.

    Returns
    -------
    go.Figure
        Traces named as :data:`HEATMAP_TRACES`, in that order, each with a legend entry
        (the dense map and empty traces excepted).
    """
    h, w = np.asarray(image).shape[:2]
    bg = np.asarray(bg, dtype=np.int64).reshape(-1, 2)
    dice = np.asarray(dice, dtype=np.float64).reshape(-1)
    ids = np.arange(len(bg)) if models is None else np.asarray(models, dtype=np.int64)
    disk = marker_size(radius, w, size)
    many = dense is not None
    bx, by = _xy(bg)
    sx, sy = _xy(None if selected is None or not 0 <= selected < len(bg) else bg[selected])
    ox, oy = _xy(user_obj)
    ux, uy = _xy(user_bg)
    user_colour = "white" if user_dice is None else _rgb(user_dice, vrange)
    user_text = "" if user_dice is None else f"{user_dice:.3f}"
    skip = dict(hoverinfo="skip") if placing else {}
    tx, ty = _xy(advice_top)
    px = np.zeros((0, 3), np.int64) if user_pixels is None else np.asarray(user_pixels, np.int64).reshape(-1, 3)
    pox, poy = _xy(px[px[:, 2] == 1, :2])
    pbx, pby = _xy(px[px[:, 2] != 1, :2])
    pixel = max(2.0, float(size) / w)  # one image pixel on screen
    ci = np.asarray(intervals, dtype=np.float64).reshape(-1, 3) if intervals is not None else None
    hover = dict(text=[interval_text(lo, hi, int(n)) for lo, hi, n in ci], hovertemplate=_DICE_HOVER_CI) \
        if ci is not None and len(ci) == len(bg) else dict(hovertemplate=_DICE_HOVER)
    tx2, ty2 = _xy(bg[np.asarray(tied, dtype=bool).reshape(-1)] if tied is not None and len(bg) else None)
    nx, ny = _xy(None if next_marker is None else next_marker[:2])
    next_text = [] if next_marker is None else ["next: object" if next_marker[2] == 1 else "next: background"]
    traces = [
        image_trace(image),
        go.Heatmap(
            z=[[0.0]] if dense is None else _json_grid(dense),
            name="dense map", visible=dense is not None, colorscale=HEAT, zmin=vrange[0], zmax=vrange[1],
            showscale=False, opacity=0.75, hoverinfo="skip",
        ),
        go.Heatmap(
            z=[[0.0]] if advice_map is None else _json_grid(advice_map), name="advice map",
            visible=advice_map is not None, colorscale=ADVICE_SCALE, zmin=0.0, zmax=1.0, showscale=False, hoverinfo="skip",
            showlegend=advice_map is not None, legendrank=6,
        ),
        go.Scatter(
            x=bx, y=by, mode="markers", name="background markers", customdata=ids,
            showlegend=len(bx) > 0, legendrank=2, **hover,
            marker=dict(
                size=6 if many else disk, color=dice, colorscale=HEAT, cmin=vrange[0], cmax=vrange[1],
                opacity=0.6 if many else 0.9, line=dict(width=1, color="white"), symbol="circle",
                showscale=True, colorbar=dict(title=dict(text=scale_label, side="right"), thickness=14, len=0.9,
                                              x=1.0, xpad=4),
            ),
            **skip,
        ),
        go.Scatter(
            x=_xy(obj)[0], y=_xy(obj)[1], mode="markers", name="object marker", showlegend=obj is not None,
            hovertemplate="object marker<extra></extra>", legendrank=1,
            marker=dict(size=max(disk, 14) * 1.3, color=OBJECT, symbol=OBJECT_SYMBOL, line=dict(width=1.5, color="white")),
            **skip,
        ),
        go.Scatter(
            x=sx, y=sy, mode="markers", name="selected", hoverinfo="skip", showlegend=len(sx) > 0, legendrank=3,
            marker=dict(size=disk + 10, color="rgba(0,0,0,0)", line=dict(width=3, color=SELECTED)),
        ),
        go.Scatter(
            x=ox, y=oy, mode="markers", name="your object marker", hovertemplate="your object marker<extra></extra>",
            showlegend=len(ox) > 0, legendrank=4,
            marker=dict(size=max(disk, 14) * 1.3, color="rgba(0,0,0,0)", symbol=f"{OBJECT_SYMBOL}-open",
                        line=dict(width=3, color=OBJECT)),
            **skip,
        ),
        go.Scatter(
            x=ux, y=uy, mode="markers+text", name="your bg marker", text=[user_text] * len(ux),
            textposition="top center", textfont=dict(color="white"), showlegend=len(ux) > 0, legendrank=5,
            hovertemplate="your bg marker<br>Dice " + (user_text or "pending") + "<extra></extra>",
            marker=dict(size=disk, color=user_colour, line=dict(width=3, color="black")),
            **skip,
        ),
        go.Scatter(
            x=tx, y=ty, mode="markers+text", name="advised positions", customdata=list(range(len(tx))),
            text=[str(k + 1) for k in range(len(tx))], textposition="middle center",
            textfont=dict(color=ADVICE, size=11), showlegend=len(tx) > 0, legendrank=7,
            hovertemplate="advice #%{text}: click to train and score it<extra></extra>",
            marker=dict(size=disk + 12, color="rgba(255,255,255,0.35)", line=dict(width=3, color=ADVICE)),
            **skip,
        ),
        go.Scatter(
            x=pox, y=poy, mode="markers", name="your object strokes", showlegend=len(pox) > 0, legendrank=4,
            hoverinfo="skip", marker=dict(size=pixel, symbol="square", color=OBJECT, line=dict(width=0)),
        ),
        go.Scatter(
            x=pbx, y=pby, mode="markers", name="your bg strokes", showlegend=len(pbx) > 0, legendrank=5,
            hoverinfo="skip", marker=dict(size=pixel, symbol="square", color=user_colour, line=dict(width=0)),
        ),
        go.Scatter(
            x=tx2, y=ty2, mode="markers", name="tied with the best", showlegend=len(tx2) > 0, legendrank=3,
            hoverinfo="skip", marker=dict(size=disk + 5, color="rgba(0,0,0,0)", symbol="circle-open",
                                          line=dict(width=2.5, color=TIED)),
        ),
        go.Scatter(
            x=nx, y=ny, mode="markers+text", name="next marker", text=next_text, textposition="bottom center",
            textfont=dict(color=NEXT, size=12), showlegend=len(nx) > 0, legendrank=8,
            hovertemplate="%{text}: press accept (or click here) to add it<extra></extra>",
            marker=dict(size=disk + 8, color="rgba(255,255,255,0.25)", symbol="circle", line=dict(width=3, color=NEXT)),
            **skip,
        ),
    ]
    if drawing is not None and drawing not in DRAW_MODES:
        raise ValueError(f"drawing must be one of {DRAW_MODES} or None, got {drawing!r}")
    fig = go.Figure(traces)
    fig.update_layout(
        title=title_clear_of_toolbar(title, 14), showlegend=True, legend=legend_below(), hovermode="closest",
        clickmode="event", width=size + 120, height=int(size * h / w) + 115,
        margin=dict(l=10, r=10, t=64, b=60), plot_bgcolor="white", uirevision=f"{h}x{w}",
        dragmode="drawopenpath" if drawing else "zoom", shapes=[],
        newshape=dict(line=dict(color=OBJECT if drawing == "object" else "white", width=2), opacity=0.9),
    )
    image_axes(fig, (h, w))
    return fig


def study_heatmap(result: Any, split: int = 0, **kwargs: Any) -> go.Figure:
    """:func:`heatmap_figure` of one split of a finished study.

    Parameters
    ----------
    result : StudyResult
        Only data is read: ``rows``, ``markers``, ``config.radius``, ``context.image``, ``context.stem``.
    split : int
        Which object marker.
    **kwargs
        Passed on to :func:`heatmap_figure` (``selected``, ``dense``, ``size``, ``tied``...); with
        repeated fits the rows' 95 % intervals are shown on hover.

    Returns
    -------
    go.Figure
        Colour range: the Dice range of the whole study, so splits compare.
    """
    rows = [r for r in result.rows if r["split"] == split]
    dice = [r["val_dice"] for r in result.rows]
    kwargs.setdefault("vrange", (min(dice), max(dice)) if dice else (0.0, 1.0))
    kwargs.setdefault("title", f"{result.context.stem}: object marker {split + 1}, {len(rows)} background markers")
    if rows and "n_repeats" in rows[0]:  # repeated fits: each marker's interval on hover
        kwargs.setdefault("intervals", [(r["val_dice_lo"], r["val_dice_hi"], r["n_repeats"]) for r in rows])
    return heatmap_figure(
        result.context.image, result.markers[split].obj, [(r["bg_row"], r["bg_col"]) for r in rows],
        [r["val_dice"] for r in rows], result.config.radius, models=[r["model"] for r in rows], **kwargs,
    )


def _panel_traces(result: Any, split: int, vrange: tuple[float, float], plot_px: float) -> list[Any]:
    rows = [r for r in result.rows if r["split"] == split]
    image = result.context.image
    disk = marker_size(result.config.radius, image.shape[1], plot_px)
    obj = result.markers[split].obj
    return [
        image_trace(image, hover=False),
        go.Scatter(
            x=[r["bg_col"] for r in rows], y=[r["bg_row"] for r in rows], mode="markers",
            customdata=[r["model"] for r in rows], hovertemplate=_DICE_HOVER, name="background markers",
            marker=dict(size=disk, color=[r["val_dice"] for r in rows], colorscale=HEAT, cmin=vrange[0],
                        cmax=vrange[1], line=dict(width=1, color="white")),
        ),
        go.Scatter(x=[int(obj[1])], y=[int(obj[0])], mode="markers", name="object marker", hoverinfo="skip",
                   marker=dict(size=max(disk, 12) * 1.3, color=OBJECT, symbol=OBJECT_SYMBOL,
                               line=dict(width=1.5, color="white"))),
    ]


def heatmap_grid(
    results: Sequence[Any], *, title: str = "", panel: int = 170, row_labels: Sequence[str] | None = None
) -> go.Figure:
    """The paper's Fig. 6-8: one row per marked image, one column per object marker.

    Parameters
    ----------
    results : sequence of StudyResult
        One finished study per marked image (rows); each split is a column.
        Only data is read: ``rows``, ``markers``, ``config.radius``, ``context.image``.
        (One study seen through several readouts, ``result.for_decoder(d)``, gives one row per readout.)
    title : str
    panel : int
        Size of one panel in screen pixels.
    row_labels : sequence of str, optional
        First line of each row's label (default ``image 1``, ``image 2``...).

    Returns
    -------
    go.Figure
        Rows labelled with the image's min and max validation Dice; one
        colour bar shared by every panel.
    """
    n_cols = max(len(r.markers) for r in results)
    dice = np.concatenate([[row["val_dice"] for row in r.rows] for r in results])
    vrange = (float(dice.min()), float(dice.max())) if len(dice) else (0.0, 1.0)
    fig = make_subplots(
        rows=len(results), cols=n_cols, horizontal_spacing=0.01, vertical_spacing=0.03,
        column_titles=[f"object marker {s + 1}" for s in range(n_cols)],
    )
    for i, result in enumerate(results):
        for s in range(len(result.markers)):
            for trace in _panel_traces(result, s, vrange, panel):
                fig.add_trace(trace, row=i + 1, col=s + 1)
            image_axes(fig, result.context.image.shape, row=i + 1, col=s + 1)
        vals = [row["val_dice"] for row in result.rows]
        name = row_labels[i] if row_labels is not None else f"image {i + 1}"
        label = f"{name}<br>Dice {min(vals):.3f}-{max(vals):.3f}" if vals else name
        fig.update_yaxes(title=dict(text=label, font=dict(size=11)), row=i + 1, col=1)
    first = next(t for t in fig.data if t.name == "background markers")
    first.marker.showscale = True
    first.marker.colorbar = dict(title=dict(text="validation Dice", side="right"), thickness=14)
    for t in fig.data:  # one legend entry per kind of marker
        if t.type == "scatter":
            t.showlegend = False
    first.showlegend = True
    next(t for t in fig.data if t.name == "object marker").showlegend = True
    fig.update_layout(
        title=dict(text=title), showlegend=True, legend=legend_below(), width=n_cols * panel + 180,
        height=len(results) * panel + 130, margin=dict(l=70, r=20, t=70, b=50), plot_bgcolor="white",
    )
    return fig
