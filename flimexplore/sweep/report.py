"""The sweep's own files: ``sweep.csv`` (every model's row) and ``sweep.json`` (per-study Dice ranges)."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from flimexplore.markers import MarkerSet
from flimexplore.study.config import StudyConfig
from flimexplore.study.readout_table import TRAINED, joined_columns, other_readouts, readouts_asked
from flimexplore.study.store import COLUMNS, atomic_write_bytes, read_results, typed_row
from flimexplore.sweep.plan import SweepTask, dataset_label

__all__ = ["SWEEP_COLUMNS", "StudyView", "read_sweep", "study_views", "write_report"]

SWEEP_COLUMNS = ("dataset", "folder", *COLUMNS)
"""Columns of ``sweep.csv``; with other readouts (``--decoders``, ``--attention``) followed by ``decoder``,
``pointing`` and ``mass_in_object`` (one row per model and readout, as the studies' ``results.csv``)."""


def write_report(out: Path, tasks: Sequence[SweepTask], summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Write ``sweep.csv`` and ``sweep.json`` from the study folders (atomically); return the JSON's content.

    ``sweep.csv`` holds every stored row of every study, with the dataset
    and the study folder in front; ``sweep.json`` holds, per dataset and
    marked image, the number of models and the min / max / mean validation
    Dice of the sampled models (a model of the user's own markers, split -1,
    is a row of ``sweep.csv`` but not in these ranges) (the numbers of the paper's Fig. 6-8 captions), and whether the
    study is complete.  With other readouts the ranges are the trained layer's, and ``readouts`` holds
    each readout's range.
    """
    out.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    reading = bool(tasks) and other_readouts(tasks[0].config.decoders, tasks[0].config.attention)
    columns = joined_columns(COLUMNS) if reading else COLUMNS
    writer.writerow(("dataset", "folder", *columns))
    report: dict[str, Any] = {"datasets": {}, "n_studies": len(tasks), "n_complete": 0, "n_models": 0}
    for task in tasks:
        path = out / task.folder / "results.csv"
        rows = read_results(path) if path.exists() else []
        for r in rows:
            writer.writerow([task.config.dataset, task.folder, *(_text(r[c]) for c in columns)])
        trained = [r for r in rows if r.get("decoder", TRAINED) == TRAINED]
        entry: dict[str, Any] = {"folder": task.folder, "n_models": len(trained), "complete": task.folder in summaries}
        entry |= _dice_range(trained)
        if reading:
            entry["readouts"] = {d: _dice_range([r for r in rows if r["decoder"] == d])
                                 for d in readouts_asked(task.config.decoders)}
        report["datasets"].setdefault(dataset_label(task.config.dataset), {})[f"image{task.config.image}"] = entry
        report["n_complete"] += entry["complete"]
        report["n_models"] += len(trained)
    report["config"] = {k: v for k, v in tasks[0].config.to_dict().items() if k not in ("dataset", "image")} if tasks else {}
    atomic_write_bytes(out / "sweep.csv", text.getvalue().encode())
    atomic_write_bytes(out / "sweep.json", json.dumps(report, indent=2, sort_keys=True).encode())
    return report


def _dice_range(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Min, max and mean validation Dice of the sampled models (not the user's own markers, split -1)."""
    val = np.array([r["val_dice"] for r in rows if r["split"] >= 0])
    if not len(val):
        return {}
    return {"val_dice_min": float(val.min()), "val_dice_max": float(val.max()), "val_dice_mean": float(val.mean())}


def _text(value: Any) -> str:
    return f"{value:.6f}" if isinstance(value, float) else str(value)


def read_sweep(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read ``sweep.csv`` (or a sweep folder) into typed rows (as :func:`flimexplore.study.store.read_results`)."""
    path = Path(path)
    if path.is_dir():
        path = path / "sweep.csv"
    with open(path, newline="") as fh:
        return [typed_row(raw) for raw in csv.DictReader(fh)]


@dataclass
class StudyView:
    """A finished study read back from a sweep folder, with what figure builders read.

    ``rows``, ``markers`` (one :class:`~flimexplore.markers.MarkerSet` per
    split), ``config`` (resolved :class:`StudyConfig`) and ``context.image``
    (the marked image), as a :class:`~flimexplore.study.run.StudyResult`
    offers them; ``flimexplore.figures.heatmap_grid`` takes a list of these.
    """

    rows: list[dict[str, Any]]
    markers: list[MarkerSet]
    config: StudyConfig
    context: SimpleNamespace


def study_views(out: str | os.PathLike[str], dataset: str, decoder: str = TRAINED) -> list[StudyView]:
    """The studies of one dataset in a sweep folder, by marked image (for the paper's heatmap grid).

    Parameters
    ----------
    out : path-like
        Sweep folder (holding ``sweep.csv``).
    dataset : str
        As given to the sweep (a preset name or folder path).
    decoder : str, optional
        Whose Dice the rows hold, with other readouts (default: the trained layer's).

    Returns
    -------
    list of StudyView
        One per marked image with rows, in image order.
    """
    from flimexplore.data import load_dataset, split_dataset

    rows = [r for r in read_sweep(out)
            if r["dataset"] == dataset and r["split"] >= 0 and r.get("decoder", TRAINED) == decoder]
    views = []
    data = None
    for image in sorted({r["image"] for r in rows}):
        mine = [r for r in rows if r["image"] == image]
        stored = json.loads((Path(out) / mine[0]["folder"] / "config.json").read_text())["config"]
        config = StudyConfig.from_dict({k: v for k, v in stored.items() if k in StudyConfig.__dataclass_fields__})
        if data is None:
            data = load_dataset(config.dataset, n_images=config.n_images, size=config.size)
        marked = split_dataset(len(data), seed=config.seed).marked[image]
        markers = []
        for s in sorted({r["split"] for r in mine}):
            split = [r for r in mine if r["split"] == s]
            obj = np.array([split[0]["obj_row"], split[0]["obj_col"]])
            markers.append(MarkerSet(obj, np.array([[r["bg_row"], r["bg_col"]] for r in split]), config.radius))
        views.append(StudyView(mine, markers, config, SimpleNamespace(image=data.images[marked])))
    return views
