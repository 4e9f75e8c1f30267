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

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ipywidgets as w
import numpy as np

from flimexplore.data import Dataset, load_dataset, read_seeds, split_dataset, write_seeds
from flimexplore.data.seeds import check_seeds_shape
from flimexplore.engine.batched import resolve_device
from flimexplore.errors import DatasetError, MarkerError
from flimexplore.study.context import StudyContext
from flimexplore.study.run import MODEL_CHUNK, StopStudy, StudyResult, run_study
from flimexplore.widgets._live import refresh_state
from flimexplore.widgets.controls import ControlsView
from flimexplore.widgets.detail import DetailView, DistributionView
from flimexplore.widgets.heatmap import HeatmapView
from flimexplore.widgets.inspect import (
    model_detail,
    pair_from_markers,
    pair_markers,
    score_markers,
    score_pair,
)
from flimexplore.widgets.state import ExplorerState, guarded

__all__ = ["Explorer", "explore"]

Pair = tuple[int, int]


def _png(image: np.ndarray, side: int = 96) -> bytes:
    import imageio.v3 as iio

    step = max(1, int(np.ceil(max(image.shape[:2]) / side)))
    small = np.clip(np.rint(np.asarray(image)[::step, ::step, :3] * 255), 0, 255).astype(np.uint8)
    return iio.imwrite("<bytes>", small, extension=".png")


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
        Validation images and superpixels per image of the feature projection (superpixels None:
        the dataset's documented count).

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
        feature_images: int = 3,
        superpixels: int | None = None,
    ) -> None:
        self.sync, self.model_chunk = sync, int(model_chunk)
        self.projections = projections
        # superpixels None: the dataset's documented count (fish 10, eggs 25, fundus 30, others 20)
        self._detail_kw = dict(max_images=int(feature_images), n_superpixels=int(superpixels) if superpixels else None)
        self._device = str(resolve_device(device))
        self._datasets: dict[tuple[str, int | None], Dataset] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._quiet = False
        self._projecting = threading.Lock()
        self.log = w.Output()
        s = self.state = ExplorerState(
            device=self._device, dataset=str(dataset), n_images=int(n_images or 0), image=int(image),
            splits=int(splits), epochs=int(epochs), seed=int(seed), dense=bool(dense),
            dense_spacing=int(dense_spacing or 0),
        )
        self.controls = ControlsView(s, self._guard(self.run), self._guard(self.stop), self.log)
        log = self.log.append_stderr
        self.heatmap = HeatmapView(s, self._guard(self.save_seeds), self._guard(self.load_seeds),
                                   self._guard(self.clear_markers), log)
        self.distribution = DistributionView(s, log)
        self.detail = DetailView(s)
        self.widget = w.VBox([
            w.HBox([self.controls.widget, self.heatmap.widget, self.distribution.widget]), self.detail.widget,
        ]).add_class("fx-explorer")
        s.observe(self._guard(lambda c: self._load_preview(c["name"] == "dataset", c["name"] == "dataset")),
                  names=["dataset", "n_images", "image", "seed", "object_label"])
        s.observe(self._guard(self._on_result), names=["result"])
        s.observe(self._guard(self._on_selected), names=["selected", "val_image"])
        s.observe(self._guard(self._on_split), names=["split"])
        s.observe(self._guard(lambda _: self._score_user()), names=["user_obj", "user_bg"])
        self._guard(self._load_preview)(n_bg is None, radius is None)
        if n_bg is not None:
            s.n_bg = int(n_bg)
        if radius is not None:
            s.radius = int(radius)

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

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        for fig in (self.heatmap.figure, self.distribution.figure, self.detail.figure):
            refresh_state(fig)
        return self.widget._repr_mimebundle_(**kwargs)

    # -- data ---------------------------------------------------------------------------------
    def _dataset(self, name: str, n_images: int | None, object_label: tuple[int, ...] | None = None) -> Dataset:
        key = (name, n_images, object_label)
        if key not in self._datasets:
            self._datasets[key] = load_dataset(name, n_images=n_images, object_label=object_label)
        return self._datasets[key]

    def _load_preview(self, suggest_n_bg: bool, suggest_radius: bool) -> None:
        """Load the marked image of the current settings; optionally take the dataset's n_bg and radius."""
        s = self.state
        cfg = s.config()
        ds = self._dataset(cfg.dataset, cfg.n_images, cfg.object_label)
        marked = split_dataset(len(ds), seed=cfg.seed).marked
        if not 0 <= cfg.image < len(marked):
            raise DatasetError(f"marked image {cfg.image + 1} does not exist; the split has {len(marked)}")
        s.preview = ds.images[marked[cfg.image]]
        s.thumbnail = _png(s.preview)
        if suggest_n_bg:
            s.n_bg = ds.n_bg
        if suggest_radius:
            s.radius = ds.radius
        s.error = ""
        s.status = f"{ds.name}: {len(ds)} images ({ds.description})"

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

    def _work(self, cfg: Any) -> None:
        s = self.state
        try:
            ctx = StudyContext(cfg, self._device, dataset=self._dataset(cfg.dataset, cfg.n_images, cfg.object_label))
            gen = run_study(ctx.config, context=ctx, model_chunk=self.model_chunk)
            started = False  # StopStudy can only be thrown into a generator that has started
            while True:
                try:
                    progress = gen.throw(StopStudy()) if started and self._stop.is_set() else next(gen)
                except StopIteration as stop:
                    result: StudyResult = stop.value
                    break
                started = True
                s.total, s.done, s.status = progress.total, progress.done, progress.message
            s.result = result
            how = "complete" if result.complete else "stopped; finished models kept"
            s.status = f"{len(result.rows)} models in {result.elapsed_s:.1f} s on {result.device} ({how})"
        except Exception as exc:  # noqa: BLE001 - shown in the panel
            s.report(exc, self.log.append_stderr)
        finally:
            s.running = False

    # -- reactions ----------------------------------------------------------------------------
    def _on_result(self, change: dict[str, Any]) -> None:
        """A new study: nothing selected, first object marker; your markers are kept and scored anew."""
        s = self.state
        with self._silenced():
            s.user_score = s.detail = None
            s.selected, s.val_image = -1, 0
        if s.split == 0:
            self._on_split({"new": 0})
        else:
            s.split = 0

    def _on_split(self, change: dict[str, Any]) -> None:
        res = self.state.result
        dense = res is not None and res.config.dense and len(res.rows) > 0
        self.state.dense_map = res.heatmap(min(change["new"], len(res.markers) - 1)).value if dense else None
        if self.state.user_bg is not None or self.state.user_obj is not None:
            self._score_user()

    def _on_selected(self, change: dict[str, Any]) -> None:
        s = self.state
        if s.selected < 0 or s.result is None:
            s.detail = None
            return
        kw = dict(val_image=s.val_image, **self._detail_kw)
        s.detail = model_detail(s.result, s.selected, projections=False, **kw)
        if not self.projections:
            return
        if self.sync:
            s.detail = model_detail(s.result, s.selected, **kw)
            return
        threading.Thread(target=self._guard(self._project), args=(s.result, s.selected, kw), daemon=True).start()

    def _project(self, result: StudyResult, model: int, kw: dict[str, Any]) -> None:
        """Compute the t-SNE projections in the background; drop them if the selection moved on."""
        with self._projecting:
            if self.state.result is not result or self.state.selected != model:
                return
            detail = model_detail(result, model, **kw)
            if self.state.result is result and self.state.selected == model and self.state.val_image == kw["val_image"]:
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

    def _score_user(self) -> None:
        s = self.state
        if self._quiet:
            return
        s.user_score = None
        obj, bg = self._pair()
        if s.result is None or obj is None or bg is None:
            s.status = "run a study, then place a background marker (or select one) to score your pair"
            return
        s.status = "training your marker pair..."
        s.user_score = score_pair(s.result, obj, bg, s.split)
        s.error = ""
        s.status = f"your pair: Dice {s.user_score.dice:.3f}, rank {s.user_score.rank} of {s.user_score.n + 1}"

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
        """Save your marker pair (completed as for scoring) as disks in a LIDS ``-seeds.txt`` file."""
        obj, bg = self._pair()
        target = self._path(path)
        write_seeds(target, pair_markers(obj, bg, self.state.radius, self._shape()), self._shape())
        self.state.seeds_path = str(target)
        self.state.status = f"saved markers to {target}"
        return target

    def load_seeds(self, path: str | Path | None = None) -> None:
        """Load your markers from a LIDS ``-seeds.txt`` file and score them.

        One disk per label is shown and scored as a marker pair; other markers
        (scribbles, several strokes) are scored whole, and shown by the centre
        of the largest marker of each label.
        """
        target = self._path(path)
        markers, shape = read_seeds(target, image_shape=self._shape())
        s = self.state
        if s.result is not None:
            check_seeds_shape(target, markers, shape, s.result.context.mask)
        obj, bg = pair_from_markers(markers, s.radius, shape)
        whole = obj is not None and bg is not None and not _same_rows(markers, pair_markers(obj, bg, s.radius, shape))
        with self._silenced():
            s.user_obj, s.user_bg = obj, bg
            s.user_markers = markers if whole else None
        s.seeds_path = str(target)
        if not whole or s.result is None:
            self._score_user()
            return
        s.status = "training your markers..."
        s.user_score = score_markers(s.result, markers, s.split)
        s.error = ""
        s.status = (f"your markers ({len(markers)} px, scored whole): Dice {s.user_score.dice:.3f}, "
                    f"rank {s.user_score.rank} of {s.user_score.n + 1}")

    def clear_markers(self) -> None:
        """Remove your markers and their score."""
        with self._silenced():
            self.state.user_obj = self.state.user_bg = self.state.user_score = self.state.user_markers = None
        self.state.status = "your markers cleared"


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
