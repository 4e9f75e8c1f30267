"""Where a sweep's tasks run: any ``concurrent.futures.Executor`` or a Dask client.

``distributed`` is an optional dependency (``pip install "flimexplore[dask]"``),
imported only when a Dask cluster is asked for.  Results stream back in the
order they finish (``as_completed``); the driver stores them.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Iterator
from typing import Any

from flimexplore.errors import ConfigError, FlimExploreError
from flimexplore.study.config import StudyConfig
from flimexplore.sweep.plan import task_key

__all__ = ["DaskMissingError", "Submitter", "dask_client", "import_distributed", "is_dask_client", "submitter"]

INSTALL_DASK = 'pip install "flimexplore[dask]"'


class DaskMissingError(FlimExploreError):
    """``--workers`` or ``--scheduler`` was asked for but dask.distributed is not installed."""


def import_distributed() -> Any:
    """Import ``distributed``, or raise :class:`DaskMissingError` naming the extra to install."""
    try:
        import distributed
    except ImportError as err:
        raise DaskMissingError(
            f"running a sweep on a Dask cluster (--workers, --scheduler) needs dask.distributed: {INSTALL_DASK}"
        ) from err
    return distributed


def dask_client(workers: int | None = None, scheduler: str | None = None, gpu: bool = False) -> Any:
    """A Dask client: of a new local cluster of ``workers`` processes, or of the cluster at ``scheduler``.

    Parameters
    ----------
    workers : int, optional
        Single-threaded worker processes on this machine (``LocalCluster``).
    scheduler : str, optional
        Address of a running scheduler, ``tcp://HOST:PORT`` (started by
        ``dask scheduler`` / ``dask worker``, dask-jobqueue or dask-kubernetes).
    gpu : bool, optional
        Local workers advertise one ``GPU`` resource each (tasks on CUDA ask for it).

    Raises
    ------
    ConfigError
        If both or neither of ``workers`` and ``scheduler`` are given, or ``workers`` < 1.
    DaskMissingError
        If dask.distributed is not installed.
    """
    if (workers is None) == (scheduler is None):
        raise ConfigError("give either --workers N or --scheduler ADDRESS, not both")
    if workers is not None and (isinstance(workers, bool) or int(workers) != workers or workers < 1):
        raise ConfigError(f"workers (--workers) must be an integer >= 1, got {workers!r}")
    distributed = import_distributed()
    if scheduler is not None:
        try:
            return distributed.Client(scheduler, timeout="20s")
        except OSError as err:
            raise ConfigError(f"cannot reach the Dask scheduler at {scheduler} ({err}); is `dask scheduler` running?") from err
    cluster = distributed.LocalCluster(
        n_workers=int(workers), threads_per_worker=1, processes=True, dashboard_address=":0",
        resources={"GPU": 1} if gpu else None,
    )
    return distributed.Client(cluster)


def is_dask_client(executor: Any) -> bool:
    """Whether ``executor`` is a ``dask.distributed.Client`` (checked without importing Dask)."""
    return type(executor).__module__.split(".")[0] == "distributed" and type(executor).__name__ == "Client"


class _Stream:
    """Futures with a tag each, yielded as ``(tag, result)`` in the order they finish; more may be added."""

    def __init__(self, dask: Any = None) -> None:
        self._tags: dict[Any, Any] = {}
        self._ac = dask.as_completed() if dask is not None else None

    def add(self, future: Any, tag: Any) -> None:
        self._tags[future] = tag
        if self._ac is not None:
            self._ac.add(future)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        if self._ac is not None:
            for future in self._ac:
                yield self._tags.pop(future), future.result()
            return
        while self._tags:
            done, _ = cf.wait(list(self._tags), return_when=cf.FIRST_COMPLETED)
            for future in done:
                yield self._tags.pop(future), future.result()

    def cancel(self) -> None:
        """Cancel what has not come back (best effort: the client may already be closed)."""
        for future in self._tags:
            try:
                future.cancel()
            except Exception:  # noqa: BLE001 - e.g. RuntimeError("IOLoop is closed") after client.close()
                pass
        self._tags.clear()


class Submitter:
    """Submits sweep tasks to one executor with the options its kind supports.

    On Dask every task gets an explicit key derived from its settings, a
    priority (earlier studies first), ``retries``, and asks for a ``GPU``
    resource when it runs on CUDA; worker processes run torch with one
    thread (``threads``).
    """

    def __init__(self, executor: Any, device: str, retries: int) -> None:
        self.executor = executor
        self.dask = import_distributed() if is_dask_client(executor) else None
        self.device = device
        self.retries = retries
        self.threads = 1 if self.dask is not None else None
        if not self.dask and not isinstance(executor, cf.Executor):
            raise ConfigError(
                f"executor must be None, a concurrent.futures.Executor or a dask.distributed.Client, got {type(executor).__name__}"
            )

    def __call__(
        self, kind: str, config: StudyConfig, ids: list[int], priority: int, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        if self.dask is None:
            return self.executor.submit(fn, *args, **kwargs)
        gpu = {"GPU": 1} if self.device.startswith("cuda") else None
        return self.executor.submit(
            fn, *args, key=task_key(kind, config, ids, self.device), priority=priority, retries=self.retries,
            resources=gpu, pure=False, **kwargs,
        )

    def stream(self) -> _Stream:
        return _Stream(self.dask)


def submitter(executor: Any, device: str, retries: int = 2) -> Submitter:
    """A :class:`Submitter` for ``executor``."""
    return Submitter(executor, device, retries)
