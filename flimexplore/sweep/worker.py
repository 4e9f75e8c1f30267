"""The work a sweep sends to an executor: train and score some models of one study.

:func:`compute_models` runs wherever the executor puts it (this process, a
pool process, a Dask worker on another machine).  It reads nothing from the
sweep's output folder and writes nothing: it returns rows and parameters,
and the driver stores them.  The prepared data of the last studies is kept
per process, so a worker that gets several chunks of one study loads its
data once.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from flimexplore.study.config import StudyConfig

__all__ = ["ChunkResult", "ReadoutChunk", "compute_models", "compute_readouts", "study_context"]

_contexts: OrderedDict[tuple[str, str], Any] = OrderedDict()  # the last study's prepared data
_datasets: OrderedDict[tuple[Any, ...], Any] = OrderedDict()  # the last dataset (shared by its marked images)


@dataclass(frozen=True, eq=False)
class ChunkResult:
    """What a worker returns for some models of one study.

    Attributes
    ----------
    config : StudyConfig
        Resolved settings (dataset defaults filled in).
    identity : dict
        The data facts a study folder records (see ``StudyContext.identity``).
    total : int
        Models in the study.
    rows : list of dict
        One per computed fit of a model (columns of ``flimexplore.study.store.FIT_COLUMNS``).
    arrays : dict of str to ndarray with leading axis ``len(models)``
        Parameters (of fit 0) of ``models``.
    models : list of int
        The models whose fit 0 was computed, in the order of ``arrays``.
    markers : list of MarkerSet or MarkerGroups
        The study's markers, one entry per split.
    image : ndarray of shape (H, W, 3), float32
    mask : ndarray of shape (H, W), bool
        The marked image and its mask (for the heatmaps the driver draws).
    user_markers : ndarray of shape (P, 3) or None
        The user's markers of the marked image (row, col, label), scored as one extra model.
    user_markers_source : str or None
    without_object : dict of str to int
        Validation and test images without object pixels (for the summary).
    stem, dataset_name : str
        Names of the marked image and of the dataset (for the heatmap figures).
    device : str
    seconds : float
        Compute time of the models (without preparing the data).
    pid : int
        Process that computed them.
    readouts : list of dict
        With other readouts (``config.decoders``, ``config.attention``): the
        rows of ``readouts.csv`` of ``models`` (see :mod:`flimexplore.study.readouts`).
    """

    config: StudyConfig
    identity: dict[str, Any]
    total: int
    rows: list[dict[str, Any]]
    arrays: dict[str, NDArray] = field(repr=False)
    models: list[int]
    markers: list[Any] = field(repr=False)
    image: NDArray[np.float32] = field(repr=False)
    mask: NDArray[np.bool_] = field(repr=False)
    user_markers: NDArray[np.int64] | None = field(repr=False)
    user_markers_source: str | None
    without_object: dict[str, int]
    stem: str
    dataset_name: str
    device: str
    seconds: float
    pid: int
    readouts: list[dict[str, Any]] = field(default_factory=list, repr=False)


@dataclass(frozen=True, eq=False)
class ReadoutChunk:
    """What a worker returns for stored models read out again (:func:`compute_readouts`).

    Attributes
    ----------
    rows : list of dict
        Rows of ``readouts.csv``.
    seconds : float
    pid : int
    """

    rows: list[dict[str, Any]]
    seconds: float
    pid: int


def study_context(config: StudyConfig, device: str) -> Any:
    """The prepared data of a study, kept for the next chunk (one study and one dataset per process)."""
    from flimexplore.data import load_dataset
    from flimexplore.study.context import StudyContext

    key = (config.to_json(), device)
    if key not in _contexts:
        _contexts.clear()  # free the old study's tensors before preparing the new ones
        data_key = (config.dataset, config.n_images, config.size, config.object_label)
        if data_key not in _datasets:
            _datasets.clear()
            _datasets[data_key] = load_dataset(
                config.dataset, n_images=config.n_images, size=config.size, object_label=config.object_label
            )
        _contexts[key] = StudyContext(config, device, dataset=_datasets[data_key])
    return _contexts[key]


def compute_models(
    config: StudyConfig,
    ids: Sequence[int],
    *,
    device: str = "cpu",
    model_chunk: int = 32,
    memory_mb: float = 512,
    threads: int | None = None,
    precision: str = "fp32",
    repeats: Sequence[int] | None = None,
) -> ChunkResult:
    """Train and score models ``ids`` of a study (none: only describe the study).

    Parameters
    ----------
    config : StudyConfig
    ids : sequence of int
        Model ids (see ``flimexplore.study.run.model_table``), trained in
        the chunks a study trains together (ids ``k * model_chunk`` to
        ``(k + 1) * model_chunk - 1``), so results equal a study's.
    device : str, optional
    model_chunk : int, optional
    memory_mb : float, optional
    threads : int, optional
        Torch intra-op threads of this process (Dask workers: 1, so that
        single-threaded workers do not oversubscribe the cores).
    precision : {"fp32", "tf32", "bf16"}, optional
        Arithmetic on CUDA (:mod:`flimexplore.engine.precision`).
    repeats : sequence of int, optional
        Which fits of each model to compute (default: all of the study's).

    Returns
    -------
    ChunkResult
    """
    import time

    import torch

    from flimexplore.study.readout_table import other_readouts
    from flimexplore.study.readouts import compute_readouts as read_out
    from flimexplore.study.run import evaluate_models, model_rows, model_table, plan_markers

    if threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    ctx = study_context(config, device)
    markers = plan_markers(ctx)
    table = model_table(ctx, markers)
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    readouts: list[dict[str, Any]] = []
    parts: list[dict[str, NDArray]] = []
    groups: dict[int, list[int]] = {}
    for m in ids:  # the chunks run_study trains together (ids lo .. lo + model_chunk - 1), so results match
        groups.setdefault(int(m) // model_chunk, []).append(int(m))
    repeats = ctx.all_repeats if repeats is None else tuple(repeats)
    for sub in groups.values():
        scores = evaluate_models(ctx, [table[m] for m in sub], "batched", memory_mb, precision=precision, repeats=repeats)
        rows += model_rows(ctx, sub, table, scores)
        parts.append(scores.arrays)
        if 0 in repeats and other_readouts(ctx.config.decoders, ctx.config.attention):
            fitted = {m: {k: v[j] for k, v in scores.arrays.items()} for j, m in enumerate(sub)}
            readouts += read_out(ctx, sub, fitted, ctx.config.decoders, memory_mb, precision)
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts and 0 in repeats else {}
    models = [int(m) for sub in groups.values() for m in sub] if 0 in repeats else []
    return ChunkResult(
        ctx.config, ctx.identity(), len(table), rows, arrays, models,
        markers, ctx.image, ctx.mask, ctx.user_markers, ctx.user_markers_source,
        {part: ctx.without_object(part) for part in ("val", "test")}, ctx.stem, ctx.dataset.name, str(ctx.device),
        time.perf_counter() - t0, os.getpid(), readouts,
    )


def compute_readouts(
    config: StudyConfig,
    ids: Sequence[int],
    arrays: dict[int, dict[str, NDArray]],
    *,
    device: str = "cpu",
    memory_mb: float = 512,
    threads: int | None = None,
    precision: str = "fp32",
    model_chunk: int | None = None,
) -> ReadoutChunk:
    """Read stored models out again with the study's readouts (``--decoders`` grown on resume).

    Parameters
    ----------
    config : StudyConfig
    ids : sequence of int
        Model ids.
    arrays : dict of int to dict
        Their stored parameters (the driver sends them: workers read no files).
    device, memory_mb, threads, precision : optional
        As :func:`compute_models`; ``model_chunk`` is accepted and unused.

    Returns
    -------
    ReadoutChunk
    """
    import time

    import torch

    from flimexplore.study.readouts import compute_readouts as read_out

    if threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    ctx = study_context(config, device)
    t0 = time.perf_counter()
    rows = read_out(ctx, [int(m) for m in ids], arrays, ctx.config.decoders, memory_mb, precision)
    return ReadoutChunk(rows, time.perf_counter() - t0, os.getpid())
