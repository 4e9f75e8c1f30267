"""Ground truth for ``benchmarks/advice.py``: a random and a dense study per marked image.

For every (dataset, marked image) this runs two ordinary studies with the
same seed, so they share their object markers (split ``s`` draws its object
marker from ``rng([seed, image, s])``):

* ``random``: ``n_bg`` random admissible background markers per split (the
  paper's protocol);
* ``dense``: every admissible background position on the ``--dense`` grid;
  the advisor's candidates are exactly these positions, so the validation
  Dice of any advised position is looked up here, never retrained.

Studies are stored in ``cache/<dataset>_img<k>_<kind>/`` with the package's
resumable :class:`~flimexplore.study.store.ResultStore`: an interrupted run
continues where it stopped.  Dense studies are run in passes (first
``first_splits`` splits of every image, image 0 of every dataset first,
then the rest), so that a run cut short still covers every dataset.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from flimexplore.study.config import StudyConfig
from flimexplore.study.context import StudyContext
from flimexplore.study.run import StopStudy, plan_markers, run_study


def study_dir(cache: Path, dataset: str, image: int, kind: str) -> Path:
    """Folder of one stored study."""
    return cache / f"{dataset}_img{image}_{kind}"


def config(dataset: str, image: int, kind: str, splits: int, n_bg: int, seed: int, **extra: Any) -> StudyConfig:
    """Settings of the random or the dense study of one marked image."""
    if kind == "dense":
        return StudyConfig(dataset=dataset, image=image, splits=splits, dense=True, seed=seed, **extra)
    return StudyConfig(dataset=dataset, image=image, splits=splits, n_bg=n_bg, seed=seed, **extra)


def run_until(cfg: StudyConfig, out: Path, max_split: int, device: str, log: Any) -> Any:
    """Run (or resume) a study until every model of splits ``< max_split`` is done; return the result.

    Models run in split order, so the first ``sum(len(split))`` models are
    those of the first splits.
    """
    ctx = StudyContext(cfg, device)
    need = sum(len(ms) for ms in plan_markers(ctx)[:max_split])
    gen = run_study(cfg, out, device=device, context=ctx)
    t0 = time.perf_counter()
    try:
        event = first = next(gen)
        while True:
            log(f"  {out.name}: {event.message} [{event.done}/{event.total}]")
            event = gen.throw(StopStudy()) if need <= event.done < event.total else next(gen)
    except StopIteration as stop:
        seconds = time.perf_counter() - t0
        log(f"  {out.name}: {len(stop.value.rows)} models in {seconds:.1f} s")
        _add_timing(out, len(stop.value.rows) - first.done, seconds)
        return stop.value


def _add_timing(out: Path, models: int, seconds: float) -> None:
    """Accumulate trained models and their wall-clock seconds in ``timing.json`` (resumed models not counted)."""
    path = out / "timing.json"
    t = json.loads(path.read_text()) if path.exists() else {"models": 0, "seconds": 0.0}
    if models > 0:
        t = {"models": t["models"] + models, "seconds": t["seconds"] + seconds}
        path.write_text(json.dumps(t))


def timing(out: Path) -> dict[str, float] | None:
    """Models trained and seconds spent in one stored study, or None."""
    path = out / "timing.json"
    return json.loads(path.read_text()) if path.exists() else None


def collect(
    cache: Path, datasets: list[str], images: int, splits: int, n_bg: int, seed: int,
    device: str, first_splits: int, log: Any, dense_splits: int | None = None, **extra: Any,
) -> None:
    """Run every random study, then the dense studies in two passes (up to ``dense_splits`` splits)."""
    dense_splits = splits if dense_splits is None else dense_splits
    for ds in datasets:
        for k in range(images):
            run_until(config(ds, k, "random", splits, n_bg, seed, **extra), study_dir(cache, ds, k, "random"), splits, device, log)
    for limit in sorted({min(first_splits, dense_splits), dense_splits}):
        for k in range(images):
            for ds in datasets:
                run_until(config(ds, k, "dense", splits, n_bg, seed, **extra), study_dir(cache, ds, k, "dense"), limit, device, log)
