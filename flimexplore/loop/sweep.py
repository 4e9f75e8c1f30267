"""Simulated loops over several datasets and marked images, in this process or on an executor (Dask).

:func:`simulate_sweep` plans one loop per (dataset, marked image), each in
its own results folder ``<out>/<dataset>/image<k>/`` laid out as
:func:`~flimexplore.loop.run.simulate` writes it (the folders of
``flimexplore sweep``).  Every (policy, repeat) run is a task: in this
process (``executor=None``) the runs go one after the other with per-step
progress; on an executor (any ``concurrent.futures.Executor`` or a
``dask.distributed.Client``, see :func:`flimexplore.sweep.dask_client`) the
workers compute runs (:func:`compute_run`, which reads and writes no file)
and this process stores each one atomically as it comes back, then writes a
folder's curves once its last run arrived.  A rerun skips stored runs.
Dask tasks get explicit keys from their settings and retries
(:class:`flimexplore.sweep.executors.Submitter`); workers run torch with one
thread and keep the last loop's prepared data.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Generator, Iterable, Sequence
from pathlib import Path
from typing import Any

from flimexplore.loop.config import LoopConfig
from flimexplore.loop.run import LoopContext, LoopResult, run_one, simulate
from flimexplore.loop.store import LoopStore
from flimexplore.study.progress import Progress, StopStudy, time_left
from flimexplore.sweep.executors import submitter
from flimexplore.sweep.plan import plan_sweep

__all__ = ["compute_run", "plan_loops", "simulate_sweep", "simulate_sweep_all"]

_contexts: OrderedDict[tuple[str, str], LoopContext] = OrderedDict()  # the last loop's prepared data, per process


def plan_loops(datasets: Sequence[str] | str, images: str | int | Iterable[int], config: LoopConfig) -> list[tuple[LoopConfig, str]]:
    """One loop per (dataset, marked image): its settings and its folder (relative to the output folder)."""
    return [(config.replace(study=task.config), task.folder) for task in plan_sweep(datasets, images, config.study)]


def _context(config: LoopConfig, device: str) -> LoopContext:
    key = (config.to_json(), device)
    if key not in _contexts:
        _contexts.clear()  # free the previous loop's tensors first
        _contexts[key] = LoopContext.prepare(config, device)
    return _contexts[key]


def compute_run(config: LoopConfig, policy: str, repeat: int, device: str = "cpu", threads: int | None = None) -> dict[str, Any]:
    """One run of a loop, computed wherever an executor puts it; returns its record (nothing is written)."""
    if threads is not None:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    gen = run_one(_context(config, device), policy, repeat)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def simulate_sweep(
    datasets: Sequence[str] | str,
    images: str | int | Iterable[int],
    config: LoopConfig,
    out: str | Path,
    *,
    executor: Any = None,
    device: str = "auto",
    retries: int = 2,
) -> Generator[Progress, None, dict[str, LoopResult]]:
    """Run the loops of several datasets and marked images, yielding progress, returning each folder's result.

    Parameters
    ----------
    datasets : sequence of str
        Preset names or folder paths.
    images : "all", str, int or sequence of int
        Marked images (as ``flimexplore sweep --images``).
    config : LoopConfig
        Every loop's settings (its study's ``dataset`` and ``image`` are replaced).
    out : path-like
        Output folder: one results folder per loop, ``<dataset>/image<k>``.
    executor : concurrent.futures.Executor or dask.distributed.Client, optional
        Where runs are computed (default: this process).
    device : str, optional
    retries : int, optional
        Dask retries of a run whose worker died.

    Yields
    ------
    Progress
        In this process: refit steps of all loops; on an executor: runs.

    Returns
    -------
    dict of str to LoopResult
        By folder.
    """
    out = Path(out)
    plans = plan_loops(datasets, images, config.validate())
    results: dict[str, LoopResult] = {}
    if executor is None:
        per_loop = len(config.policies) * config.repeats * (config.max_markers - 1)
        for j, (cfg, folder) in enumerate(plans):
            gen = simulate(cfg, out / folder, device=device)
            while True:
                try:
                    ev = next(gen)
                except StopIteration as stop:
                    results[folder] = stop.value
                    break
                yield Progress(j * per_loop + ev.done, len(plans) * per_loop, f"{folder}: {ev.message}", ev.eta_s)
        return results
    return (yield from _distributed(plans, out, executor, device, retries))


def _distributed(
    plans: list[tuple[LoopConfig, str]], out: Path, executor: Any, device: str, retries: int
) -> Generator[Progress, None, dict[str, LoopResult]]:
    from flimexplore.loop.report import write_outputs

    submit = submitter(executor, device, retries)
    stream = submit.stream()
    loops: dict[str, tuple[LoopContext, LoopStore, dict]] = {}
    total = done = 0
    t0 = time.perf_counter()
    for priority, (cfg, folder) in enumerate(plans):
        lctx = LoopContext.prepare(cfg, device)
        store = LoopStore(out / folder, lctx.config, lctx.study.identity())
        runs = store.runs()
        loops[folder] = (lctx, store, runs)
        tag = hashlib.sha256(lctx.config.to_json().encode()).hexdigest()[:8]
        for policy in cfg.policies:
            for r in range(cfg.repeats):
                total += 1
                if (policy, r) in runs:
                    done += 1
                    continue
                future = submit(f"loop-{policy}-{tag}", lctx.config.study, [r], -priority, compute_run, lctx.config,
                                policy, r, device, submit.threads)
                stream.add(future, (folder, policy, r))
    yield Progress(done, total, f"{len(plans)} loops, {total} runs; {done} already done")
    computed = 0
    results: dict[str, LoopResult] = {}
    try:
        for folder in [f for f in loops if _complete(loops[f])]:  # resumed whole: (re)write its files
            results[folder] = _finish(loops[folder], write_outputs)
        for (folder, policy, r), record in stream:
            lctx, store, runs = loops[folder]
            store.add(record)
            runs[(policy, r)] = record
            done, computed = done + 1, computed + 1
            eta = (time.perf_counter() - t0) / computed * (total - done)
            if _complete(loops[folder]):
                results[folder] = _finish(loops[folder], write_outputs)
            yield Progress(done, total, f"{folder}: {policy} repeat {r} done{time_left(eta)}", eta)
    except (StopStudy, KeyboardInterrupt, GeneratorExit):
        stream.cancel()
        raise
    return results


def _complete(loop: tuple[LoopContext, LoopStore, dict]) -> bool:
    lctx, _, runs = loop
    cfg = lctx.config
    return all((p, r) in runs for p in cfg.policies for r in range(cfg.repeats))


def _finish(loop: tuple[LoopContext, LoopStore, dict], write: Any) -> LoopResult:
    lctx, store, runs = loop
    cfg = lctx.config
    keys = [(p, r) for p in cfg.policies for r in range(cfg.repeats)]
    result = LoopResult(cfg, {k: runs[k] for k in keys}, True, 0.0, lctx)
    write(store.folder, result)
    return result


def simulate_sweep_all(datasets: Sequence[str] | str, images: Any, config: LoopConfig, out: str | Path, **kwargs: Any) -> dict[str, LoopResult]:
    """Run :func:`simulate_sweep` to the end, ignoring progress events."""
    gen = simulate_sweep(datasets, images, config, out, **kwargs)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
