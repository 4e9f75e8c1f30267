"""The explorer: state + views wired together; the only place where UI events trigger compute.

:class:`Explorer` owns one :class:`~flimexplore.widgets.state.ExplorerState`
and the views that show it.  It observes the state and turns user intent
into work: loading a dataset preview, running a study (in a background
thread, or in the calling thread with ``sync=True``), computing the detail
of the selected model, scoring your own marker pair, saving and loading
markers.  Every callback is guarded: an error becomes a readable message
in the control panel instead of vanishing in the kernel's log.
"""

from __future__ import annotations

import html
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ipywidgets as w
import numpy as np

from flimexplore.analysis.advice import AdviceSettings, advise
from flimexplore.analysis.descriptors import DESCRIPTORS, position_descriptors
from flimexplore.data import Dataset, load_dataset, read_seeds, split_dataset, write_seeds
from flimexplore.data.seeds import check_seeds_shape
from flimexplore.engine.arch import read_arch
from flimexplore.engine.batched import resolve_device
from flimexplore.engine.settings import FlimSettings
from flimexplore.errors import ConfigError, DatasetError, FlimExploreWarning, MarkerError
from flimexplore.loop.drawn import Marker, count_markers
from flimexplore.loop.fit import FitSettings
from flimexplore.loop.user import add_marker, suggest_next
from flimexplore.loop.view import MarkedView
from flimexplore.markers import marker_pixels, stroke_pixels
from flimexplore.study.config import StudyConfig
from flimexplore.study.context import StudyContext
from flimexplore.study.run import MODEL_CHUNK, StopStudy, StudyResult, model_seed, plan_markers, run_study
from flimexplore.study.store import read_results
from flimexplore.widgets._live import resend_state
from flimexplore.widgets.analysis import AnalysisView
from flimexplore.widgets.controls import ControlsView
from flimexplore.widgets.detail import DetailView, DistributionView
from flimexplore.widgets.heatmap import DRAWING, HeatmapView
from flimexplore.widgets.inspect import (
    USER_BG_INDEX,
    model_detail,
    pair_detail,
    pair_from_markers,
    pair_markers,
    score_markers,
    score_pair,
)
from flimexplore.widgets.next_marker import NextMarkerView
from flimexplore.widgets.state import SETTINGS, USER_MODEL, ExplorerState, guarded

__all__ = ["Explorer", "explore"]

Pair = tuple[int, int]


def _png(image: np.ndarray, side: int = 96) -> bytes:
    import imageio.v3 as iio

    step = max(1, int(np.ceil(max(image.shape[:2]) / side)))
    small = np.clip(np.rint(np.asarray(image)[::step, ::step, :3] * 255), 0, 255).astype(np.uint8)
    return iio.imwrite("<bytes>", small, extension=".png")


def same_study(a: StudyConfig, b: StudyConfig) -> bool:
    """Whether two settings describe the same study (the explorer's settings against a result's)."""
    return a.to_dict() == b.to_dict()


def eta_text(done: int, total: int, resumed: int, elapsed_s: float) -> str:
    """Progress label "n / N models, ~t s left" (the rate counts only models trained in this run).

    Examples
    --------
    >>> eta_text(10, 40, 0, 5.0)
    '10 / 40 models, ~15 s left'
    >>> eta_text(4, 40, 4, 0.1)
    '4 / 40 models, estimating time left'
    """
    trained = done - resumed
    if done >= total:
        return f"{done} / {total} models"
    if trained <= 0 or elapsed_s <= 0:
        return f"{done} / {total} models, estimating time left"
    return f"{done} / {total} models, ~{(total - done) * elapsed_s / trained:.0f} s left"


class _Folders:
    """One temporary results folder per study settings: Stop then Run resumes from it (as the CLI's --out)."""

    def __init__(self) -> None:
        self._root = tempfile.TemporaryDirectory(prefix="flimexplore-explorer-")
        self._folders: dict[str, Path] = {}

    def __call__(self, cfg: StudyConfig) -> Path:
        key = cfg.to_json()
        if key not in self._folders:
            self._folders[key] = Path(tempfile.mkdtemp(prefix="study-", dir=self._root.name))
        return self._folders[key]


