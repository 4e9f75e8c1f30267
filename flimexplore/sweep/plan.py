"""What a sweep runs: one study per (dataset, marked image), each in its own folder."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flimexplore.data.registry import require_dataset
from flimexplore.errors import ConfigError
from flimexplore.study.config import StudyConfig

__all__ = ["N_MARKED", "SweepTask", "parse_images", "plan_sweep", "task_key"]

N_MARKED = 3  # marked images per dataset (flimexplore.data.split_dataset's n_marked, the paper's 3)


@dataclass(frozen=True)
class SweepTask:
    """One study of a sweep.

    Attributes
    ----------
    config : StudyConfig
        The study's settings (``dataset`` and ``image`` set).
    folder : str
        Its study folder, relative to the sweep's output folder
        (``<dataset>/image<k>``).
    """

    config: StudyConfig
    folder: str

    @property
    def label(self) -> str:
        """Short name for progress lines."""
        return f"{dataset_label(self.config.dataset)} image {self.config.image}"


def dataset_label(dataset: str) -> str:
    """A dataset's name for tables: a preset's name, or a folder's last component."""
    return Path(dataset).name or str(dataset)


def _slug(dataset: str) -> str:
    """A folder name for a dataset: presets by name, folders by name plus a hash of the full path."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", dataset_label(dataset)).strip("._") or "dataset"
    if os.sep in dataset or "/" in dataset or os.path.exists(dataset):
        digest = hashlib.sha256(os.path.abspath(dataset).encode()).hexdigest()[:8]
        return f"{name}-{digest}"
    return name.lower()


def parse_images(images: str | int | Iterable[int]) -> tuple[int, ...]:
    """Marked images of a sweep: ``"all"``, ``"0,2"``, an int or a sequence of ints.

    Raises
    ------
    ConfigError
        If a value is not a whole number in ``0 .. N_MARKED - 1`` or repeats.
    """
    if isinstance(images, str):
        text = images.strip().lower()
        if text == "all":
            return tuple(range(N_MARKED))
        try:
            values = [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"images (--images) must be 'all' or numbers like 0,1,2, got {images!r}") from None
    elif isinstance(images, int) and not isinstance(images, bool):
        values = [images]
    else:
        values = list(images)
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < N_MARKED]
    if not values or bad or len(set(values)) != len(values):
        raise ConfigError(
            f"images (--images) must be distinct marked images from 0 to {N_MARKED - 1} (or 'all'), got {images!r}"
        )
    return tuple(values)


def plan_sweep(
    datasets: Sequence[str | os.PathLike[str]] | str,
    images: str | int | Iterable[int] = "all",
    base_config: StudyConfig | None = None,
) -> list[SweepTask]:
    """Every study of a sweep, datasets first, then marked images.

    Parameters
    ----------
    datasets : sequence of str or path-like
        Preset names or folder paths.
    images : "all", str, int or sequence of int, optional
        Marked images (see :func:`parse_images`).
    base_config : StudyConfig, optional
        The other settings of every study (its ``dataset`` and ``image`` are
        replaced).

    Returns
    -------
    list of SweepTask

    Raises
    ------
    ConfigError
        If there is no dataset, one repeats, or a setting is out of range.
    DatasetError
        If a name is neither a preset nor an existing path (checked before
        any work starts).
    """
    if isinstance(datasets, str | os.PathLike):
        datasets = [datasets]
    names = [os.fspath(d) for d in datasets]
    if not names:
        raise ConfigError("a sweep needs at least one dataset (--dataset NAME|PATH)")
    for name in names:
        require_dataset(name)
    slugs = [_slug(d) for d in names]
    if len(set(slugs)) != len(slugs):
        raise ConfigError(f"datasets (--dataset) repeat: {names}")
    base = (base_config or StudyConfig()).validate()
    return [
        SweepTask(base.replace(dataset=d, image=i).validate(), f"{slug}/image{i}")
        for d, slug in zip(names, slugs, strict=True)
        for i in parse_images(images)
    ]


def task_key(kind: str, config: StudyConfig, ids: Sequence[int], device: str) -> str:
    """A Dask task key derived from the settings (so identical work is never deduplicated wrongly)."""
    text = json.dumps([config.to_dict(), list(ids), device], sort_keys=True)
    first = f"{ids[0]}-{ids[-1]}" if ids else "plan"
    return f"flimexplore-{kind}-{first}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def finished(folder: Path, config: StudyConfig) -> dict[str, Any] | None:
    """The summary of a complete study folder with these settings, or None.

    A folder counts as complete when its ``summary.json`` says so and its
    ``config.json`` holds the asked settings (settings left to the dataset,
    ``None``, match any value).
    """
    try:
        summary = json.loads((folder / "summary.json").read_text())
        stored = json.loads((folder / "config.json").read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(summary, dict) or summary.get("complete") is not True:
        return None
    asked, defaults = config.to_dict(), StudyConfig().to_dict()
    if any(v is not None and stored.get(k, defaults.get(k)) != v for k, v in asked.items()):
        return None
    return summary
