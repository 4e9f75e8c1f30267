"""Run a sweep: every study of the protocol, in this process or on an executor.

:func:`run_sweep` is a generator like :func:`flimexplore.study.run.run_study`:
it yields :class:`SweepProgress` events and returns a :class:`SweepResult`.
In this process (``executor=None``) it runs the studies one after the other
with ``run_study``.  On an executor (a ``concurrent.futures.Executor`` or a
``dask.distributed.Client``) it sends chunks of models to the workers
(:func:`flimexplore.sweep.worker.compute_models`), and this process, the
driver, writes what comes back into the study folders with the same store,
atomically and chunk by chunk.  Workers read and write no files, so they
need no shared disk.  Either way a rerun with the same output folder skips
complete studies and resumes the chunks of interrupted ones.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from flimexplore.engine.precision import check_precision
from flimexplore.errors import ConfigError
from flimexplore.study.config import StudyConfig
from flimexplore.study.outputs import write_outputs
from flimexplore.study.readout_table import other_readouts
from flimexplore.study.readouts import readouts_to_do
from flimexplore.study.run import (
    MODEL_CHUNK,
    StudyResult,
    _check_run_options,
    fits_to_do,
    run_study,
    work_chunks,
)
from flimexplore.study.store import ResultStore
from flimexplore.sweep.executors import Submitter, submitter
from flimexplore.sweep.plan import SweepTask, finished, plan_sweep
from flimexplore.sweep.report import write_report
from flimexplore.sweep.worker import ChunkResult, ReadoutChunk, compute_models, compute_readouts

__all__ = ["SweepProgress", "SweepResult", "run_sweep", "run_sweep_all"]


@dataclass(frozen=True)
class SweepProgress:
    """One progress event of a running sweep.

    Attributes
    ----------
    done, total : int
        Models finished (including ones resumed from disk) and models in the
        sweep.  ``total`` counts studies not started yet as ``splits x n_bg``
        (30 background markers when ``n_bg`` is left to the dataset), so it
        is an estimate until every study has started.
    tasks_done, tasks_total : int
        Studies complete and studies in the sweep.
    computed : int
        Models trained by this run (not resumed from disk).
    eta_s : float or None
        Estimated seconds left, from this run's rate; None before the first
        trained chunk.
    message : str
    """

    done: int
    total: int
    tasks_done: int
    tasks_total: int
    computed: int
    eta_s: float | None
    message: str


@dataclass
class SweepResult:
    """What a sweep produced: the finished studies' summaries and where they are.

    Attributes
    ----------
    out : Path
    tasks : list of SweepTask
    summaries : dict of str to dict
        ``summary.json`` of each complete study, keyed by its folder.
    computed : int
        Models trained by this run.
    elapsed_s : float
    complete : bool
    report : dict
        The content of ``sweep.json``.
    """

    out: Path
    tasks: list[SweepTask]
    summaries: dict[str, dict[str, Any]]
    computed: int
    elapsed_s: float
    complete: bool
    report: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Marked:
    """What a study's result reads of its context, for a study computed elsewhere (heatmaps, summary)."""

    image: Any
    mask: Any
    user_markers: Any
    user_markers_source: str | None
    counts: dict[str, int]
    config: StudyConfig
    stem: str
    dataset: Any

    def without_object(self, part: str) -> int:
        return self.counts[part]


class _Tracker:
    """Counts for progress events across the tasks of a sweep."""

    def __init__(self, tasks: list[SweepTask]) -> None:
        self.tasks = tasks
        self.totals: dict[str, int] = {}
        self.done: dict[str, int] = {}
        self.complete: set[str] = set()
        self.computed = 0
        self.t0 = time.perf_counter()

    def guess(self, task: SweepTask) -> int:
        return self.totals.get(task.folder, task.config.splits * (task.config.n_bg or 30))

    def event(self, message: str) -> SweepProgress:
        total = sum(self.guess(t) for t in self.tasks)
        done = sum(self.done.values())
        rate = self.computed / (time.perf_counter() - self.t0) if self.computed else 0.0
        eta = (total - done) / rate if rate > 0 else None
        return SweepProgress(done, total, len(self.complete), len(self.tasks), self.computed, eta, message)