def _partial(ctx: StudyContext, markers: list, folder: Path, cache: dict[str, dict], elapsed_s: float) -> StudyResult:
    """The models finished so far in ``folder`` as a (not complete) :class:`StudyResult`."""
    rows = read_results(folder / "results.csv") if (folder / "results.csv").exists() else []
    joined = rows if rows and "decoder" in rows[0] else []  # with other readouts: one row per model and readout
    rows = [r for r in rows if r.get("decoder", "trained") == "trained"]
    for f in sorted((folder / "models").glob("*.npz")):
        if f.name not in cache:
            with np.load(f) as z:
                cache[f.name] = {int(m): {k: z[k][j] for k in z.files if k != "model"} for j, m in enumerate(z["model"])}
    arrays = {m: a for part in cache.values() for m, a in part.items()}
    rows = [r for r in rows if r["model"] in arrays]
    return StudyResult(ctx.config, markers, rows, arrays, str(ctx.device), elapsed_s, False, ctx,
                       readouts=[r for r in joined if r["model"] in arrays])


class Explorer:
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

    # -- data ---------------------------------------------------------------------------------
    def _dataset(self, name: str, n_images: int | None, object_label: tuple[int, ...] | None = None) -> Dataset:
        """The dataset of some settings (cached), its warnings (guessed mask conventions) kept beside it."""
        key = (name, n_images, object_label)
        if key not in self._datasets:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", FlimExploreWarning)
                self._datasets[key] = load_dataset(name, n_images=n_images, object_label=object_label)
            self._warnings[key] = [str(c.message) for c in caught if issubclass(c.category, FlimExploreWarning)]
            for c in caught:  # other warnings go on as usual
                if not issubclass(c.category, FlimExploreWarning):
                    warnings.warn_explicit(c.message, c.category, c.filename, c.lineno)
        return self._datasets[key]

    def _load_preview(self, suggest_n_bg: bool, suggest_radius: bool) -> None:
        """Load the marked image of the current settings; optionally take the dataset's n_bg and radius."""
        s = self.state
        cfg = s.config()
        s.warning = ""
        ds = self._dataset(cfg.dataset, cfg.n_images, cfg.object_label)
        s.warning = "\n".join(self._warnings.get((cfg.dataset, cfg.n_images, cfg.object_label), []))
        marked = split_dataset(len(ds), seed=cfg.seed).marked
        self.controls.set_images(len(marked))
        if not 0 <= cfg.image < len(marked):
            s.image = 0  # loads image 1 (re-entrant); the message says so
            raise DatasetError(f"marked image {cfg.image + 1} does not exist: this dataset's split has "
                               f"{len(marked)} marked images (1-{len(marked)}); image 1 is shown instead")
        s.preview = ds.images[marked[cfg.image]]
        s.thumbnail = _png(s.preview)
        self._suggesting = True
        try:
            if suggest_n_bg and "n_bg" not in self._typed:
                s.n_bg = ds.n_bg
            if suggest_radius and "radius" not in self._typed:
                s.radius = ds.radius
        finally:
            self._suggesting = False
        s.error = ""
        s.status = f"{ds.name}: {len(ds)} images ({ds.description})"

    def load_arch(self, path: str | Path | None = None) -> FlimSettings:
        """Show the FLIM settings of a LIDS ``arch.json`` in the advanced panel (default: ``state.arch_path``).

        Raises
        ------
        ConfigError
            The file cannot be read, is not JSON, or asks for what the engine cannot honour.
        """
        s = self.state
        if path is not None:
            s.arch_path = str(path)
        if not s.arch_path.strip():
            raise ConfigError("type the path of an arch.json first (the field above 'load arch.json')")
        settings = read_arch(s.arch_path.strip())
        s.set_flim(settings)
        s.status = f"FLIM settings from {s.arch_path.strip()}: {settings.summary()}"
        return settings

    def reset_flim(self) -> None:
        """Put the paper's FLIM settings back in the advanced panel."""
        self.state.set_flim(FlimSettings())
        self.state.status = f"FLIM settings: {FlimSettings().summary()}"

    # -- running ------------------------------------------------------------------------------
    def run(self, wait: bool | None = None) -> None:
        """Start a study with the current settings (in the background unless ``sync`` or ``wait``)."""
        if self.state.running:
            return
        cfg = self.state.config().validate()
        self._stop.clear()
        self.state.error = ""
        self.state.running = True
        if wait or (wait is None and self.sync):
            self._work(cfg)
        else:
            self._thread = threading.Thread(target=self._work, args=(cfg,), name="flimexplore-study", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the running study after its current chunk; finished models are kept."""
        if self.state.running:
            self._stop.set()
            self.state.status = "stopping after the current chunk..."

    def wait(self, timeout: float | None = None) -> StudyResult | None:
        """Wait for a background study to finish; return the current result."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.state.result

    def _work(self, cfg: StudyConfig) -> None:
        """Run the study into its settings' folder, publishing finished chunks as they arrive."""
        s = self.state
        try:
            ctx = StudyContext(cfg, self._device, dataset=self._dataset(cfg.dataset, cfg.n_images, cfg.object_label))
            folder = self._folders(ctx.config)
            markers, cache = plan_markers(ctx), {}
            gen = run_study(ctx.config, folder, context=ctx, model_chunk=self.model_chunk)
            started = False  # StopStudy can only be thrown into a generator that has started
            t0, resumed, shown = time.perf_counter(), None, -1
            while True:
                try:
                    progress = gen.throw(StopStudy()) if started and self._stop.is_set() else next(gen)
                except StopIteration as stop:
                    result: StudyResult = stop.value
                    break
                if not started:
                    t0, resumed = time.perf_counter(), progress.done
                started = True
                elapsed = time.perf_counter() - t0
                s.total, s.done, s.status = progress.total, progress.done, progress.message
                s.progress_text = eta_text(progress.done, progress.total, resumed or 0, elapsed)
                if progress.done != shown and progress.done < progress.total:  # live: the chunks finished so far
                    shown = progress.done
                    s.result = _partial(ctx, markers, folder, cache, elapsed)
            s.result = result
            s.progress_text = eta_text(len(result.rows), s.total, 0, 0.0)
            how = "complete" if result.complete else "stopped; finished models kept, Run resumes"
            trained = len(result.rows) - (resumed or 0)
            empty = ctx.without_object("val")
            s.status = (f"{len(result.rows)} models ({trained} trained now, {resumed or 0} kept) in "
                        f"{result.elapsed_s:.1f} s on {result.device} ({how})"
                        + (f"; {empty} of {len(ctx.split.val)} validation images hold no object (scored by the "
                           "empty-image convention)" if empty else ""))
        except Exception as exc:  # noqa: BLE001 - shown in the panel
            s.report(exc, self.log.append_stderr)
        finally:
            s.running = False

    # -- reactions ----------------------------------------------------------------------------
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

    # -- advice and analysis (image-only: they read the marked image and its own mask, never val/test) ------
    def _update_advice(self, change: dict[str, Any]) -> None:
        """Advise the shown object marker's background (or the chosen background marker's object), when the layer is on.

        The advice probes its candidates (each fitted with several seeds and scored on the split's other
        marked images: training images only) and says how far it can be trusted; it runs in a background
        thread unless the explorer is synchronous.
        """
        s = self.state
        if not s.show_advice or s.result is None:
            return
        res = s.result
        cfg = res.config
        split = min(s.split, len(res.markers) - 1)
        if s.advice_for == "object":
            fixed = self._advice_background(split)
            where = dict(target="object", split=None, background=fixed)
        else:
            fixed = tuple(int(v) for v in res.markers[split].obj)
            where = dict(split=None, obj=fixed)
        key = (cfg.to_json(), s.advice_for, fixed)
        if s.advice is not None and self._advice_key == key:
            return
        self._advice_key = key
        s.advice = None
        s.status = f"ranking {s.advice_for} positions (advice: probing candidates on the training images)..."
        settings = AdviceSettings(dataset=cfg.dataset, image=cfg.image, radius=cfg.radius, top=s.advice_top, seed=cfg.seed,
                                  n_images=cfg.n_images, epochs=cfg.epochs, lr=cfg.lr, device=str(res.device),
                                  probe=self.advice_probe, **where)

        def work() -> None:
            advice = advise(settings, data=res.context.dataset)
            if self._advice_key != key:  # the settings moved on while this ran
                return
            s.advice = advice
            line = advice.reliability["line"] if advice.reliability else ""
            s.status = (f"advice: {len(advice.centres)} positions ranked in {advice.seconds:.1f} s from training images "
                        f"only; " + (line if advice.abstains else "click a ringed position to train and score it"))

        if self.sync:
            work()
        else:
            threading.Thread(target=self._guard_at("markers")(work), name="flimexplore-advice", daemon=True).start()

    def _advice_background(self, split: int) -> tuple[int, int]:
        """The background marker object advice is for: the selected marker's, yours, or the split's first."""
        s = self.state
        row = s.row(s.selected) if s.selected >= 0 else None
        if row is not None and row["split"] == split:
            return int(row["bg_row"]), int(row["bg_col"])
        if s.user_bg is not None:
            return int(s.user_bg[0]), int(s.user_bg[1])
        first = s.rows(split)
        if not first:
            raise MarkerError("object advice needs a background marker: select one on the heatmap, or place yours")
        return int(first[0]["bg_row"]), int(first[0]["bg_col"])

    def try_advice(self, k: int) -> None:
        """Train and score the ``k``-th advised position (0 = best) with the advice's fixed marker; rank it."""
        s = self.state
        if s.advice is None or not 0 <= k < len(s.advice.centres):
            raise MarkerError(f"there is no advised position {k + 1}")
        pos = tuple(int(v) for v in s.advice.centres[k])
        fixed = tuple(int(v) for v in s.advice.obj)
        with self._silenced():  # the advice is for its fixed marker: your own markers step aside
            s.user_markers = None
            if s.advice.settings.target == "object":
                s.user_bg = fixed
            else:
                s.user_obj = None
        if s.advice.settings.target == "object":
            s.user_obj = pos  # scores the pair through the single-model path
        else:
            s.user_bg = pos
        if s.user_score is not None:
            sc = s.user_score
            s.status = (f"advice #{k + 1} at {pos}: validation Dice {sc.dice:.3f}, rank {sc.rank} of {sc.n + 1} "
                        f"among the sampled markers ({sc.percentile:.0f}th percentile)")

    def _update_descriptors(self, change: dict[str, Any]) -> None:
        """Descriptors of every finished model, for the analysis panel (after a run, not on live chunks)."""
        s = self.state
        res = s.result
        if res is None or s.running:
            return
        if s.descriptors is not None and s.descriptors.get("_result") is res:
            return
        ctx = res.context
        rows = res.rows  # the markers are the same under every readout; the trained rows list each once
        table = {name: np.full(len(rows), np.nan) for name in DESCRIPTORS}
        for split, ms in enumerate(res.markers):
            pos = [i for i, r in enumerate(rows) if r["split"] == split]
            if not pos:
                continue
            centres = np.array([[rows[i]["bg_row"], rows[i]["bg_col"]] for i in pos], dtype=np.int64)
            values = position_descriptors(ctx.image, ctx.mask, ms.obj, centres, res.config.radius)
            for name in DESCRIPTORS:
                table[name][pos] = values[name]
        s.descriptors = table | {"_result": res}

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

    def _pair(self) -> tuple[Pair | None, Pair | None]:
        """Your markers, completed by the shown object marker and the selected background marker."""
        s, res = self.state, self.state.result
        obj, bg = s.user_obj, s.user_bg
        if res is not None and obj is None:
            obj = tuple(int(v) for v in res.markers[min(s.split, len(res.markers) - 1)].obj)
        row = s.row(s.selected)
        if bg is None and row is not None:
            bg = (row["bg_row"], row["bg_col"])
        return obj, bg

    def _radius(self) -> int:
        """Radius of your disk markers: the shown study's (as scoring uses), else the setting."""
        s = self.state
        return int(s.result.config.radius) if s.result is not None else int(s.radius)

    def _has_user_markers(self) -> bool:
        s = self.state
        return s.user_obj is not None or s.user_bg is not None or s.user_markers is not None

    def _on_placed(self, change: dict[str, Any]) -> None:
        """You placed a disk marker: with whole markers (strokes, scribbles) it replaces that class's pixels."""
        s = self.state
        if self._quiet:
            return
        if s.user_markers is not None:
            label = 1 if change["name"] == "user_obj" else 0
            keep = s.user_markers[s.user_markers[:, 2] != label]
            parts = [keep]
            if change["new"] is not None:
                disk = marker_pixels(np.asarray(change["new"]), self._radius(), self._shape())
                parts.append(np.column_stack([disk, np.full(len(disk), label)]))
            with self._silenced():
                s.user_markers = np.concatenate(parts).astype(np.int64) if sum(map(len, parts)) else None
        self._score_user()

    def _score_user(self) -> None:
        """Score your markers: a disk pair, or whole markers (strokes, scribbles) trained pixel by pixel."""
        s = self.state
        if self._quiet:
            return
        s.user_score = None
        s.next_marker, s.next_text = None, ""  # your markers changed: an earlier suggestion is out of date
        if s.selected == USER_MODEL:
            s.selected = -1
        if s.user_markers is not None:
            self._score_whole()
            return
        obj, bg = self._pair()
        if s.result is None or obj is None or bg is None:
            s.status = "run a study, then place a background marker (or select one) to score your pair"
            return
        s.status = "training your marker pair..."
        s.user_score = score_pair(s.result, obj, bg, s.split)
        self._record(pair_markers(obj, bg, self._radius(), self._shape()))
        if s.selected == USER_MODEL:
            self._on_selected({"name": "val_image"})
        s.error = ""
        s.status = f"your pair: Dice {s.user_score.dice:.3f}, rank {s.user_score.rank} of {s.user_score.n + 1}"

    def _whole_markers(self) -> np.ndarray | None:
        """Your whole markers, a missing class completed as for a pair (shown object marker, selected background)."""
        s = self.state
        if s.user_markers is None:
            return None
        m = s.user_markers
        obj, bg = self._pair() if s.result is not None else (None, None)
        parts = [m]
        if not (m[:, 2] == 1).any():
            if obj is None:
                return None
            parts.append(pair_markers(obj, None, self._radius(), self._shape()))
        if not (m[:, 2] == 0).any():
            if bg is None:
                return None
            parts.append(pair_markers(None, bg, self._radius(), self._shape()))
        return np.concatenate(parts).astype(np.int64)

    def _score_whole(self) -> None:
        s = self.state
        markers = self._whole_markers()
        if s.result is None or markers is None:
            s.status = ("your strokes are kept; " + ("run a study to score them" if s.result is None else
                        "draw (or place) the missing class, or select a background marker, to score them"))
            return
        s.status = "training your markers..."
        s.user_score = score_markers(s.result, markers, s.split)
        self._record(markers)
        if s.selected == USER_MODEL:
            self._on_selected({"name": "val_image"})
        mask = s.result.context.mask
        obj, bg = markers[markers[:, 2] == 1], markers[markers[:, 2] == 0]
        wrong = int((~mask[obj[:, 0], obj[:, 1]]).sum()) + int(mask[bg[:, 0], bg[:, 1]].sum())
        s.error = ""
        s.status = (f"your markers ({len(obj)} object and {len(bg)} background pixels, scored whole): "
                    f"Dice {s.user_score.dice:.3f}, rank {s.user_score.rank} of {s.user_score.n + 1}"
                    + (f"; note: {wrong} of their pixels lie on the other class of the marked image's mask" if wrong
                       else ""))

    def add_stroke(self, points: Any, kind: str | None = None, radius: int | None = None) -> None:
        """Add a freehand stroke to your markers and score them whole.

        Parameters
        ----------
        points : array_like of shape (K, 2)
            ``(row, col)`` of the stroke in image coordinates, in drawing order (the heatmap sends
            what you drag in a draw mode).
        kind : {"object", "background"}, optional
            Default: the draw mode's class.
        radius : int, optional
            Brush radius (default ``state.stroke_radius``).

        Your earlier disks and strokes are kept (a pixel takes the class of its latest stroke); a class
        with no stroke yet is completed by the shown object marker or the selected background marker.
        """
        s = self.state
        kind = kind or DRAWING.get(s.click_mode)
        if kind not in ("object", "background"):
            raise MarkerError(f"a stroke marks 'object' or 'background', got {kind!r}")
        shape = self._shape()
        pixels, outside = stroke_pixels(points, s.stroke_radius if radius is None else int(radius), shape)
        label = 1 if kind == "object" else 0
        if s.user_markers is not None:
            base = s.user_markers
        elif s.user_obj is not None or s.user_bg is not None:
            base = pair_markers(s.user_obj, s.user_bg, self._radius(), shape)
        else:
            base = np.zeros((0, 3), np.int64)
        taken = np.zeros(shape, bool)
        taken[pixels[:, 0], pixels[:, 1]] = True
        base = base[~taken[base[:, 0], base[:, 1]]]
        merged = np.concatenate([base, np.column_stack([pixels, np.full(len(pixels), label)])]).astype(np.int64)
        obj, bg = pair_from_markers(merged, self._radius(), shape)
        with self._silenced():
            s.user_markers = merged
            s.user_obj, s.user_bg = obj, bg
        self._score_user()
        if outside:
            s.status += f" ({outside} stroke points off the image were dropped)"

    # -- your markers -------------------------------------------------------------------------
    def _shape(self) -> tuple[int, int]:
        image = self.state.result.context.image if self.state.result is not None else self.state.preview
        if image is None:
            raise MarkerError("no marked image is loaded")
        return int(image.shape[0]), int(image.shape[1])

    def _path(self, path: str | Path | None) -> Path:
        s = self.state
        if path is None and s.seeds_path.strip():
            path = s.seeds_path.strip()
        if path is None:
            stem = s.result.context.stem if s.result is not None else "markers"
            path = f"{stem}-seeds.txt"
        return Path(path).expanduser()

    def save_seeds(self, path: str | Path | None = None) -> Path:
        """Save your markers (completed as for scoring) in a LIDS ``-seeds.txt`` file: disks, or every stroke pixel."""
        target = self._path(path)
        whole = self._whole_markers()
        if whole is None and self.state.user_markers is not None:
            whole = self.state.user_markers
        if whole is None:
            obj, bg = self._pair()
            whole = pair_markers(obj, bg, self._radius(), self._shape())
        write_seeds(target, whole, self._shape())
        self.state.seeds_path = str(target)
        self.state.status = f"saved markers to {target}"
        return target

    def load_seeds(self, path: str | Path | None = None) -> None:
        """Load your markers from a LIDS ``-seeds.txt`` file and score them.

        One disk per label is shown and scored as a marker pair; other markers
        (scribbles, several strokes) are scored whole and drawn pixel by pixel
        on the heatmap; you can add freehand strokes to them.
        """
        target = self._path(path)
        markers, shape = read_seeds(target, image_shape=self._shape())
        s = self.state
        if s.result is not None:
            check_seeds_shape(target, markers, shape, s.result.context.mask)
        obj, bg = pair_from_markers(markers, self._radius(), shape)
        whole = not _same_rows(markers, pair_markers(obj, bg, self._radius(), shape))
        with self._silenced():
            s.user_obj, s.user_bg = obj, bg
            s.user_markers = np.asarray(markers, np.int64) if whole else None
        s.seeds_path = str(target)
        self._score_user()

    def clear_markers(self) -> None:
        """Remove your markers, their score, the suggested next marker and the Dice-against-markers plot."""
        with self._silenced():
            self.state.user_obj = self.state.user_bg = self.state.user_score = self.state.user_markers = None
            self.state.next_marker, self.state.next_text, self.state.loop_history = None, "", ()
            if self.state.selected == USER_MODEL:
                self.state.selected = -1
        self.state.status = "your markers cleared"

    # -- the annotation loop: where your next marker should go (the marked image and its own mask only) ------
    def _record(self, markers: np.ndarray) -> None:
        """Add ``(markers drawn, validation Dice)`` of the scoring that just finished to the loop plot."""
        s = self.state
        if s.user_score is not None:
            s.loop_history = (*s.loop_history, (count_markers(markers, self._shape()), float(s.user_score.dice)))

    def _current_rows(self) -> np.ndarray:
        """Your markers as seeds rows, completed as for scoring (a pair's disks, or whole strokes)."""
        s = self.state
        if s.result is None:
            raise MarkerError("run a study first: the next marker is advised on its marked image")
        whole = self._whole_markers()
        if whole is not None:
            return whole
        obj, bg = self._pair()
        if obj is None or bg is None:
            raise MarkerError("place or draw your markers (or select a background marker) first: the next marker "
                              "is advised from the markers drawn so far")
        return pair_markers(obj, bg, self._radius(), self._shape())

    def _marked_view(self) -> MarkedView:
        """The shown study's marked images and their masks (all a policy may read), built once per study."""
        res = self.state.result
        if self._loop_view is None or self._loop_view[0] is not res:
            self._loop_view = (res, MarkedView.from_split(res.context.dataset, res.context.split, str(res.device)))
        return self._loop_view[1]

    def advise_next(self, policy: str | None = None) -> Marker:
        """Suggest where your next marker should go (``state.next_marker``), given the markers drawn so far.

        Parameters
        ----------
        policy : {"advised", "error"}, optional
            Default: ``state.next_policy``.  ``advised`` probes the best candidates of both classes
            (:func:`flimexplore.loop.advised.advise_next`); ``error`` takes the centre of the largest error
            region of your markers' model on the marked image (:func:`flimexplore.loop.clicker.error_click`).
            Both read the marked image and its own mask only, and train your markers' model as scoring does
            (its seed), used at its last epoch (no validation image chose it).
        """
        s = self.state
        if policy is not None:
            s.next_policy = policy
        rows = self._current_rows()
        cfg, radius = s.result.config, self._radius()
        s.status = f"finding your next marker ({s.next_policy})..."
        fit = FitSettings(model_seed(cfg.seed, cfg.image, s.split, USER_BG_INDEX + 1), cfg.flim(), cfg.epochs, cfg.lr)
        found = suggest_next(self._marked_view(), rows, cfg.image, radius, fit, s.next_policy)
        m = found.marker
        what = "an object" if m.label == 1 else "a background"
        s.next_marker = m
        s.next_text = (f"next: {what} marker at (row {m.row}, col {m.col}), {found.why} ({found.seconds:.1f} s; the "
                       f"marked image and its own mask only). Accept adds a disk of radius {radius} and scores your markers.")
        s.error = ""
        s.status = f"next marker ({s.next_policy}): {what} marker at ({m.row}, {m.col}) in {found.seconds:.1f} s"
        return m

    def accept_next(self) -> None:
        """Add the suggested next marker to your markers (a disk of the study's radius) and score them."""
        s = self.state
        m = s.next_marker
        if m is None:
            raise MarkerError("press 'advise next' first: there is no suggested marker to accept")
        shape, radius = self._shape(), self._radius()
        merged = add_marker(self._current_rows(), m, radius, shape)
        obj, bg = pair_from_markers(merged, radius, shape)
        with self._silenced():
            s.user_markers = merged
            s.user_obj, s.user_bg = obj, bg
        self._score_user()
        what = "object" if m.label == 1 else "background"
        s.status = f"accepted the {what} marker at ({m.row}, {m.col}); " + s.status


def _same_rows(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two seeds arrays hold the same rows, in any order."""
    return a.shape == b.shape and np.array_equal(np.unique(a, axis=0), np.unique(b, axis=0))


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
