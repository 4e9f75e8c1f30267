"""Progress of a running study: events, stopping, time left, and progress inside a chunk.

A chunk of models is trained and scored by one engine call, which can take
long on big images.  :func:`evaluate_reporting` runs that call in a worker
thread and turns the engine's progress callback into :class:`Progress`
events (every :data:`INSIDE_EVERY_S` seconds), so that the command line and
the explorer show "n/N images, ~t s left" while a chunk is being scored.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from flimexplore.study.context import PairScores

__all__ = ["INSIDE_EVERY_S", "Clock", "Progress", "StopStudy", "evaluate_reporting", "time_left"]

INSIDE_EVERY_S = 2.0
"""Seconds between progress events while one chunk is being scored (big images, slow chunks)."""


class StopStudy(Exception):
    """Thrown into :func:`~flimexplore.study.run.run_study` (``gen.throw(StopStudy())``) to stop it early.

    The generator then returns the partial :class:`StudyResult` of the models
    finished so far (``StopIteration.value``).
    """


@dataclass(frozen=True)
class Progress:
    """One progress event of a running study.

    Attributes
    ----------
    done : int
        Models finished so far (including ones resumed from disk).
    total : int
        Models in the study.
    message : str
        What just happened, for a log line or a progress label.
    eta_s : float or None
        Estimate of the seconds left (None before the first chunk finished
        or was partly scored).
    inside : tuple of int or None
        ``(n, N)`` while a chunk is being scored: ``n`` of its ``N``
        validation and test images are done (``done`` then does not move);
        None for the events at the start and after each finished chunk.
    """

    done: int
    total: int
    message: str
    eta_s: float | None = None
    inside: tuple[int, int] | None = None


class Clock:
    """Estimates of the time left from the chunks computed in this run (resumed models cost nothing)."""

    def __init__(self, todo: int) -> None:
        self.todo = todo  # models this run computes
        self.done = 0
        self.t0 = time.perf_counter()
        self.chunk_t0 = self.t0
        self.chunk_n = 0

    def start_chunk(self, n: int) -> None:
        self.chunk_t0, self.chunk_n = time.perf_counter(), n

    def end_chunk(self) -> float:
        """Seconds left after the chunk that just finished."""
        self.done += self.chunk_n
        per_model = (time.perf_counter() - self.t0) / max(self.done, 1)
        return per_model * (self.todo - self.done)

    def inside(self, n: int, n_total: int, scoring_t0: float, now: float) -> float | None:
        """Seconds left when `n` of the chunk's `n_total` images are scored (scoring began at `scoring_t0`)."""
        if n <= 0:
            return None
        chunk_s = (scoring_t0 - self.chunk_t0) + (now - scoring_t0) * n_total / n
        per_model = (self.chunk_t0 - self.t0 + chunk_s) / (self.done + self.chunk_n)
        return max(0.0, chunk_s - (now - self.chunk_t0)) + per_model * (self.todo - self.done - self.chunk_n)


def time_left(eta: float | None) -> str:
    return "" if eta is None else f", ~{eta:.0f} s left"


class _Cancelled(Exception):
    """Raised inside the worker's progress callback to end an abandoned chunk early."""


def evaluate_reporting(
    evaluate: Callable[[Callable[[int, int], None]], PairScores],
    clock: Clock, done: int, total: int, ids: list[int],
) -> Generator[Progress, None, tuple[PairScores, bool]]:
    """Score one chunk in a worker thread, yielding a Progress event every ``INSIDE_EVERY_S`` seconds.

    ``evaluate(progress)`` scores the chunk (models ``ids``), calling
    ``progress(n, N)`` as its validation and test images are scored;
    ``done`` and ``total`` are the study's model counts before the chunk.

    Returns the chunk's scores and whether :class:`StopStudy` was thrown in
    meanwhile (the chunk is then finished and kept, and the study stops).
    On Ctrl-C (KeyboardInterrupt), ``close()`` or an error, the worker is
    cancelled at its next scored image and joined before the exception goes
    on: no thread outlives the call (a thread still inside torch when the
    interpreter exits aborts the process).
    """
    events: queue.Queue[tuple[int, int, float] | None] = queue.Queue()
    cancel = threading.Event()
    box: dict[str, Any] = {}

    def report(n: int, m: int) -> None:
        if cancel.is_set():
            raise _Cancelled
        events.put((n, m, time.perf_counter()))

    def work() -> None:
        try:
            box["scores"] = evaluate(report)
        except BaseException as err:  # handed to the caller's thread below
            box["error"] = err
        finally:
            events.put(None)

    worker = threading.Thread(target=work, name="flimexplore-chunk", daemon=True)
    worker.start()
    stop = False
    last = time.perf_counter()
    scoring_t0: float | None = None
    shown = 0
    try:
        while True:
            try:
                item = events.get(timeout=0.25)
            except queue.Empty:
                continue
            if item is None:
                break
            n, n_total, at = item
            if n == 0 and scoring_t0 is None:
                scoring_t0 = at
            if stop or at - last < INSIDE_EVERY_S or n <= shown or scoring_t0 is None:
                continue
            last, shown = at, n
            eta = clock.inside(n, n_total, scoring_t0, at)
            try:
                yield Progress(
                    done, total,
                    f"models {ids[0]}-{ids[-1]}: scored {n}/{n_total} validation and test images{time_left(eta)}",
                    eta, (n, n_total),
                )
            except StopStudy:
                stop = True  # finish the chunk (it is already paid for), keep it, then stop
    except BaseException:
        cancel.set()
        worker.join()
        raise
    worker.join()
    if "error" in box:
        raise box["error"]
    return box["scores"], stop
