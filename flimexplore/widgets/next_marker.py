"""The "advise next" panel: where your next marker should go, accept it, and Dice against markers drawn."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w
import plotly.graph_objects as go
from traitlets import dlink, link

from flimexplore.figures.loop import loop_curves_figure
from flimexplore.widgets._live import sync_figure
from flimexplore.widgets.state import ExplorerState

__all__ = ["LOOP_LINE", "NextMarkerView", "history_figure"]

LOOP_LINE = "your markers"
"""Name of the plot's line (its trace order never changes, so the live figure is updated in place)."""


def history_figure(history: tuple[tuple[int, float], ...] | list[tuple[int, float]]) -> go.Figure:
    """Validation Dice after each scoring of your markers, against the markers drawn then.

    Parameters
    ----------
    history : sequence of (int, float)
        ``(markers, validation Dice)`` in the order they were scored.

    Returns
    -------
    go.Figure
        Traces ``"your markers 95 % CI"`` (always empty) and ``"your markers"``.
    """
    x = [h[0] for h in history]
    y = [h[1] for h in history]
    title = "Dice as you add markers" if history else "Dice as you add markers (score your markers first)"
    return loop_curves_figure({LOOP_LINE: (x, y, None, None)}, title=title, height=240, width=520)


class NextMarkerView:
    """Controls of the annotation loop in the explorer, linked to an :class:`ExplorerState`.

    Parameters
    ----------
    state : ExplorerState
    on_advise, on_accept : callable
        Called (without arguments) by the "advise next" and "accept" buttons.

    Attributes
    ----------
    policy : ipywidgets.Dropdown
        ``state.next_policy``: advised or error-driven.
    advise, accept : ipywidgets.Button
    text : ipywidgets.HTML
        The suggestion and what it cost (``state.next_text``).
    figure : go.FigureWidget
        Validation Dice against markers drawn (``state.loop_history``).
    widget : ipywidgets.VBox
        The panel (CSS class ``fx-next``).
    """

    def __init__(self, state: ExplorerState, on_advise: Callable[[], None], on_accept: Callable[[], None]) -> None:
        self.state = state
        self.policy = w.Dropdown(options=[("advised (probed)", "advised"), ("largest error", "error")],
                                 description="next by", layout=w.Layout(width="230px"),
                                 style={"description_width": "60px"})
        self.advise = w.Button(description="advise next", icon="map-marker", layout=w.Layout(width="110px"),
                               tooltip="where your next marker should go, given the markers drawn so far (from the "
                                       "marked image and its own mask only)")
        self.accept = w.Button(description="accept", icon="check", button_style="success", disabled=True,
                               layout=w.Layout(width="90px"), tooltip="add the suggested marker and score your markers")
        self.text = w.HTML(layout=w.Layout(width="520px")).add_class("fx-next-text")
        self.figure = go.FigureWidget(history_figure(()))
        link((state, "next_policy"), (self.policy, "value"))
        dlink((state, "next_marker"), (self.accept, "disabled"), lambda m: m is None)
        dlink((state, "running"), (self.advise, "disabled"))
        dlink((state, "next_text"), (self.text, "value"),
              lambda t: f'<div style="white-space:normal;line-height:1.3"><small>{html.escape(t)}</small></div>' if t else "")
        self.advise.on_click(lambda _: on_advise())
        self.accept.on_click(lambda _: on_accept())
        state.observe(self._redraw, names=["loop_history"])
        self.widget = w.VBox([
            w.HTML("<b>Next marker</b> <small>(the annotation loop)</small>"),
            w.HBox([self.policy, self.advise, self.accept], layout=w.Layout(flex_flow="row wrap")),
            self.text, self.figure,
        ], layout=w.Layout(width="540px")).add_class("fx-next")

    def _redraw(self, change: dict[str, Any] | None = None) -> None:
        sync_figure(self.figure, history_figure(self.state.loop_history))