def run_sweep(
    datasets: Sequence[str] | str,
    images: str | int | Sequence[int] = "all",
    base_config: StudyConfig | None = None,
    out: str | Path = "sweep",
    *,
    executor: Any = None,
    device: str = "cpu",
    model_chunk: int = MODEL_CHUNK,
    memory_mb: float = 512,
    granularity: str = "chunk",
    retries: int = 2,
    precision: str = "fp32",
) -> Generator[SweepProgress, None, SweepResult]:
    """Run every (dataset, marked image) study of the protocol, yielding progress.

    Parameters
    ----------
    datasets : sequence of str, or str
        Preset names or dataset folders.
    images : "all", str, int or sequence of int, optional
        Marked images of each dataset (``"0,2"``, ``[0, 1]``; all: 0, 1, 2).
    base_config : StudyConfig, optional
        Every other study setting (its ``dataset`` and ``image`` are replaced).
    out : path-like, optional
        Sweep folder: one study folder per task (``<dataset>/image<k>/``, the
        ``flimexplore study`` layout), ``sweep.csv`` and ``sweep.json``.
    executor : None, concurrent.futures.Executor or dask.distributed.Client
        None runs the studies in this process.
    device : str, optional
        ``cpu``, ``cuda`` or ``auto``, where the models are computed.  On
        Dask, ``cuda`` tasks ask for one ``GPU`` resource of a worker.
    model_chunk : int, optional
        Models trained together; also the unit that is stored and resumed.
    memory_mb : float, optional
    granularity : {"chunk", "study"}, optional
        On an executor, one task per chunk of models (the default: spreads
        one study over all workers and loses at most a chunk to a crash) or
        one task per study.
    retries : int, optional
        Dask retries of a task that raised (a task whose worker died is
        rescheduled by Dask anyway).
    precision : {"fp32", "tf32", "bf16"}, optional
        Arithmetic on CUDA (:mod:`flimexplore.engine.precision`).

    Yields
    ------
    SweepProgress

    Returns
    -------
    SweepResult

    Raises
    ------
    ConfigError
        If a setting is out of range (before any work).
    DatasetError, MarkerError, DeviceError, ResumeError, OutputError
        As :func:`flimexplore.study.run.run_study`; finished chunks stay stored.
    """
    _check_run_options("batched", model_chunk, memory_mb)
    if granularity not in ("chunk", "study"):
        raise ConfigError(f"granularity must be 'chunk' or 'study', got {granularity!r}")
    if device == "cpu":
        check_precision(precision, device)  # other devices are checked where they are (Dask workers)
    tasks = plan_sweep(datasets, images, base_config)
    out = Path(out)
    track = _Tracker(tasks)
    summaries: dict[str, dict[str, Any]] = {}
    todo = []
    for task in tasks:
        summary = finished(out / task.folder, task.config)
        if summary is None:
            todo.append(task)
            continue
        summaries[task.folder] = summary
        track.totals[task.folder] = track.done[task.folder] = int(summary["n_models"])
        track.complete.add(task.folder)
    yield track.event(f"{len(tasks)} studies; {len(tasks) - len(todo)} already complete")
    if executor is None:
        yield from _in_process(todo, out, track, summaries, device, model_chunk, memory_mb, precision)
    else:
        step = model_chunk if granularity == "chunk" else None
        submit = submitter(executor, device, retries)
        opts = {"device": device, "model_chunk": model_chunk, "memory_mb": memory_mb, "threads": submit.threads,
                "precision": precision}
        yield from _distributed(todo, out, track, summaries, submit, opts, step)
    report = write_report(out, tasks, summaries)
    complete = len(summaries) == len(tasks)
    return SweepResult(out, tasks, summaries, track.computed, time.perf_counter() - track.t0, complete, report)


def _in_process(todo, out, track, summaries, device, model_chunk, memory_mb, precision) -> Generator[SweepProgress, None, None]:
    from flimexplore.sweep.worker import study_context

    for task in todo:
        gen = run_study(
            task.config, out / task.folder, device=device, model_chunk=model_chunk, memory_mb=memory_mb,
            precision=precision, context=study_context(task.config, device),  # marked images share the dataset
        )
        first = True
        while True:
            try:
                ev = next(gen)
            except StopIteration as stop:
                result: StudyResult = stop.value
                break
            if not first:
                track.computed += ev.done - track.done.get(task.folder, 0)
            track.totals[task.folder], track.done[task.folder], first = ev.total, ev.done, False
            yield track.event(f"{task.label}: {ev.message}")
        summaries[task.folder] = result.summary()
        track.complete.add(task.folder)
        write_report(out, track.tasks, summaries)
        yield track.event(f"{task.label}: complete")


