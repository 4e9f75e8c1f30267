"""Live ``FigureWidget`` helpers: copy a new figure in without replacing traces; simulate a click."""

from __future__ import annotations

from copy import deepcopy

import plotly.graph_objects as go

__all__ = ["refresh_state", "resend_state", "simulate_click", "sync_figure"]


def sync_figure(widget: go.FigureWidget, fig: go.Figure) -> None:
    """Make ``widget`` show ``fig`` in one batched update.

    Traces are updated in place (same order and types, as the builders in
    :mod:`flimexplore.figures` guarantee), so click callbacks registered on
    them survive and the browser receives one restyle/relayout message
    instead of a redraw.  Properties absent from the new trace are cleared.

    Parameters
    ----------
    widget : go.FigureWidget
        The live figure, built from the same builder earlier.
    fig : go.Figure
        The new content.

    Raises
    ------
    ValueError
        If the two figures do not have the same trace types in the same order.
    """
    if [t.type for t in widget.data] != [t.type for t in fig.data]:
        raise ValueError("the live figure and the new figure have different traces")
    with widget.batch_update():
        for old, new in zip(widget.data, fig.data, strict=True):
            props = new.to_plotly_json()
            for key in old.to_plotly_json():
                props.setdefault(key, None)
            for key in ("type", "uid"):
                props.pop(key, None)
            old.update(props, overwrite=True)
        widget.layout.update(fig.layout.to_plotly_json(), overwrite=True)
    # Views that exist got the batched update; the widget's stored state (what a view created later
    # renders from) is refreshed in full, as plotly's own FigureWidget._repr_mimebundle_ does, because
    # the frontend applies updates to its stored copy incompletely when the widget is not displayed yet.
    refresh_state(widget)


def refresh_state(widget: go.FigureWidget) -> None:
    """Store the figure's full current data and layout in the widget's synced state."""
    widget._widget_data = deepcopy(widget._data)
    widget._widget_layout = deepcopy(widget._layout_obj._props)


def resend_state(widget: go.FigureWidget) -> None:
    """Refresh the stored figure and send it to the frontend in full, changed or not (before displaying).

    An assignment equal to the stored value is never sent by traitlets; a view created later must
    nevertheless render the current figure, so the two traits are sent explicitly.
    """
    refresh_state(widget)
    widget.send_state(["_widget_data", "_widget_layout"])


def simulate_click(
    widget: go.FigureWidget,
    trace: str,
    index: int | None = None,
    *,
    row: float | None = None,
    col: float | None = None,
) -> None:
    """Click a point as a browser would: by setting the widget's synced ``_js2py_pointsCallback`` trait.

    Plotly's frontend reports a click by writing that trait; its Python
    handler then calls the ``on_click`` callbacks of the traces.  Setting it
    here runs exactly that path, without a browser.

    Parameters
    ----------
    widget : go.FigureWidget
    trace : str
        Name of the clicked trace.
    index : int, optional
        Clicked point of a scatter trace.
    row, col : float, optional
        Clicked pixel of an image trace (when ``index`` is None).
    """
    t = next(i for i, tr in enumerate(widget.data) if tr.name == trace)
    if index is not None:
        point, x, y = index, widget.data[t].x[index], widget.data[t].y[index]
    elif row is not None and col is not None:
        point, x, y = [int(round(row)), int(round(col))], col, row
    else:
        raise ValueError("give the point index or the pixel row and col")
    widget._js2py_pointsCallback = {
        "event_type": "plotly_click",
        "points": {"trace_indexes": [t], "point_indexes": [point], "xs": [x], "ys": [y]},
        "device_state": {"alt": False, "ctrl": False, "meta": False, "shift": False, "button": 0, "buttons": 1},
        "selector": None,
    }
