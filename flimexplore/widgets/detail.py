"""The detail view (one model: prediction, projections, scores) and the Dice distribution view."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
from plotly.callbacks import InputDeviceState, Points
from traitlets import link

from flimexplore.figures import detail_figure, distribution_figure
from flimexplore.widgets._live import sync_figure
from flimexplore.widgets.heatmap import dice_range
from flimexplore.widgets.state import ExplorerState, guarded

__all__ = ["DetailView", "DistributionView", "detail_text"]

_EMPTY = np.zeros((8, 8, 3))
_HINT = "Click a background marker on the heatmap (or a point of the distribution) to inspect its model."


def detail_text(detail: Any) -> str:
    """One HTML paragraph with a model's scores (validation mean, the shown image, test)."""
    r = detail.row
    s = detail.image_scores
    return (
        f"<b>model {detail.model}</b> (object marker {r['split'] + 1}, background marker {r['bg_index'] + 1}): "
        f"validation Dice <b>{r['val_dice']:.3f}</b> · Jaccard {r['val_jaccard']:.3f} · "
        f"sensitivity {r['val_sensitivity']:.3f} · specificity {r['val_specificity']:.3f} "
        f"· test Dice {r['test_dice']:.3f} · best epoch {r['best_epoch']}<br>"
        f"<small>validation image {detail.val_image}: Dice {s['dice']:.3f} · Jaccard {s['jaccard']:.3f} · "
        f"sensitivity {s['sensitivity']:.3f} · specificity {s['specificity']:.3f} "
        f"(green: found, red: false object, blue: missed)</small>"
    )


class DetailView:
    """What the selected model does: its scores, its prediction, its t-SNE projections.

    Attributes
    ----------
    text : ipywidgets.HTML
        The selected model's scores (its validation Dice as shown in the heatmap's hover).
    figure : go.FigureWidget
        Traces as :data:`flimexplore.figures.DETAIL_TRACES`.
    widget : ipywidgets.VBox
        The view (CSS class ``fx-detail``).
    """

    def __init__(self, state: ExplorerState) -> None:
        self.state = state
        self.text = w.HTML(_HINT)
        self.figure = go.FigureWidget(detail_figure(_EMPTY, _EMPTY[..., 0] > 0, _EMPTY[..., 0] > 0))
        self.val_image = w.BoundedIntText(min=0, max=10_000, description="validation image",
                                          style={"description_width": "110px"}, layout=w.Layout(width="200px"))
        link((state, "val_image"), (self.val_image, "value"))
        state.observe(lambda _: self.redraw(), names=["detail"])
        state.observe(self._on_result, names=["result"])
        state.observe(self._pending, names=["selected"])
        self.widget = w.VBox([self.text, self.val_image, self.figure]).add_class("fx-detail")

    def _on_result(self, change: dict[str, Any]) -> None:
        res = change["new"]
        self.val_image.max = 0 if res is None else max(0, len(res.context.split.val) - 1)

    def _pending(self, change: dict[str, Any]) -> None:
        if change["new"] < 0:
            self.text.value = _HINT
        elif self.state.detail is None or self.state.detail.model != change["new"]:
            self.text.value = f"computing model {change['new']}..."

    def redraw(self) -> None:
        """Show ``state.detail`` (or the hint when nothing is selected)."""
        d = self.state.detail
        if d is None:
            self.text.value = _HINT
            sync_figure(self.figure, detail_figure(_EMPTY, _EMPTY[..., 0] > 0, _EMPTY[..., 0] > 0))
            return
        self.text.value = detail_text(d)
        pending = " (projections pending)" if d.patches is None else ""
        fig = detail_figure(d.image, d.truth, d.pred, d.patches, d.features,
                            title=f"model {d.model}: validation Dice {d.row['val_dice']:.3f}{pending}")
        sync_figure(self.figure, fig)


class DistributionView:
    """Validation Dice of every model; the selected one ringed, your pair as a dashed line.

    Clicking a point selects that model (and shows its object marker on the heatmap).

    Attributes
    ----------
    figure : go.FigureWidget
        Traces as :data:`flimexplore.figures.DISTRIBUTION_TRACES`.
    widget : ipywidgets.VBox
        The view (CSS class ``fx-distribution``).
    """

    def __init__(self, state: ExplorerState, log: Callable[[str], None] | None = None) -> None:
        self.state = state
        self.figure = go.FigureWidget(self._build())
        self.figure.data[0].on_click(guarded(state, log)(self._on_click))
        state.observe(lambda _: self.redraw(), names=["result", "selected", "user_score"])
        self.widget = w.VBox([self.figure]).add_class("fx-distribution")

    def _build(self) -> go.Figure:
        rows = self.state.rows()
        ids = [r["model"] for r in rows]
        score = self.state.user_score
        return distribution_figure(
            [r["val_dice"] for r in rows], [r["split"] for r in rows], ids,
            selected=ids.index(self.state.selected) if self.state.selected in ids else None,
            user_dice=None if score is None else score.dice, vrange=dice_range(self.state),
            title=f"Dice of {len(rows)} markers" if rows else "Dice distribution",
        )

    def redraw(self) -> None:
        """Rebuild from the state (one batched update)."""
        sync_figure(self.figure, self._build())

    def _on_click(self, trace: Any, points: Points, device: InputDeviceState | None) -> None:
        if not points.point_inds:
            return
        model = int(trace.customdata[points.point_inds[0]])
        row = self.state.row(model)
        if row is not None:
            self.state.split = row["split"]
            self.state.selected = model
