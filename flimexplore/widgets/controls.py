"""The control panel: study settings, device, Run / Stop, progress and messages."""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as w
from traitlets import dlink, link

from flimexplore.data import list_datasets
from flimexplore.engine.settings import CLUSTERINGS, CONSENSUS, MAX_LAYERS, POOLS
from flimexplore.study.readout_table import READOUTS, TRAINED
from flimexplore.widgets.state import FLIM_SETTINGS, ExplorerState

__all__ = ["ControlsView", "FlimPanel"]

_WIDE = w.Layout(width="270px")
_STYLE = {"description_width": "110px"}
_NARROW = w.Layout(width="230px")  # inside the accordion's padding
_STYLE_NARROW = {"description_width": "100px"}


def _int(description: str, lo: int, hi: int, tooltip: str) -> w.BoundedIntText:
    return w.BoundedIntText(min=lo, max=hi, description=description, tooltip=tooltip, layout=_WIDE, style=_STYLE)


def _small_int(description: str, lo: int, hi: int, tooltip: str) -> w.BoundedIntText:
    return w.BoundedIntText(min=lo, max=hi, description=description, tooltip=tooltip, layout=_NARROW,
                            style=_STYLE_NARROW)


def _warning_html(text: str) -> str:
    """Warnings as amber lines (empty: nothing shown)."""
    if not text:
        return ""
    lines = "".join(f"<div>{html.escape(line)}</div>" for line in text.splitlines())
    return f'<div style="color:#8a5a00;white-space:normal;line-height:1.3"><b>Warning:</b> {lines}</div>'


class FlimPanel:
    """The advanced panel: the FLIM encoder's settings, an ``arch.json`` to load them from, and the paper's defaults.

    Parameters
    ----------
    state : ExplorerState
    on_load_arch, on_reset : callable
        Called (without arguments) by the "load arch.json" and "paper defaults" buttons.

    Attributes
    ----------
    widget : ipywidgets.VBox
        The settings in force in one line (:attr:`summary`, always shown), above the collapsed
        :attr:`accordion` that holds the controls (CSS class ``fx-flim``).
    summary : ipywidgets.HTML
    accordion : ipywidgets.Accordion
    """

    def __init__(self, state: ExplorerState, on_load_arch: Callable[[], None], on_reset: Callable[[], None]) -> None:
        self.state = state
        self.kernel_size = _small_int("kernel size", 1, 15, "odd side of the square kernels (paper: 3)")
        self.kernel_size.step = 2
        self.kernels_per_marker = _small_int("kernels/marker", 1, 64, "k-means clusters per marker (paper: 8)")
        self.channels = _small_int("channels", 1, 256, "output channels of each layer; more kernels are "
                                   "reduced by the consensus step (paper: 16)")
        self.pool = w.Dropdown(options=POOLS, description="pooling", layout=_NARROW, style=_STYLE_NARROW)
        self.pool_size = _small_int("pool size", 1, 15, "odd pooling window side (paper: 3)")
        self.pool_size.step = 2
        self.pool_stride = _small_int("pool stride", 1, 8, "pooling stride (paper: 2)")
        self.layers = _small_int("layers", 1, MAX_LAYERS, "FLIM layers, all learned from the same markers (paper: 1)")
        self.decision_layer = w.Dropdown(options=[("last", 0)] + [(str(k), k) for k in range(1, MAX_LAYERS + 1)],
                                         description="decision reads", layout=_NARROW, style=_STYLE_NARROW)
        self.consensus = w.Dropdown(options=CONSENSUS, description="consensus", layout=_NARROW, style=_STYLE_NARROW,
                                    tooltip="how more kernels than channels are reduced: cosine k-means "
                                    "prototypes (libift) or PCA")
        self.stdev_factor = w.BoundedFloatText(min=1e-6, max=10.0, step=0.01, description="stdev factor",
                                               layout=_NARROW, style=_STYLE_NARROW)
        self.clustering = w.Dropdown(options=CLUSTERINGS, description="clustering", layout=_NARROW, style=_STYLE_NARROW)
        self.restarts = _small_int("restarts", 1, 100, "k-means++ runs per marker, the lowest inertia is kept")
        self.min_cluster_fraction = w.BoundedFloatText(min=0.0, max=0.5, step=0.01, description="drop clusters <",
                                                       layout=_NARROW, style=_STYLE_NARROW)
        self.cluster_seed = w.IntText(description="cluster seed", layout=_NARROW, style=_STYLE_NARROW)
        self.arch_path = w.Text(description="arch.json", placeholder="path to a LIDS arch.json",
                                continuous_update=False, layout=_NARROW, style=_STYLE_NARROW)
        self.load_arch = w.Button(description="load arch.json", icon="upload", layout=_NARROW)
        self.reset = w.Button(description="paper defaults", icon="undo", layout=_NARROW)
        self.summary = w.HTML(layout=_WIDE).add_class("fx-flim-summary")
        for name in FLIM_SETTINGS:
            link((state, name), (getattr(self, name), "value"))
        link((state, "arch_path"), (self.arch_path, "value"))
        dlink((state, "running"), (self.load_arch, "disabled"))
        dlink((state, "running"), (self.reset, "disabled"))
        dlink((state, "clustering"), (self.restarts, "disabled"), lambda c: c == "farthest")
        self.load_arch.on_click(lambda _: on_load_arch())
        self.reset.on_click(lambda _: on_reset())
        state.observe(self._describe, names=list(FLIM_SETTINGS))
        box = w.VBox([
            self.kernel_size, self.kernels_per_marker, self.channels, self.pool, self.pool_size,
            self.pool_stride, self.layers, self.decision_layer, self.consensus, self.stdev_factor, self.clustering,
            self.restarts, self.min_cluster_fraction, self.cluster_seed, self.arch_path, self.load_arch, self.reset,
        ])
        self.accordion = w.Accordion(children=[box], selected_index=None, layout=w.Layout(width="280px"))
        self.accordion.set_title(0, "FLIM settings (advanced)")
        self.widget = w.VBox([self.summary, self.accordion]).add_class("fx-flim")
        self._describe()

    def _describe(self, change: dict | None = None) -> None:
        """Say which settings apply, above the panel (seen while it is collapsed)."""
        try:
            text = "FLIM: " + self.state.flim().validate().summary()
            colour = "inherit"
        except Exception as exc:  # noqa: BLE001 - an invalid combination is shown, not raised, while typing
            text, colour = f"FLIM: invalid. {exc}", "#b00020"
        self.summary.value = (f'<div style="white-space:normal;line-height:1.3;color:{colour}"><small>'
                              f"{html.escape(text)}</small></div>")