@dataclass
class _Open:
    """A study the driver is collecting: its store and what has come back."""

    task: SweepTask
    store: ResultStore
    plan: ChunkResult
    todo: dict[int, tuple[int, ...]]
    arrays: dict[int, dict[str, Any]]
    t0: float = field(default_factory=time.perf_counter)
    reading: set[int] = field(default_factory=set)  # stored models being read out again (more --decoders)


def _distributed(
    todo: list[SweepTask], out: Path, track: _Tracker, summaries: dict, submit: Submitter,
    opts: dict[str, Any], step: int | None,
) -> Generator[SweepProgress, None, None]:
    pending = submit.stream()
    for priority, task in enumerate(todo):  # earlier studies first: workers share a study's prepared data
        pending.add(submit("plan", task.config, [], -priority, compute_models, task.config, [], **opts), (task, None))
    studies: dict[str, _Open] = {}
    try:
        for (task, ids), res in pending:
            if isinstance(res, ReadoutChunk):  # stored models read out by more decoders
                study = studies[task.folder]
                study.store.add_readouts(res.rows)
                study.reading -= set(ids)
                yield track.event(f"{task.label}: models {ids[0]}-{ids[-1]} read out (pid {res.pid})")
            elif ids is None:  # a study's plan came back: open its folder, send what is missing
                store = ResultStore(out / task.folder, res.config, res.identity)
                arrays = store.load_arrays()
                work = fits_to_do(res.total, res.config.repeats, store.fits(), arrays)
                study = studies[task.folder] = _Open(task, store, res, work, arrays)
                done = res.total - len(work)
                track.totals[task.folder], track.done[task.folder] = res.total, done
                prio = -todo.index(task)
                for chunk, reps in work_chunks(res.total, step or res.total, work):
                    pending.add(submit("models", task.config, chunk, prio, compute_models, task.config, chunk,
                                       repeats=reps, **opts), (task, chunk))
                if other_readouts(res.config.decoders, res.config.attention):
                    late = readouts_to_do(sorted(m for m in arrays if m not in work), store.readouts(), res.config.decoders)
                    study.reading = set(late)
                    for lo in range(0, len(late), step or max(1, len(late))):
                        chunk = late[lo : lo + (step or len(late))]
                        pending.add(submit("readouts", task.config, chunk, prio, compute_readouts, task.config, chunk,
                                           {m: arrays[m] for m in chunk}, **opts), (task, chunk))
                yield track.event(f"{task.label}: {res.total} models on {res.device}; {done} already done")
            else:
                study = studies[task.folder]
                keep = [m for m in res.models if m not in study.arrays]
                chunk_arrays = {k: v[[res.models.index(m) for m in keep]] for k, v in res.arrays.items()} if keep else {}
                study.store.add(res.rows, chunk_arrays, keep)
                study.store.add_readouts(res.readouts)
                for j, m in enumerate(keep):
                    study.arrays[m] = {k: v[j] for k, v in chunk_arrays.items()}
                for m in ids:
                    study.todo.pop(m, None)
                track.computed += len(ids)
                track.done[task.folder] = study.plan.total - len(study.todo)
                best = max(r["val_dice"] for r in res.rows)
                yield track.event(f"{task.label}: models {ids[0]}-{ids[-1]} done (best val Dice {best:.3f}, pid {res.pid})")
            if not study.todo and not study.reading and task.folder not in track.complete:
                summaries[task.folder] = _close(study, track)
                write_report(out, track.tasks, summaries)
                yield track.event(f"{task.label}: complete")
    finally:
        pending.cancel()
        for study in studies.values():
            study.store.close()


def _close(study: _Open, track: _Tracker) -> dict[str, Any]:
    """Write a finished study's heatmaps and summary (as run_study does) and release its folder."""
    plan = study.plan
    marked = _Marked(
        plan.image, plan.mask, plan.user_markers, plan.user_markers_source, plan.without_object, plan.config,
        plan.stem, SimpleNamespace(name=plan.dataset_name),
    )
    fits = study.store.fits()
    result = StudyResult(
        plan.config, plan.markers, study.store.rows(), study.arrays, plan.device,
        time.perf_counter() - study.t0, True, marked,  # type: ignore[arg-type]
        [fits[k] for k in sorted(fits) if k[1] < plan.config.repeats], study.store.joined_rows(),
    )
    write_outputs(study.store, result)
    study.store.close()
    track.complete.add(study.task.folder)
    return result.summary()


def run_sweep_all(*args: Any, **kwargs: Any) -> SweepResult:
    """Run a sweep to the end, ignoring progress events (see :func:`run_sweep`)."""
    gen = run_sweep(*args, **kwargs)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
