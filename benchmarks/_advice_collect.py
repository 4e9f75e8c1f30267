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
``first_splits`` splits of every image, then the rest), so that a run cut
short still covers every image.
"""

from __future__ import annotations

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
        event = next(gen)
        while True:
            log(f"  {out.name}: {event.message} [{event.done}/{event.total}]")
            event = gen.throw(StopStudy()) if need <= event.done < event.total else next(gen)
    except StopIteration as stop:
        log(f"  {out.name}: {len(stop.value.rows)} models in {time.perf_counter() - t0:.1f} s")
        return stop.value


def collect(
    cache: Path, datasets: list[str], images: int, splits: int, n_bg: int, seed: int,
    device: str, first_splits: int, log: Any, **extra: Any,
) -> None:
    """Run every random study, then the dense studies in two passes."""
    for ds in datasets:
        for k in range(images):
            run_until(config(ds, k, "random", splits, n_bg, seed, **extra), study_dir(cache, ds, k, "random"), splits, device, log)
    for limit in sorted({min(first_splits, splits), splits}):
        for ds in datasets:
            for k in range(images):
                run_until(config(ds, k, "dense", splits, n_bg, seed, **extra), study_dir(cache, ds, k, "dense"), limit, device, log)
