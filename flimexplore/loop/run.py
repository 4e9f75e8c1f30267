"""The robot user's loop: start from two markers, add one at a time by a policy, refit and score after each.

:func:`run_one` is one run (one policy, one repeat): a generator that
yields after each refit and returns the run's record; it computes and
writes nothing else, so it runs wherever an executor puts it
(:mod:`flimexplore.loop.sweep`).  :func:`simulate` runs every (policy,
repeat) of a :class:`~flimexplore.loop.config.LoopConfig` in this process,
yielding :class:`~flimexplore.study.progress.Progress` events (steps done of
all, time left) like ``run_study``, stores each finished run atomically
(:class:`~flimexplore.loop.store.LoopStore`) and, once all are done, writes
the curves, the markers-needed table, the figure and the seeds files.  A
rerun skips stored runs; Ctrl-C, ``gen.throw(StopStudy())`` or a crash lose
at most the run in progress.

Each step trains the model of the markers drawn so far on the marked images
that hold them (:meth:`~flimexplore.study.context.StudyContext.evaluate_image_markers`)
and scores it like a study's model (best epoch by validation Dice, then the
test Dice); the policy then looks at that model at its last epoch on the
marked images only (:mod:`flimexplore.loop.policies`).
"""

from __future__ import annotations

import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np

from flimexplore.loop.config import LoopConfig
from flimexplore.loop.context import LoopContext
from flimexplore.loop.drawn import image_markers
from flimexplore.loop.fit import MarkedModel, fit_settings
from flimexplore.loop.policies import next_marker
from flimexplore.loop.result import LoopResult
from flimexplore.study.progress import Clock, Progress, StopStudy, time_left
from flimexplore.study.run import model_seed

__all__ = ["LoopContext", "LoopResult", "run_one", "simulate", "simulate_all"]


def run_one(lctx: LoopContext, policy: str, repeat: int) -> Generator[dict[str, Any], None, dict[str, Any]]:
    """One run of the loop: ``policy``'s markers from 2 to ``max_markers``, a refit after each.

    Yields
    ------
    dict
        Each step's row as soon as it is scored (``step``, ``n_markers``,
        ``marker_pixels``, ``val_dice``, ``test_dice``, ``refit_s``, ``policy_s``).

    Returns
    -------
    dict
        The run's record: ``policy``, ``repeat``, ``steps`` (the rows) and
        ``markers`` (each marker with the ``step`` it joined at).
    """
    cfg, ctx, view = lctx.config, lctx.study, lctx.view
    study = ctx.config
    fit = fit_settings(study, repeat)
    base = model_seed(study.seed, study.image, 0, 0)
    rng = np.random.default_rng([study.seed, study.image, repeat])  # the random policy's draws, per repeat
    drawn = list(lctx.start)
    joined = [0, 0]
    steps: list[dict[str, Any]] = []
    for step in range(cfg.max_markers - 1):
        t0 = time.perf_counter()
        markers = image_markers(drawn, lctx.radius, view.shapes)
        scores = ctx.evaluate_image_markers([markers], [base], repeats=(repeat,), keep_trained=True)
        refit = time.perf_counter() - t0
        row = {"step": step, "n_markers": len(drawn), "marker_pixels": markers.n_pixels,
               "val_dice": round(float(scores.val["dice"][0]), 6), "test_dice": round(float(scores.test["dice"][0]), 6),
               "refit_s": round(refit, 4), "policy_s": 0.0}
        if step < cfg.max_markers - 2:
            t1 = time.perf_counter()
            current = MarkedModel(scores.trained, markers.images)
            drawn.append(next_marker(policy, view, drawn, lctx.image_for(len(drawn) + 1), lctx.radius, rng=rng,
                                     current=current, fit=fit, candidates=cfg.candidates))
            joined.append(step + 1)
            row["policy_s"] = round(time.perf_counter() - t1, 4)
        steps.append(row)
        yield row
    return {"policy": policy, "repeat": int(repeat), "steps": steps,
            "markers": [m.to_dict() | {"step": s} for m, s in zip(drawn, joined, strict=True)]}