class ControlsView:
    """Settings linked to an :class:`ExplorerState`, with Run and Stop buttons.

    Parameters
    ----------
    state : ExplorerState
    on_run, on_stop : callable
        Called (without arguments) by the Run and Stop buttons.
    on_load_arch, on_reset_flim : callable, optional
        Called by the advanced panel's "load arch.json" and "paper defaults" buttons.
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
    flim : FlimPanel
        The advanced panel of FLIM settings.
    """

    def __init__(
        self,
        state: ExplorerState,
        on_run: Callable[[], None],
        on_stop: Callable[[], None],
        log: w.Output | None = None,
        on_load_arch: Callable[[], None] = lambda: None,
        on_reset_flim: Callable[[], None] = lambda: None,
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
        self.repeats = _int("fits per model", 1, 50, "fit every model this many times with its random choices "
                            "re-drawn: each marker's Dice becomes a mean with a 95 % interval")
        self.seed = w.IntText(description="seed", layout=_WIDE, style=_STYLE)
        self.dense = w.Checkbox(description="dense map (every grid position)", indent=False)
        self.readouts = w.Checkbox(description="other readouts (LIDS decoders, attention)", indent=False,
                                   tooltip="also read every model with the four training-free LIDS adaptive decoders "
                                           "and score where each readout's evidence lies (--decoders, --attention)")
        self.object_label = w.Text(description="object values", placeholder="e.g. 0,128 (default: non-zero)",
                                   continuous_update=False, layout=_WIDE, style=_STYLE)
        self.flim = FlimPanel(state, on_load_arch, on_reset_flim)
        self.device = w.HTML()
        self.run = w.Button(description="Run", button_style="primary", icon="play", layout=w.Layout(width="120px"))
        self.stop = w.Button(description="Stop", button_style="warning", icon="stop", disabled=True,
                             layout=w.Layout(width="120px"))
        self.progress = w.IntProgress(min=0, max=1, value=0, layout=_WIDE)
        self.progress_label = w.HTML(layout=_WIDE).add_class("fx-progress")
        self.status = w.HTML(layout=_WIDE)
        self.message = w.HTML(layout=_WIDE)
        self.warning = w.HTML(layout=_WIDE).add_class("fx-warning")
        self.log = log if log is not None else w.Output()
        self.log.layout = w.Layout(max_height="160px", overflow="auto", width="270px")
        for name in ("dataset", "image", "n_images", "n_bg", "radius", "splits", "epochs", "repeats", "seed", "dense",
                     "object_label"):
            link((state, name), (getattr(self, name), "value"))
        dlink((state, "total"), (self.progress, "max"), lambda n: max(1, n))
        dlink((state, "done"), (self.progress, "value"))
        dlink((state, "progress_text"), (self.progress_label, "value"), lambda s: f"<small>{html.escape(s)}</small>")
        link((state, "decoders"), (self.readouts, "value"),
             transform=(lambda d: len(d) > 1, lambda on: READOUTS if on else (TRAINED,)))
        dlink((state, "dense"), (self.n_bg, "disabled"))
        dlink((state, "thumbnail"), (self.thumbnail, "value"))
        dlink((state, "device"), (self.device, "value"), lambda d: f"device: <b>{html.escape(d or '?')}</b>")
        dlink((state, "status"), (self.status, "value"), lambda s: f"<small>{html.escape(s)}</small>")
        dlink((state, "running"), (self.run, "disabled"))
        dlink((state, "running"), (self.stop, "disabled"), lambda running: not running)
        state.observe(self._show_error, names=["error", "error_at"])
        dlink((state, "warning"), (self.warning, "value"), _warning_html)
        self.run.on_click(lambda _: on_run())
        self.stop.on_click(lambda _: on_stop())
        self.widget = w.VBox(
            [
                w.HTML("<b>Study</b>"), self.dataset, w.HBox([self.image]), self.thumbnail, self.n_images,
                self.n_bg, self.radius, self.splits, self.epochs, self.repeats, self.seed, self.dense, self.readouts,
                self.object_label,
                self.flim.widget,
                self.device,
                w.HBox([self.run, self.stop]), self.progress, self.progress_label, self.status, self.message, self.warning,
                self.log,
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
