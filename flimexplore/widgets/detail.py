"""The detail view (one model: prediction, evidence map, projections, scores) and the Dice distribution view."""

from __future__ import annotations

import html
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
from flimexplore.widgets.state import USER_MODEL, ExplorerState, guarded

__all__ = ["DetailView", "DistributionView", "detail_text"]

_EMPTY = np.zeros((8, 8, 3))
_HINT = ("<i>Click a background marker on the heatmap (or a point of the distribution) to inspect its model; "
         "place your own markers and press <b>inspect</b> to see your pair.</i>")


def detail_text(detail: Any, n_val: int | None = None, show_test: bool = False, fits: list[float] | None = None) -> str:
    """One HTML paragraph with a model's validation scores (test scores only with ``show_test``).

    Test images are held out: choosing markers by their scores would use the test set, so they
    are shown only on request, labelled as held-out.  With repeated fits (``fits``: each fit's
    validation Dice) the Dice is their mean, shown with its 95 % interval and every fit.
    """
    r = detail.row
    s = detail.image_scores
    who = (f"<b>your pair</b> (object marker at {tuple(int(v) for v in detail.obj)}, background marker at "
           f"{tuple(int(v) for v in detail.bg)})" if detail.model == USER_MODEL else
           f"<b>model {detail.model}</b> (object marker {r['split'] + 1}, background marker {r['bg_index'] + 1})")
    readout = getattr(detail, "readout", "trained")
    if readout != "trained":
        who += f" read by the <b>{html.escape(readout)}</b> decoder"
    test = (f"<br><small>held-out test set (do not choose markers by it): Dice {r['test_dice']:.3f} · "
            f"Jaccard {r['test_jaccard']:.3f}</small>" if show_test else "")
    of = f" of {n_val}" if n_val else ""
    spread = ""
    if fits and len(fits) > 1 and "val_dice_lo" in r:
        spread = (f" (mean of {len(fits)} fits, 95 % CI {r['val_dice_lo']:.3f}-{r['val_dice_hi']:.3f}; "
                  f"fits: {', '.join(f'{v:.3f}' for v in fits)}; the prediction below is fit 1's)")
    epoch = f" · best epoch {r['best_epoch']}" if readout == "trained" else " · no training"
    attention = "".join(f" · {k.replace('_', ' ')} {r[k]:.2f}" for k in ("pointing", "mass_in_object")
                        if k in r and np.isfinite(r[k]))
    return (
        f"{who}: validation Dice <b>{r['val_dice']:.3f}</b>{spread} · Jaccard {r['val_jaccard']:.3f} · "
        f"sensitivity {r['val_sensitivity']:.3f} · specificity {r['val_specificity']:.3f}{epoch}{attention}<br>"
        f"<small>validation image {detail.val_image + 1}{of}: Dice {s['dice']:.3f} · Jaccard {s['jaccard']:.3f} · "
        f"sensitivity {s['sensitivity']:.3f} · specificity {s['specificity']:.3f}</small>{test}"
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
        self.figure.layout.height = 10  # hidden until a model is selected; see redraw
        self._figure_box = w.Box([self.figure], layout=w.Layout(display="none"))
        self.val_image = w.IntText(value=1, description="validation image", style={"description_width": "110px"},
                                   layout=w.Layout(width="180px"))
        self.n_val = w.HTML("")
        self.show_test = w.Checkbox(description="show held-out test scores", indent=False,
                                    tooltip="test images are held out: choosing markers by them would use the test set")
        self.message = w.HTML().add_class("fx-detail-message")
        link((state, "show_test"), (self.show_test, "value"))
        self.val_image.observe(self._typed_image, names=["value"])
        state.observe(self._state_image, names=["val_image"])
        state.observe(lambda _: self.redraw(), names=["detail", "show_test", "error", "stale"])
        state.observe(self._on_result, names=["result"])
        state.observe(self._pending, names=["selected"])
        self.widget = w.VBox([
            self.text, self.message,
            w.HBox([self.val_image, self.n_val, self.show_test], layout=w.Layout(flex_flow="row wrap")),
            self._figure_box,
        ], layout=w.Layout(width="100%")).add_class("fx-detail")

    def _n_val(self) -> int:
        res = self.state.result
        return 0 if res is None else len(res.context.split.val)

    def _on_result(self, change: dict[str, Any]) -> None:
        self.n_val.value = f"of {self._n_val()}" if self._n_val() else ""

    def _typed_image(self, change: dict[str, Any]) -> None:
        """1-based input; out-of-range numbers are refused with a message and the box reset."""
        n, k = self._n_val(), int(change["new"])
        if n and not 1 <= k <= n:
            self.val_image.value = self.state.val_image + 1  # first: this change clears the message
            self.message.value = (f'<span style="color:#b00020">validation image {k} does not exist: '
                                  f"choose 1-{n}</span>")
            return
        self.message.value = ""
        self.state.val_image = k - 1

    def _state_image(self, change: dict[str, Any]) -> None:
        if self.val_image.value != change["new"] + 1:
            self.val_image.value = change["new"] + 1

    def _pending(self, change: dict[str, Any]) -> None:
        if change["new"] == -1:
            self.text.value = _HINT
        elif self.state.detail is None or self.state.detail.model != change["new"]:
            what = "your pair" if change["new"] == USER_MODEL else f"model {change['new']}"
            self.text.value = f"computing {what}..."

    def redraw(self) -> None:
        """Show ``state.detail`` (or a one-line hint, without figure, when nothing is selected)."""
        s = self.state
        error = s.error if s.error_at == "detail" else ""
        if error:
            self.message.value = f'<span style="color:#b00020"><b>Error:</b> {html.escape(error)}</span>'
        d = s.detail
        if d is None:
            self.text.value = _HINT
            self._figure_box.layout.display = "none"
            return
        fits = s.user_score.fit_dice if d.model == USER_MODEL and s.user_score is not None else s.fits(d.model)
        self.text.value = ("<b>OUT OF DATE</b> (settings changed — press Run) · " if s.stale else "") + detail_text(
            d, self._n_val(), s.show_test, list(fits))
        pending = " (projections pending)" if d.patches is None else ""
        who = "your pair" if d.model == USER_MODEL else f"model {d.model}"
        readout = getattr(d, "readout", "trained")
        fig = detail_figure(d.image, d.truth, d.pred, d.patches, d.features, evidence=getattr(d, "evidence", None),
                            evidence_title="logit gap (exact CAM)" if readout == "trained" else f"{readout} saliency",
                            title=f"{who}: validation Dice {d.row['val_dice']:.3f}{pending}{self._counts(d)}")
        sync_figure(self.figure, fig)
        self._figure_box.layout.display = None

    @staticmethod
    def _counts(d: Any) -> str:
        """How many images and superpixels the feature projection shows."""
        f = d.features
        if f is None:
            return ""
        label = np.asarray(f["label"])
        images = f" on {len(np.unique(f['image']))} validation images" if "image" in f else ""
        return f"<br>features: {int((label == 1).sum())} object + {int((label == 0).sum())} background superpixels{images}"


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
        self.full_range = w.Checkbox(description="Dice axis 0-1", indent=False, layout=w.Layout(width="140px"),
                                     tooltip="off: the axis fits the study's Dice range, so close values can be picked")
        self.figure = go.FigureWidget(self._build())
        self.figure.data[0].on_click(guarded(state, log)(self._on_click))
        state.observe(lambda _: self.redraw(), names=["result", "selected", "user_score", "stale", "decoder"])
        self.full_range.observe(lambda _: self.redraw(), names=["value"])
        self.widget = w.VBox([self.figure, self.full_range], layout=w.Layout(width="440px")).add_class("fx-distribution")

    def _build(self) -> go.Figure:
        rows = self.state.rows()
        ids = [r["model"] for r in rows]
        score = self.state.user_score
        trained = self.state.decoder == "trained"
        spread = [(r["val_dice_lo"], r["val_dice_hi"]) for r in rows] if trained and rows and "val_dice_lo" in rows[0] else None
        return distribution_figure(
            [r["val_dice"] for r in rows], [r["split"] for r in rows], ids, intervals=spread,
            selected=ids.index(self.state.selected) if self.state.selected in ids else None,
            user_dice=None if score is None else score.dice, vrange=dice_range(self.state),
            title=("OUT OF DATE · " if self.state.stale else "") + (
                f"Dice of {len(rows)} markers" + ("" if trained else f" ({self.state.decoder} decoder)")
                + (" (bars: 95 % interval over fits)" if spread else "") if rows
                else "Dice distribution"),
            full_range=self.full_range.value,
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
