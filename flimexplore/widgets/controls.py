"""The control panel: study settings, device, Run / Stop, progress and messages."""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as w
from traitlets import dlink, link

from flimexplore.data import list_datasets
from flimexplore.widgets.state import ExplorerState

__all__ = ["ControlsView"]

_WIDE = w.Layout(width="270px")
_STYLE = {"description_width": "110px"}


def _int(description: str, lo: int, hi: int, tooltip: str) -> w.BoundedIntText:
    return w.BoundedIntText(min=lo, max=hi, description=description, tooltip=tooltip, layout=_WIDE, style=_STYLE)


class ControlsView:
    """Settings linked to an :class:`ExplorerState`, with Run and Stop buttons.

    Parameters
    ----------
    state : ExplorerState
    on_run, on_stop : callable
        Called (without arguments) by the Run and Stop buttons.
    log : ipywidgets.Output, optional
        Where tracebacks of unexpected errors go (shown under the messages).

    Attributes
    ----------
    widget : ipywidgets.VBox
        The panel (CSS class ``fx-controls``).
    message : ipywidgets.HTML
        Where errors appear, as readable text.
    log : ipywidgets.Output
        Tracebacks of unexpected errors (collapsed).
    """

    def __init__(
        self,
        state: ExplorerState,
        on_run: Callable[[], None],
        on_stop: Callable[[], None],
        log: w.Output | None = None,
    ) -> None:
        self.state = state
        names = [info.name for info in list_datasets()]
        self.dataset = w.Combobox(
            options=names, placeholder="preset name or folder path", description="dataset", ensure_option=False,
            continuous_update=False, layout=_WIDE, style=_STYLE,
        )
        self.image = w.Dropdown(options=[("1 of 3", 0), ("2 of 3", 1), ("3 of 3", 2)], description="marked image",
                                layout=_WIDE, style=_STYLE)
        self.thumbnail = w.Image(format="png", width=96, height=96, layout=w.Layout(border="1px solid #ccc"))
        self.n_images = _int("images (0 = all)", 0, 100_000, "use only the first N images of the dataset")
        self.n_bg = _int("bg markers", 1, 10_000, "background markers per object marker")
        self.radius = _int("marker radius", 1, 64, "marker radius in pixels")
        self.splits = _int("object markers", 1, 50, "object markers (splits), each with its own background markers")
        self.epochs = _int("epochs", 1, 1000, "decision-layer epochs")
        self.seed = w.IntText(description="seed", layout=_WIDE, style=_STYLE)
        self.dense = w.Checkbox(description="dense map (every grid position)", indent=False)
        self.object_label = w.Text(description="object values", placeholder="e.g. 0,128 (default: non-zero)",
                                   continuous_update=False, layout=_WIDE, style=_STYLE)
        self.device = w.HTML()
        self.run = w.Button(description="Run", button_style="primary", icon="play", layout=w.Layout(width="120px"))
        self.stop = w.Button(description="Stop", button_style="warning", icon="stop", disabled=True,
                             layout=w.Layout(width="120px"))
        self.progress = w.IntProgress(min=0, max=1, value=0, layout=_WIDE)
        self.progress_label = w.HTML(layout=_WIDE).add_class("fx-progress")
        self.status = w.HTML(layout=_WIDE)
        self.message = w.HTML(layout=_WIDE)
        self.log = log if log is not None else w.Output()
        self.log.layout = w.Layout(max_height="160px", overflow="auto", width="270px")
        for name in ("dataset", "image", "n_images", "n_bg", "radius", "splits", "epochs", "seed", "dense", "object_label"):
            link((state, name), (getattr(self, name), "value"))
        dlink((state, "total"), (self.progress, "max"), lambda n: max(1, n))
        dlink((state, "done"), (self.progress, "value"))
        dlink((state, "progress_text"), (self.progress_label, "value"), lambda s: f"<small>{html.escape(s)}</small>")
        dlink((state, "dense"), (self.n_bg, "disabled"))
        dlink((state, "thumbnail"), (self.thumbnail, "value"))
        dlink((state, "device"), (self.device, "value"), lambda d: f"device: <b>{html.escape(d or '?')}</b>")
        dlink((state, "status"), (self.status, "value"), lambda s: f"<small>{html.escape(s)}</small>")
        dlink((state, "running"), (self.run, "disabled"))
        dlink((state, "running"), (self.stop, "disabled"), lambda running: not running)
        state.observe(self._show_error, names=["error", "error_at"])
        self.run.on_click(lambda _: on_run())
        self.stop.on_click(lambda _: on_stop())
        self.widget = w.VBox(
            [
                w.HTML("<b>Study</b>"), self.dataset, w.HBox([self.image]), self.thumbnail, self.n_images,
                self.n_bg, self.radius, self.splits, self.epochs, self.seed, self.dense, self.object_label, self.device,
                w.HBox([self.run, self.stop]), self.progress, self.progress_label, self.status, self.message, self.log,
            ],
            layout=w.Layout(width="290px", padding="4px"),
        ).add_class("fx-controls")

    def set_images(self, n: int) -> None:
        """Offer marked images ``1 of n`` ... ``n of n`` (values stay 0-based, as in the settings)."""
        options = [(f"{k + 1} of {n}", k) for k in range(n)]
        if list(self.image.options) != options:
            value = self.state.image
            with self.image.hold_trait_notifications():
                self.image.options = options
                self.image.value = value if 0 <= value < n else 0

    def _show_error(self, change: dict) -> None:
        text = self.state.error if self.state.error_at == "controls" else ""
        self.message.value = (
            f'<div style="color:#b00020;white-space:normal;line-height:1.3"><b>Error:</b> {html.escape(text)}</div>'
            if text else ""
        )
