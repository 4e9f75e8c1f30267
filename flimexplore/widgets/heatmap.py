"""The heatmap view: marked image, Dice-coloured markers, split and readout selectors, your own markers."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
from plotly.callbacks import InputDeviceState, Points
from traitlets import link

from flimexplore.figures import heatmap_figure
from flimexplore.widgets._live import sync_figure
from flimexplore.widgets.state import ExplorerState, guarded

__all__ = ["HeatmapView", "dice_range", "path_points"]

REDRAW_ON = ["result", "split", "selected", "preview", "dense_map", "user_obj", "user_bg", "user_score", "click_mode",
             "show_test", "error", "stale", "advice", "show_advice", "user_markers", "uncertainty", "next_marker",
             "decoder"]
DRAWING = {"draw object": "object", "draw background": "background"}
"""Click modes in which a drag on the heatmap draws a freehand stroke, and the class it marks."""
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def path_points(path: str) -> np.ndarray:
    """``(row, col)`` points of a Plotly ``drawopenpath`` shape (an SVG path ``M x,y L x,y ...`` in data units).

    Examples
    --------
    >>> path_points("M10.5,3L11,4.25L12,5").tolist()
    [[3.0, 10.5], [4.25, 11.0], [5.0, 12.0]]
    """
    values = [float(v) for v in _NUMBER.findall(path or "")]
    if len(values) < 2 or len(values) % 2:
        return np.zeros((0, 2))
    xy = np.asarray(values).reshape(-1, 2)
    return xy[:, ::-1].copy()


def dice_range(state: ExplorerState) -> tuple[float, float]:
    """Colour range shared by the heatmap and the distribution: the study's Dice range."""
    vals = [r["val_dice"] for r in state.rows()]
    if not vals:
        return 0.0, 1.0
    lo, hi = float(min(vals)), float(max(vals))
    return (lo - 0.01, hi + 0.01) if hi - lo < 0.02 else (lo, hi)


