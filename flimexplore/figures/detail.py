"""One model in detail (the paper's Fig. 4): markers, prediction, evidence map, t-SNE projections.

Projection tables are the column dicts of :mod:`flimexplore.analysis.projections`
(``x``, ``y``, ``label`` with 1 = object, 0 = background).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from numpy.typing import ArrayLike, NDArray
from plotly.subplots import make_subplots

from flimexplore.figures._common import (
    BACKGROUND,
    FALSE_OBJECT,
    FOUND,
    MISSED,
    OBJECT,
    OBJECT_SYMBOL,
    image_axes,
    image_trace,
    legend_below,
    marker_size,
    overlay,
)

__all__ = ["DETAIL_TRACES", "detail_figure", "evidence_trace", "markers_figure", "marker_story_figure", "projection_traces"]

DETAIL_TRACES = (
    "prediction",
    "patches: object",
    "patches: background",
    "features: object",
    "features: background",
    "found",
    "false object",
    "missed",
    "evidence image",
    "evidence",
)
"""Names of the traces of :func:`detail_figure`, in order (the order never changes; new traces are appended).

``found``, ``false object`` and ``missed`` are legend entries of the prediction overlay's colour code;
``evidence image`` is the greyed image under the semi-transparent ``evidence`` map.
"""


Table = Mapping[str, NDArray]


def projection_traces(table: Table | None, prefix: str, size: int = 6) -> list[go.Scatter]:
    """Two scatter traces of a t-SNE table: object points (red), background points (blue).

    Parameters
    ----------
    table : dict of str to ndarray, optional
        ``x``, ``y``, ``label``; None gives two empty traces.
    prefix : str
        Trace names are ``"<prefix>: object"`` and ``"<prefix>: background"``.
    size : int
        Point size in screen pixels.
    """
    out = []
    for label, name, colour in ((1, "object", OBJECT), (0, "background", BACKGROUND)):
        if table is None:
            x = y = np.zeros(0)
        else:
            keep = np.asarray(table["label"]) == label
            x, y = np.asarray(table["x"])[keep], np.asarray(table["y"])[keep]
        out.append(go.Scatter(
            x=x, y=y, mode="markers", name=f"{prefix}: {name}", legendgroup=name, showlegend=False,
            marker=dict(size=size, color=colour, opacity=0.8), hovertemplate=f"{name}<extra>{prefix}</extra>",
        ))
    return out


def _swatch(name: str, rgb: tuple[int, int, int]) -> go.Scatter:
    """A legend-only entry: a coloured square and a name."""
    return go.Scatter(x=[None], y=[None], mode="markers", name=name, hoverinfo="skip", showlegend=True,
                      marker=dict(size=11, symbol="square", color=f"rgb({rgb[0]},{rgb[1]},{rgb[2]})"))


def evidence_trace(evidence: NDArray | None, name: str = "evidence") -> go.Heatmap:
    """A semi-transparent heatmap of an evidence map (empty for None).

    A map with negative values (a trained layer's logit gap) gets a diverging
    scale centred on 0, object red and background blue; a map in [0, 1] (a
    decoder's saliency) a sequential one from 0 to 1.
    """
    if evidence is None:
        return go.Heatmap(z=[[None]], name=name, showscale=False, hoverinfo="skip", opacity=0.0)
    z = np.asarray(evidence, dtype=np.float64)
    signed = bool(np.nanmin(z) < 0)
    scale = dict(colorscale="RdBu_r", zmid=0.0) if signed else dict(colorscale="Viridis", zmin=0.0, zmax=max(1.0, float(np.nanmax(z))))
    return go.Heatmap(
        z=z, name=name, opacity=0.7, **scale, hovertemplate="row %{y}, col %{x}: %{z:.3f}<extra>" + name + "</extra>",
        colorbar=dict(thickness=10, len=0.75, title=dict(text="logit gap" if signed else "saliency", side="right")),
    )


def detail_figure(
    image: NDArray,
    truth: ArrayLike,
    pred: ArrayLike,
    patches: Table | None = None,
    features: Table | None = None,
    *,
    evidence: NDArray | None = None,
    evidence_title: str = "evidence map",
    title: str = "",
    panel: int = 200,
) -> go.Figure:
    """Prediction against ground truth, evidence map, patch t-SNE and feature t-SNE of one model.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        A validation image.
    truth, pred : array_like of shape (H, W), bool
        Its ground truth and the model's predicted mask (legended: found, false object, missed).
    patches, features : dict, optional
        t-SNE tables of the marked patches and of the superpixel features.
    evidence : ndarray of shape (H, W), optional
        The model's evidence map on the image, drawn over it beside the prediction: a trained
        layer's per-pixel logit gap (its exact CAM, object where positive) or a decoder's saliency
        in [0, 1].  None leaves the panel empty.
    evidence_title : str
        Title of the evidence panel.
    title : str
    panel : int
        Size of each panel in screen pixels (the default keeps the figure under 900 px wide, so that it
        fits beside JupyterLab's file browser at 1366 px).

    Returns
    -------
    go.Figure
        Traces named as :data:`DETAIL_TRACES`, in that order.
    """
    fig = make_subplots(
        rows=1, cols=4, horizontal_spacing=0.07,
        subplot_titles=("prediction vs ground truth", evidence_title, "marked patches (t-SNE)",
                        "superpixel features (t-SNE)"),
    )
    fig.add_trace(image_trace(overlay(image, truth, pred), name="prediction"), row=1, col=1)
    for col, (table, prefix) in enumerate(((patches, "patches"), (features, "features")), start=3):
        for trace in projection_traces(table, prefix):
            fig.add_trace(trace, row=1, col=col)
        fig.update_xaxes(showticklabels=False, row=1, col=col)
        fig.update_yaxes(showticklabels=False, row=1, col=col)
    for name, rgb in (("found", FOUND), ("false object", FALSE_OBJECT), ("missed", MISSED)):
        fig.add_trace(_swatch(name, rgb), row=1, col=1)
    for k, trace in enumerate(fig.data[1:3]):  # one legend entry per point class
        trace.showlegend = True
        trace.legendrank = 10 + k
    grey = overlay(image, np.zeros(np.asarray(image).shape[:2], bool), np.zeros(np.asarray(image).shape[:2], bool))
    fig.add_trace(image_trace(grey, name="evidence image", hover=False), row=1, col=2)
    fig.add_trace(evidence_trace(evidence), row=1, col=2)
    for col in (1, 2):
        image_axes(fig, np.asarray(image).shape, row=1, col=col)
    if evidence is not None:  # the colour bar beside its own panel, not at the figure's right edge
        fig.data[-1].colorbar.x = fig.get_subplot(1, 2).xaxis.domain[1] + 0.005
    fig.update_layout(
        title=dict(text=title, x=0.01, y=0.98, yref="container", yanchor="top", font=dict(size=13)),
        showlegend=True, legend=legend_below(), width=4 * panel + 90, height=panel + 130,
        margin=dict(l=10, r=10, t=76, b=50), plot_bgcolor="#f7f7f7", hovermode="closest",
    )
    fig.update_annotations(font_size=12)
    return fig


def markers_figure(image: NDArray, obj: ArrayLike, bg: ArrayLike, radius: float, *, title: str = "",
                   size: int = 260) -> go.Figure:
    """The marked image with an object marker (red) and background markers (blue), Fig. 4a."""
    fig = go.Figure(_marker_traces(image, obj, bg, radius, size))
    image_axes(fig, np.asarray(image).shape)
    fig.update_layout(title=dict(text=title), showlegend=True, legend=legend_below(), width=size + 20,
                      height=size + 100, margin=dict(l=10, r=10, t=40, b=50))
    return fig


def _marker_traces(image: NDArray, obj: ArrayLike, bg: ArrayLike, radius: float, size: float) -> list[Any]:
    disk = marker_size(radius, np.asarray(image).shape[1], size)
    o = np.asarray(obj).reshape(-1, 2)
    b = np.asarray(bg).reshape(-1, 2)
    ring = dict(size=disk, color="rgba(0,0,0,0)")
    return [
        image_trace(image, hover=False),
        go.Scatter(x=o[:, 1], y=o[:, 0], mode="markers", name="object marker", hoverinfo="skip",
                   marker=dict(size=max(disk, 12) * 1.3, color=OBJECT, symbol=OBJECT_SYMBOL,
                               line=dict(width=1.5, color="white"))),
        go.Scatter(x=b[:, 1], y=b[:, 0], mode="markers", name="background marker", hoverinfo="skip",
                   marker=dict(ring, line=dict(width=3, color=BACKGROUND))),
    ]


def marker_story_figure(details: Sequence[Any], *, panel: int = 220, title: str = "",
                        width: int | None = None) -> go.Figure:
    """The paper's Fig. 4: per model, its markers, patch t-SNE, feature t-SNE and Dice.

    Parameters
    ----------
    details : sequence of ModelDetail
        One per row; read attributes are ``marked``, ``obj``, ``bg``, ``radius``,
        ``patches``, ``features``, ``row`` (its results row) and ``label``
        (see :func:`flimexplore.widgets.model_detail`).
    panel : int
        Size of each panel in screen pixels.
    title : str
    width : int, optional
        Figure width in pixels; default ``3 * panel + 120``.  ``0`` lets the page decide (autosize:
        the figure takes the width of the notebook).

    Returns
    -------
    go.Figure
        ``len(details)`` rows of three panels; each row is labelled with its
        dataset, label and validation Dice.
    """
    n = len(details)
    fig = make_subplots(
        rows=n, cols=3, horizontal_spacing=0.04, vertical_spacing=0.12 / max(1, n),
        column_titles=["(a) markers", "(b) marked patches (t-SNE)", "(c) superpixel features (t-SNE)"],
    )
    for i, d in enumerate(details, start=1):
        for trace in _marker_traces(d.marked, d.obj, d.bg, d.radius, panel):
            fig.add_trace(trace, row=i, col=1)
        image_axes(fig, np.asarray(d.marked).shape, row=i, col=1)
        for col, (table, prefix) in enumerate(((d.patches, "patches"), (d.features, "features")), start=2):
            for trace in projection_traces(table, prefix, size=5):
                fig.add_trace(trace, row=i, col=col)
            fig.update_xaxes(showticklabels=False, row=i, col=col)
            fig.update_yaxes(showticklabels=False, row=i, col=col)
        label = f"{d.label}<br>Dice {d.row['val_dice']:.3f}"
        fig.update_yaxes(title=dict(text=label, font=dict(size=12)), row=i, col=1)
    per_row = len(fig.data) // max(1, n)
    for k, trace in enumerate(fig.data):  # legend entries from the first row only
        if trace.type == "scatter":
            trace.showlegend = k < per_row
    fig.update_layout(title=dict(text=title), showlegend=True, legend=legend_below(),
                      width=(3 * panel + 120 if width is None else width) or None, autosize=width == 0,
                      height=n * panel + 130, margin=dict(l=100, r=10, t=70, b=50), plot_bgcolor="#f7f7f7",
                      font=dict(size=12))
    fig.update_annotations(font_size=13)
    return fig
