"""The analysis panel: one marker descriptor against validation Dice; clicking a point selects its marker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
from plotly.callbacks import InputDeviceState, Points
from traitlets import link

from flimexplore.analysis.correlate import spearman
from flimexplore.figures import descriptor_figure
from flimexplore.widgets._live import sync_figure
from flimexplore.widgets.heatmap import dice_range
from flimexplore.widgets.state import ExplorerState, guarded

__all__ = ["AnalysisView"]


class AnalysisView:
    """Scatter of ``state.descriptor`` against validation Dice of every finished model, rho in the title.

    Parameters
    ----------
    state : ExplorerState
    names : sequence of str
        The descriptors offered in the dropdown.
    log : callable, optional

    Attributes
    ----------
    figure : go.FigureWidget
        Traces as :data:`flimexplore.figures.DESCRIPTOR_TRACES`.
    widget : ipywidgets.VBox
        The panel (CSS class ``fx-analysis``).
    """

    def __init__(self, state: ExplorerState, names: tuple[str, ...], log: Callable[[str], None] | None = None) -> None:
        self.state = state
        self.choice = w.Dropdown(options=list(names), description="descriptor", layout=w.Layout(width="300px"),
                                 style={"description_width": "80px"})
        if state.descriptor not in names:
            state.descriptor = names[0]
        link((state, "descriptor"), (self.choice, "value"))
        self.note = w.HTML()
        self.figure = go.FigureWidget(self._build())
        self.figure.data[0].on_click(guarded(state, log)(self._on_click))
        state.observe(lambda _: self.redraw(), names=["descriptors", "descriptor", "selected", "stale", "decoder"])
        self.widget = w.VBox([w.HTML("<b>Analysis</b> <small>(image-only descriptors of each sampled marker; "
                                     "click a point to select it)</small>"), self.choice, self.figure, self.note],
                             layout=w.Layout(width="460px")).add_class("fx-analysis")

    def _data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s, rows = self.state, self.state.rows()
        table = s.descriptors
        if table is None or s.descriptor not in table or len(table[s.descriptor]) != len(rows):
            return np.zeros(0), np.zeros(0), np.zeros(0, np.int64)
        return (np.asarray(table[s.descriptor], dtype=np.float64), np.array([r["val_dice"] for r in rows]),
                np.array([r["model"] for r in rows], dtype=np.int64))

    def _build(self) -> go.Figure:
        x, y, ids = self._data()
        s = self.state
        selected = int(np.flatnonzero(ids == s.selected)[0]) if s.selected in ids else None
        rho = spearman(x, y) if len(x) else None
        self.rho = rho
        fig = descriptor_figure(x, y, ids, name=s.descriptor, rho=rho, selected=selected, vrange=dice_range(s))
        if not len(x):
            fig.layout.title.text = "run a study to compare descriptors with Dice"
        return fig

    def redraw(self) -> None:
        """Rebuild from the state (one batched update)."""
        sync_figure(self.figure, self._build())
        n = len(self._data()[0])
        self.note.value = f"<small>{n} markers; ρ: Spearman's rank correlation</small>" if n else ""

    def _on_click(self, trace: Any, points: Points, device: InputDeviceState | None) -> None:
        if not points.point_inds:
            return
        model = int(trace.customdata[points.point_inds[0]])
        row = self.state.row(model)
        if row is not None:
            self.state.split = row["split"]
            self.state.selected = model