class HeatmapView:
    """A live heatmap figure driven by an :class:`ExplorerState`.

    The markers are coloured by the Dice of the readout chosen in the
    ``readout`` dropdown (``state.decoder``; shown when the study has other
    readouts than its trained layer).  Clicking a background marker selects its model (``state.selected``);
    with the click mode on "place object" or "place background", a click on
    the image puts your own marker there (``state.user_obj`` / ``state.user_bg``).

    Parameters
    ----------
    state : ExplorerState
    on_save, on_load, on_clear : callable
        Called by the Save / Load / Clear buttons of "your markers".
    on_inspect : callable, optional
        Called by the "inspect" button: show your pair in the detail view.
    on_advice : callable, optional
        Called with ``k`` when the ``k``-th advised position (0 = best) is clicked.
    on_stroke : callable, optional
        Called with the ``(row, col)`` points of each freehand stroke drawn in a draw mode.
    on_next : callable, optional
        Called (without arguments) when the suggested next marker's ring is clicked: accept it.
    log : callable, optional
        Receives tracebacks of unexpected errors in click handlers.

    Attributes
    ----------
    figure : go.FigureWidget
        Traces as :data:`flimexplore.figures.HEATMAP_TRACES`.
    widget : ipywidgets.VBox
        The view (CSS class ``fx-heatmap``).
    """

    def __init__(
        self,
        state: ExplorerState,
        on_save: Callable[[], None],
        on_load: Callable[[], None],
        on_clear: Callable[[], None],
        log: Callable[[str], None] | None = None,
        on_inspect: Callable[[], None] | None = None,
        on_advice: Callable[[int], None] | None = None,
        on_stroke: Callable[[np.ndarray], None] | None = None,
        on_next: Callable[[], None] | None = None,
    ) -> None:
        self.state = state
        self.figure = go.FigureWidget(self._build())
        handle = guarded(state, log, "markers")
        self._on_stroke = on_stroke
        # Plotly's frontend reports a drawn shape as relayout({"shapes": [...]}) through this synced trait
        self.figure.observe(handle(self._on_relayout), names=["_js2py_relayout"])
        traces = {t.name: t for t in self.figure.data}
        traces["background markers"].on_click(handle(self._on_marker))
        for name in ("image", "object marker", "your object marker", "your bg marker"):
            traces[name].on_click(handle(self._on_pixel))
        self._on_advice = on_advice
        traces["advised positions"].on_click(handle(self._on_advised))
        self._on_next = on_next
        traces["next marker"].on_click(handle(self._on_next_clicked))
        self.advice = w.ToggleButton(description="advice", icon="lightbulb-o", layout=w.Layout(width="90px"),
                                     tooltip="where to draw: the advice map from the marked image alone, best "
                                             "positions ringed; click a ring to train and score it")
        link((state, "show_advice"), (self.advice, "value"))
        self.advice_for = w.Dropdown(options=[("advise bg", "background"), ("advise obj", "object")],
                                     layout=w.Layout(width="110px"),
                                     tooltip="advise background positions for the shown object marker, or object "
                                             "positions for the selected background marker")
        link((state, "advice_for"), (self.advice_for, "value"))
        self.advice_line = w.HTML(layout=w.Layout(width="520px")).add_class("fx-advice-line")
        self.split = w.Dropdown(description="object marker", options=[("1 of 1", 0)], layout=w.Layout(width="240px"),
                                style={"description_width": "initial"})
        self.readout = w.Dropdown(description="readout", options=[("trained", "trained")],
                                  layout=w.Layout(width="200px", display="none"), style={"description_width": "initial"},
                                  tooltip="whose Dice colours the markers: the trained decision layer or a training-free "
                                          "LIDS decoder reading the same model")
        self.mode = w.ToggleButtons(
            options=[("select", "select"), ("place obj", "object"), ("place bg", "background"),
                     ("draw obj", "draw object"), ("draw bg", "draw background")],
            tooltips=["click a marker to inspect its model", "click the image to put your object marker there",
                      "click the image to put your background marker there",
                      "drag on the image to draw an object stroke (a scribble)",
                      "drag on the image to draw a background stroke (a scribble)"],
            style={"button_width": "96px"}, description="click:", layout=w.Layout(width="auto"),
        )
        self.brush = w.BoundedIntText(min=0, max=10, description="brush", layout=w.Layout(width="110px"),
                                      style={"description_width": "40px"},
                                      tooltip="brush radius of freehand strokes, in image pixels")
        self.verdict = w.HTML(layout=w.Layout(width="520px")).add_class("fx-verdict")
        self.user = w.HTML(layout=w.Layout(width="520px"))
        self.message = w.HTML(layout=w.Layout(width="520px")).add_class("fx-markers-message")
        self.path = w.Text(description="seeds file", placeholder="<image>-seeds.txt", layout=w.Layout(width="270px"),
                           style={"description_width": "70px"})
        buttons = [w.Button(description=d, layout=w.Layout(width="62px")) for d in ("Save", "Load", "Clear")]
        for button, action in zip(buttons, (on_save, on_load, on_clear), strict=True):
            button.on_click(lambda _, act=action: act())
        self.inspect = w.Button(description="inspect", tooltip="show your pair in the detail view",
                                layout=w.Layout(width="70px"), disabled=True)
        if on_inspect is not None:
            self.inspect.on_click(lambda _: on_inspect())
        link((state, "split"), (self.split, "value"))
        link((state, "decoder"), (self.readout, "value"))
        link((state, "click_mode"), (self.mode, "value"))
        link((state, "stroke_radius"), (self.brush, "value"))
        link((state, "seeds_path"), (self.path, "value"))
        state.observe(self._on_result, names=["result"])
        state.observe(lambda _: self.redraw(), names=REDRAW_ON)
        self.widget = w.VBox([
            w.HBox([self.split, self.readout, self.mode, self.brush, self.advice, self.advice_for],
                   layout=w.Layout(flex_flow="row wrap")),
            self.verdict, self.advice_line, self.figure,
            w.HTML("<b>Your markers</b> <small>(LIDS -seeds.txt)</small>"), self.user, self.message,
            w.HBox([self.path, *buttons, self.inspect], layout=w.Layout(flex_flow="row wrap")),
        ], layout=w.Layout(width="540px")).add_class("fx-heatmap")

    def _build(self) -> go.Figure:
        s = self.state
        res = s.result
        placing = s.click_mode != "select"
        adv = s.advice if s.show_advice else None
        layer = dict(advice_map=None if adv is None else adv.score_map(),
                     advice_top=None if adv is None or adv.abstains else adv.top(s.advice_top))
        # whole markers (scribbles, strokes) are drawn pixel by pixel, not as the disks of a pair
        whole = s.user_markers is not None
        nxt = s.next_marker
        yours = dict(user_obj=None if whole else s.user_obj, user_bg=None if whole else s.user_bg,
                     user_pixels=s.user_markers, drawing=DRAWING.get(s.click_mode),
                     next_marker=None if nxt is None else (nxt.row, nxt.col, nxt.label))
        if res is None:
            image = s.preview if s.preview is not None else np.zeros((64, 64, 3))
            return heatmap_figure(image, None, np.zeros((0, 2)), [], s.radius, **yours,
                                  title="run a study to see its heatmap", placing=placing)
        split = min(s.split, len(res.markers) - 1)
        rows = s.rows(split)
        models = [r["model"] for r in rows]
        score = s.user_score
        n = len(res.rows)
        total = sum(len(ms.bg) for ms in res.markers)
        models_text = f"{n} models" if n == total else f"{n} of {total} models"
        lead = "OUT OF DATE · " if s.stale else ""
        said = s.split_uncertainty(split)
        trained = s.decoder == "trained"
        spread = dict(
            intervals=[(r["val_dice_lo"], r["val_dice_hi"], r["n_repeats"]) for r in rows]
            if trained and "n_repeats" in (rows or [{}])[0] else None,
            tied=[m in said["tied_models"] for m in models] if said else None,
        )
        return heatmap_figure(
            res.context.image, res.markers[split].obj, [(r["bg_row"], r["bg_col"]) for r in rows],
            [r["val_dice"] for r in rows], res.config.radius, models=models, vrange=dice_range(s), **spread,
            selected=models.index(s.selected) if s.selected in models else None, dense=s.dense_map,
            user_dice=None if score is None else score.dice, placing=placing, **yours, **layer,
            title=f"{lead}{html.escape(res.context.stem)} · object marker {split + 1} of {len(res.markers)} · {models_text}"
                  + ("" if trained else f" · {s.decoder} decoder"),
        )

    def redraw(self) -> None:
        """Rebuild the figure from the state and copy it into the live widget (one batched update)."""
        sync_figure(self.figure, self._build())
        self.user.value = self._user_text()
        s = self.state
        adv = s.advice if s.show_advice else None
        rel = adv.reliability if adv is not None else None
        colour = "#8a5a00" if rel and rel["abstain"] else "#1a6e34"
        self.advice_line.value = (f'<div style="white-space:normal;line-height:1.3;color:{colour}"><small>'
                                  f"{html.escape(rel['line'])}</small></div>" if rel else "")
        said = s.split_uncertainty(s.split) if s.result is not None else None
        self.verdict.value = (f'<div style="white-space:normal;line-height:1.3"><b>Repeated fits:</b> '
                              f"{html.escape(said['verdict'])} <small>(white rings)</small></div>" if said else "")
        self.inspect.disabled = s.user_score is None
        text = s.error if s.error_at == "markers" else ""
        self.message.value = (
            f'<div style="color:#b00020;white-space:normal;line-height:1.3"><b>Error:</b> {html.escape(text)}</div>'
            if text else ""
        )

    def _user_text(self) -> str:
        s = self.state
        if s.user_obj is None and s.user_bg is None and s.user_markers is None:
            return ("<small>switch the click mode to <i>place obj</i> or <i>place bg</i> and click the image, "
                    "or to <i>draw obj</i> / <i>draw bg</i> and drag a stroke</small>")
        score = s.user_score
        if score is None and s.user_markers is not None:
            m = s.user_markers
            return (f"<small>your strokes: {int((m[:, 2] == 1).sum())} object and {int((m[:, 2] == 0).sum())} "
                    "background pixels (the shown object marker or the selected background marker completes "
                    "a missing class)</small>")
        if score is None:
            return f"<small>object {s.user_obj or 'of the split'}, background {s.user_bg or 'of the selection'}</small>"
        test = f" · held-out test Dice {score.test['dice']:.3f}" if s.show_test else ""
        spread = score.interval_text()
        return (
            f"your pair: validation Dice <b>{score.dice:.3f}</b>{spread}{test}, "
            f"rank {score.rank} of {score.n + 1} ({score.percentile:.0f}th percentile of the sampled markers)"
        )

    def _on_result(self, change: dict[str, Any]) -> None:
        res = change["new"]
        names = ("trained",) if res is None or not res.readouts else tuple(res.config.decoders)
        if tuple(v for _, v in self.readout.options) != names:
            with self.readout.hold_trait_notifications():
                self.readout.options = [(d, d) for d in names]
                self.readout.value = self.state.decoder if self.state.decoder in names else "trained"
        self.readout.layout.display = None if len(names) > 1 else "none"
        n = 1 if res is None else len(res.markers)
        trained = set() if res is None else {r["split"] for r in res.rows}
        options = [(f"{k + 1} of {n}" + ("" if res is None or k in trained else " (not trained yet)"), k)
                   for k in range(n)]
        if list(self.split.options) != options:
            value = self.state.split
            with self.split.hold_trait_notifications():
                self.split.options = options
                self.split.value = value if 0 <= value < n else 0

    def _on_relayout(self, change: dict[str, Any]) -> None:
        """A freehand stroke arrived from the browser (a relayout of ``shapes``): pass it on, then remove it.

        The drawn path itself is removed from the figure at once: the stroke is shown by its pixels (the
        markers the model is trained on), drawn from the state.
        """
        data = (change["new"] or {}).get("relayout_data") or {}
        shapes = data.get("shapes")
        if not isinstance(shapes, list) or not shapes:
            return
        paths = [sh.get("path") for sh in shapes if isinstance(sh, dict) and sh.get("type") == "path" and sh.get("path")]
        self.figure.plotly_relayout({"shapes": []})
        if self.state.click_mode not in DRAWING or self._on_stroke is None:
            return
        for path in paths:
            points = path_points(path)
            if len(points):
                self._on_stroke(points)

    def _on_marker(self, trace: Any, points: Points, device: InputDeviceState | None) -> None:
        if not points.point_inds:
            return
        if self.state.click_mode == "select":
            self.state.selected = int(trace.customdata[points.point_inds[0]])
        elif self.state.click_mode == "background":  # on a sampled marker: reproduce it
            self._place(points.ys[0], points.xs[0])
        # placing an object marker never snaps to a background marker (in a browser, markers take no
        # clicks while placing, so the image reports the pixel under the mouse)

    def _on_pixel(self, trace: Any, points: Points, device: InputDeviceState | None) -> None:
        if not points.point_inds:
            return
        if self.state.click_mode == "select":
            self._select_near(points.ys[0], points.xs[0])
        else:
            self._place(points.ys[0], points.xs[0])

    def _on_advised(self, trace: Any, points: Points, device: InputDeviceState | None) -> None:
        if not points.point_inds:
            return
        if self.state.click_mode != "select":
            self._place(points.ys[0], points.xs[0])
        elif self._on_advice is not None:
            self._on_advice(int(trace.customdata[points.point_inds[0]]))

    def _on_next_clicked(self, trace: Any, points: Points, device: InputDeviceState | None) -> None:
        if points.point_inds and self._on_next is not None:
            self._on_next()

    def _place(self, row: float, col: float) -> None:
        where = (int(round(row)), int(round(col)))
        if self.state.click_mode == "object":
            self.state.user_obj = where
        else:
            self.state.user_bg = where

    def _select_near(self, row: float, col: float) -> None:
        """Select the background marker of the shown split whose disk holds the clicked pixel."""
        rows = self.state.rows(self.state.split)
        if not rows:
            return
        d2 = [(r["bg_row"] - row) ** 2 + (r["bg_col"] - col) ** 2 for r in rows]
        k = int(np.argmin(d2))
        if d2[k] <= (rows[k]["radius"] + 1) ** 2:
            self.state.selected = rows[k]["model"]
