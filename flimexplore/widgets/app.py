"""The explorer: state + views wired together; the only place where UI events trigger compute.

:class:`Explorer` owns one :class:`~flimexplore.widgets.state.ExplorerState`
and the views that show it.  It observes the state and turns user intent
into work: loading a dataset preview, running a study (in a background
thread, or in the calling thread with ``sync=True``), computing the detail
of the selected model, scoring your own marker pair, saving and loading
markers.  Every callback is guarded: an error becomes a readable message
in the control panel instead of vanishing in the kernel's log.

The explorer's jobs live in mixins, one module each: :mod:`~flimexplore.widgets._running`
(data and studies), :mod:`~flimexplore.widgets._advising` (advice and analysis),
:mod:`~flimexplore.widgets._your_markers` (placed and drawn markers, seeds files) and
:mod:`~flimexplore.widgets._next_marker` (the annotation loop); this module wires them.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ipywidgets as w

from flimexplore.analysis.descriptors import DESCRIPTORS
from flimexplore.data import Dataset
from flimexplore.engine.batched import resolve_device
from flimexplore.engine.settings import FlimSettings
from flimexplore.errors import MarkerError
from flimexplore.loop.view import MarkedView
from flimexplore.study.run import MODEL_CHUNK, StudyResult
from flimexplore.widgets._advising import AdviceMixin
from flimexplore.widgets._live import resend_state
from flimexplore.widgets._next_marker import NextMarkerMixin
from flimexplore.widgets._running import RunMixin, _Folders, eta_text, same_study
from flimexplore.widgets._your_markers import MarkersMixin
from flimexplore.widgets.analysis import AnalysisView
from flimexplore.widgets.controls import ControlsView
from flimexplore.widgets.detail import DetailView, DistributionView
from flimexplore.widgets.heatmap import HeatmapView
from flimexplore.widgets.inspect import (
    model_detail,
    pair_detail,
)
from flimexplore.widgets.next_marker import NextMarkerView
from flimexplore.widgets.state import SETTINGS, USER_MODEL, ExplorerState, guarded

__all__ = ["Explorer", "eta_text", "explore", "same_study"]

Pair = tuple[int, int]


class Explorer(RunMixin, AdviceMixin, MarkersMixin, NextMarkerMixin):
    """Interactive marker study: controls, heatmap, Dice distribution and model detail, linked.

    Parameters
    ----------
    dataset : str
        Preset name (``fish``, ``eggs``, ``fundus``, ``nuclei``) or a dataset folder.
    n_images, image, n_bg, radius, splits, epochs, seed, dense, dense_spacing
        Initial study settings (see :class:`~flimexplore.study.config.StudyConfig`);
        ``n_bg`` and ``radius`` default to the dataset's suggestions.
    device : str
        ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    sync : bool
        Run studies in the calling thread (scripts, tests, notebooks run by CI);
        otherwise in a background thread so that the interface stays live.
    model_chunk : int
        Models trained together; Stop takes effect between chunks.
    projections : bool
        Compute the two t-SNE projections of the selected model.
    feature_images, superpixels : int
        Validation images and superpixels per image of the feature projection (4 x 100 gives about
        15-20 object and 200+ background points on the fish preset; the panel says how many).
    flim : FlimSettings or dict, optional
        Initial FLIM encoder settings of the advanced panel (default: the paper's single layer).
    arch : path, optional
        A LIDS ``arch.json`` to take the FLIM settings from instead (as ``--arch``).
    repeats : int
        Fits of every model (``--repeats``); with more than one the views show each marker's 95 %
        interval, the markers tied with the best and a verdict line above the heatmap.
    advice_probe : int
        Candidates the advice layer probes (``advise --probe``; fewer than the command line's 192, so
        that the layer answers in seconds).
    decoders : sequence of str
        How the study reads its models out (``--decoders``): ``("trained",)`` or the trained layer and
        LIDS adaptive decoders; with several, a ``readout`` dropdown above the heatmap chooses whose
        Dice the heatmap, distribution and detail view show, and the detail view shows that readout's
        evidence map (the "other readouts" checkbox of the controls sets all five).

    Attributes
    ----------
    state : ExplorerState
    widget : ipywidgets.VBox
        The whole interface (CSS class ``fx-explorer``); displaying the explorer displays it.
    controls, heatmap, distribution, detail
        The views.
    log : ipywidgets.Output
        Tracebacks of unexpected errors (readable messages go to ``state.error``).
    """

    def __init__(
        self,
        dataset: str = "fish",
        *,
        n_images: int | None = None,
        image: int = 0,
        n_bg: int | None = None,
        radius: int | None = None,
        splits: int = 2,
        epochs: int = 20,
        seed: int = 0,
        dense: bool = False,
        dense_spacing: int | None = None,
        device: str = "auto",
        sync: bool = False,
        model_chunk: int = MODEL_CHUNK,
        projections: bool = True,
        feature_images: int = 4,
        superpixels: int = 100,
        flim: FlimSettings | dict[str, Any] | None = None,
        arch: str | Path | None = None,
        repeats: int = 1,
        advice_probe: int = 96,
        decoders: Sequence[str] = ("trained",),
    ) -> None:
        self.sync, self.model_chunk = sync, int(model_chunk)
        self.advice_probe = int(advice_probe)
        self.projections = projections
        # superpixels None: the dataset's documented count (fish 10, eggs 25, fundus 30, others 20)
        self._detail_kw = dict(max_images=int(feature_images), n_superpixels=int(superpixels) if superpixels else None)
        self._device = str(resolve_device(device))
        self._datasets: dict[tuple[str, int | None], Dataset] = {}
        self._warnings: dict[tuple[str, int | None], list[str]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._folders = _Folders()
        self._typed: set[str] = set()  # settings the user changed (a new dataset does not overwrite them)
        self._suggesting = False
        self._advice_key: tuple[str, tuple[int, int]] | None = None
        self._quiet = False
        self._projecting = threading.Lock()
        self._loop_view: tuple[StudyResult, MarkedView] | None = None
        self.log = w.Output()
        s = self.state = ExplorerState(
            device=self._device, dataset=str(dataset), n_images=int(n_images or 0), image=int(image),
            splits=int(splits), epochs=int(epochs), seed=int(seed), dense=bool(dense),
            dense_spacing=int(dense_spacing or 0), repeats=int(repeats), decoders=tuple(decoders),
        )
        self.controls = ControlsView(s, self._guard(self.run), self._guard(self.stop), self.log,
                                     self._guard(self.load_arch), self._guard(self.reset_flim))
        log = self.log.append_stderr
        markers = self._guard_at("markers")
        self.heatmap = HeatmapView(s, markers(self.save_seeds), markers(self.load_seeds), markers(self.clear_markers),
                                   log, markers(self.inspect_pair), markers(self.try_advice), markers(self.add_stroke),
                                   markers(self.accept_next))
        self.next = NextMarkerView(s, markers(self.advise_next), markers(self.accept_next))
        self.distribution = DistributionView(s, log)
        self.analysis = AnalysisView(s, DESCRIPTORS, log)
        self.detail = DetailView(s)
        self.banner = w.HTML().add_class("fx-banner")
        self.widget = w.VBox([
            self.banner,
            w.HBox([self.controls.widget, w.VBox([self.heatmap.widget, self.next.widget]),
                    w.VBox([self.distribution.widget, self.analysis.widget])],
                   layout=w.Layout(flex_flow="row wrap", align_items="flex-start", width="100%")),
            self.detail.widget,
        ], layout=w.Layout(width="100%")).add_class("fx-explorer")
        s.observe(self._guard(lambda c: self._load_preview(c["name"] == "dataset", c["name"] == "dataset")),
                  names=["dataset", "n_images", "image", "seed", "object_label"])
        s.observe(self._on_typed, names=["n_bg", "radius"])
        s.observe(self._guard(self._on_result), names=["result"])
        s.observe(self._guard(self._check_stale), names=[*SETTINGS, "result"])
        s.observe(self._show_banner, names=["stale", "result"])
        s.observe(self._guard_at("detail")(self._on_selected), names=["selected", "val_image", "decoder"])
        s.observe(self._guard(self._on_split), names=["split"])
        s.observe(markers(self._after_run), names=["running"])
        s.observe(markers(self._update_advice), names=["show_advice", "split", "result", "advice_for"])
        s.observe(self._guard(self._update_descriptors), names=["result", "running"])
        s.observe(markers(self._on_placed), names=["user_obj", "user_bg"])
        if flim is not None:
            s.set_flim((flim if isinstance(flim, FlimSettings) else FlimSettings(**flim)).validate())
        if arch is not None:
            self.load_arch(arch)
        self._guard(self._load_preview)(n_bg is None, radius is None)
        if n_bg is not None:
            s.n_bg = int(n_bg)
        if radius is not None:
            s.radius = int(radius)
        self._typed.clear()

    @contextmanager
    def _silenced(self) -> Iterator[None]:
        """Change your markers without scoring them on every single change."""
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

    def _guard(self, func: Any) -> Any:
        return guarded(self.state, self.log.append_stderr)(func)

    def _guard_at(self, where: str) -> Any:
        """A decorator that shows errors next to ``where`` (``markers`` or ``detail``)."""
        return guarded(self.state, self.log.append_stderr, where)

    def _on_typed(self, change: dict[str, Any]) -> None:
        if not self._suggesting:
            self._typed.add(change["name"])

    def _check_stale(self, change: dict[str, Any]) -> None:
        """Mark the views out of date while the settings differ from those of the shown result."""
        s = self.state
        if s.result is None:
            s.stale = False
            return
        try:
            cfg = s.config()
        except Exception:  # noqa: BLE001 - settings that do not even build a config differ from the result's
            s.stale = True
            return
        s.stale = not same_study(cfg, s.result.config)

    def _show_banner(self, change: dict[str, Any]) -> None:
        s = self.state
        if not s.stale or s.result is None:
            self.banner.value = ""
            return
        res = s.result
        self.banner.value = (
            '<div class="fx-stale" style="background:#fff3cd;border:1px solid #d39e00;padding:4px 8px;'
            'white-space:normal"><b>settings changed — press Run.</b> The heatmap, distribution and detail '
            f"still show the previous study ({html.escape(res.config.dataset)}, marked image "
            f"{res.config.image + 1}: {html.escape(res.context.stem)}); the thumbnail shows the new settings.</div>"
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        for fig in (self.heatmap.figure, self.distribution.figure, self.analysis.figure, self.detail.figure, self.next.figure):
            resend_state(fig)
        return self.widget._repr_mimebundle_(**kwargs)

    def _on_result(self, change: dict[str, Any]) -> None:
        """A new study: nothing selected, first object marker; your markers are kept and scored anew.

        More models of the same study (live chunks, a resumed run) keep the selection and the object marker.
        """
        s, old, new = self.state, change["old"], change["new"]
        s.uncertainty = new.repeat_summary() if new is not None and new.complete and new.config.repeats > 1 else None
        if new is None or not new.readouts or s.decoder not in new.config.decoders:
            s.decoder = "trained"
        if old is not None and new is not None and same_study(old.config, new.config):
            if s.selected >= 0 and s.row(s.selected) is None:
                s.selected = -1
            self._on_split({"new": s.split})
            return
        with self._silenced():
            s.user_score = s.detail = s.next_marker = None
            s.selected, s.val_image = -1, 0
            s.loop_history, s.next_text = (), ""
        if s.split == 0:
            self._on_split({"new": 0})
        else:
            s.split = 0

    def _after_run(self, change: dict[str, Any]) -> None:
        """Score your markers against the finished (or stopped) study."""
        s = self.state
        if not change["new"] and s.result is not None and self._has_user_markers():
            self._score_user()

    def _on_split(self, change: dict[str, Any]) -> None:
        res = self.state.result
        dense = res is not None and res.config.dense and len(res.rows) > 0
        self.state.dense_map = res.heatmap(min(change["new"], len(res.markers) - 1)).value if dense else None
        if self._has_user_markers() and not self.state.running:
            self._score_user()

    def _describe(self, result: StudyResult, model: int, **kw: Any) -> Any:
        """The detail of a sampled model, or of your pair (``USER_MODEL``)."""
        if model == USER_MODEL:
            if self.state.user_score is None:
                raise MarkerError("your pair has no score yet: place a background marker (or select one) first")
            return pair_detail(result, self.state.user_score, **kw)
        return model_detail(result, model, decoder=self.state.decoder, **kw)

    def _on_selected(self, change: dict[str, Any]) -> None:
        s = self.state
        if s.result is None or (s.selected < 0 and s.selected != USER_MODEL):
            s.detail = None
            return
        if s.detail is not None and s.detail.model == s.selected and s.detail.val_image == s.val_image \
                and s.detail.readout == s.decoder and change["name"] == "selected" and s.selected != USER_MODEL:
            return  # the same model of the same study (e.g. a live chunk arrived)
        kw = dict(val_image=s.val_image, **self._detail_kw)
        s.detail = self._describe(s.result, s.selected, projections=False, **kw)
        if not self.projections:
            return
        if self.sync:
            s.detail = self._describe(s.result, s.selected, **kw)
            return
        threading.Thread(target=self._guard_at("detail")(self._project), args=(s.result, s.selected, kw),
                         daemon=True).start()

    def inspect_pair(self) -> None:
        """Show your scored marker pair in the detail view, like a sampled model."""
        if self.state.user_score is None:
            raise MarkerError("your pair has no score yet: place a background marker (or select one) first")
        if self.state.selected == USER_MODEL:
            self._on_selected({"name": "val_image"})
        else:
            self.state.selected = USER_MODEL

    def _project(self, result: StudyResult, model: int, kw: dict[str, Any]) -> None:
        """Compute the t-SNE projections in the background; drop them if the selection moved on."""
        with self._projecting:
            if self.state.selected != model:
                return
            detail = self._describe(result, model, **kw)
            if self.state.selected == model and self.state.val_image == kw["val_image"] \
                    and (model == USER_MODEL or detail.readout == self.state.decoder):
                self.state.detail = detail

def explore(dataset: str = "fish", *, run: bool = False, **kwargs: Any) -> Explorer:
    """Build an :class:`Explorer` (and start a study with ``run=True``); display the returned object.

    Examples
    --------
    >>> app = explore("fish", n_images=16, splits=1, n_bg=4, epochs=5, sync=True)  # doctest: +SKIP
    >>> app.run(); app.state.result.summary()["n_models"]                           # doctest: +SKIP
    4
    """
    app = Explorer(dataset, **kwargs)
    if run:
        app.run()
    return app