def simulate(
    config: LoopConfig,
    out: str | Path | None = None,
    *,
    device: str = "auto",
    context: LoopContext | None = None,
) -> Generator[Progress, None, LoopResult]:
    """Run every (policy, repeat) of a loop, yielding progress, returning the result.

    Parameters
    ----------
    config : LoopConfig
    out : path-like, optional
        Results folder: ``config.json``, ``runs/`` (each finished run), then
        ``curve.csv``, ``noc.csv``, ``markers.csv``, ``summary.json``,
        ``curve.png`` and ``seeds/<policy>/r<repeat>/step<NN>/<stem>-seeds.txt``.
        A rerun with the same settings skips stored runs (other policies,
        repeats or targets may be asked for: runs are kept per policy and repeat).
    device : str, optional
    context : LoopContext, optional
        Prepared data of the same settings.

    Yields
    ------
    Progress
        ``done`` / ``total`` count refit steps over all runs.

    Returns
    -------
    LoopResult

    Raises
    ------
    ConfigError, DatasetError, MarkerError, DeviceError
        Before anything is written.
    ResumeError
        If ``out`` holds runs of a loop with other settings.
    """
    from flimexplore.loop.report import write_outputs
    from flimexplore.loop.store import LoopStore

    t0 = time.perf_counter()
    config.validate()
    lctx = context if context is not None and _same(context, config) else LoopContext.prepare(config, device)
    cfg = lctx.config.replace(policies=config.policies, repeats=config.repeats, targets=config.targets)
    store = LoopStore(out, cfg, lctx.study.identity()) if out is not None else None
    runs = store.runs() if store is not None else {}
    wanted = [(p, r) for p in cfg.policies for r in range(cfg.repeats)]
    todo = [k for k in wanted if k not in runs]
    per_run = cfg.max_markers - 1
    total, done = len(wanted) * per_run, (len(wanted) - len(todo)) * per_run
    study = lctx.study
    yield Progress(done, total, f"marked image {study.config.image}: {study.stem} of {study.dataset.name}; "
                                f"{len(cfg.policies)} policies x {cfg.repeats} repeats, 2 to {cfg.max_markers} markers of "
                                f"radius {lctx.radius} on {study.device}; {len(wanted) - len(todo)} runs already done")
    clock = Clock(len(todo) * per_run)
    complete = False
    try:
        for policy, repeat in todo:
            gen = run_one(lctx, policy, repeat)
            while True:
                clock.start_chunk(1)
                try:
                    row = next(gen)
                except StopIteration as stop:
                    record = stop.value
                    break
                done += 1
                eta = clock.end_chunk()
                yield Progress(done, total, f"{policy} repeat {repeat}: {row['n_markers']} markers, validation Dice "
                                            f"{row['val_dice']:.3f}{time_left(eta)}", eta)
            runs[(policy, repeat)] = record
            if store is not None:
                store.add(record)
        complete = True
    except StopStudy:
        pass
    result = LoopResult(cfg, {k: runs[k] for k in wanted if k in runs}, complete, time.perf_counter() - t0, lctx)
    if store is not None and complete:
        write_outputs(store.folder, result)
    return result


def _same(context: LoopContext, config: LoopConfig) -> bool:
    """Whether a prepared context serves ``config`` (the settings every run shares, the radius resolved)."""
    study = config.study if config.study.radius is not None else config.study.replace(radius=context.radius)
    return context.config.shared() == config.replace(study=study).shared()


def simulate_all(config: LoopConfig, out: str | Path | None = None, **kwargs: Any) -> LoopResult:
    """Run a loop to the end, ignoring progress events (see :func:`simulate`)."""
    gen = simulate(config, out, **kwargs)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
