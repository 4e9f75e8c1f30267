"""Loading data and running studies for the explorer: previews, FLIM settings, the study thread, live chunks.

A mixin of :class:`~flimexplore.widgets.app.Explorer` (it uses the explorer's ``state``, views and guards);
only the explorer turns UI events into compute.
"""

from __future__ import annotations

import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

from flimexplore.data import Dataset, load_dataset, split_dataset
from flimexplore.engine.arch import read_arch
from flimexplore.engine.settings import FlimSettings
from flimexplore.errors import ConfigError, DatasetError, FlimExploreWarning
from flimexplore.study.config import StudyConfig
from flimexplore.study.context import StudyContext
from flimexplore.study.run import StopStudy, StudyResult, plan_markers, run_study
from flimexplore.study.store import read_results

__all__ = ["RunMixin"]

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


class RunMixin:
    """Loading data and running studies for the explorer (see the module docstring)."""

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
