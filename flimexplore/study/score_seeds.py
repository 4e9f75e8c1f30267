"""Score the markers a user drew: LIDS seeds files on one or several marked images (``flimexplore score --seeds``).

A FLIM user draws several strokes per class on a few training images and
saves one ``<stem>-seeds.txt`` per image (the LIDS layout keeps them in
``markers/``).  :func:`score_seeds` trains **one** model from all of them,
exactly as FLIM does (:meth:`~flimexplore.study.context.StudyContext.evaluate_image_markers`:
the normalisation over every marked pixel of every image, each class's
patches from every image, the decision layer on every image's mask), scores
it on the validation and test images like a study's model, and writes a
study folder (``results.csv`` with one row, ``summary.json``, the heatmap of
the first marked image, ``models/``).

Which image a file belongs to: its ``--image K`` (given once per file, in
order), or else its name ``<stem>-seeds.txt``.  Only the split's marked
images can be marked: held-out data stays held out, so a file for a
validation or test image is refused, naming the file and the images that can
be marked.  Every problem is found before anything is written.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from flimexplore.data import Dataset, Split, load_dataset, read_seeds, split_dataset
from flimexplore.data.folder import SEEDS_SUFFIX
from flimexplore.data.seeds import check_seeds_shape
from flimexplore.errors import MarkerError
from flimexplore.study.config import StudyConfig
from flimexplore.study.context import StudyContext
from flimexplore.study.marked import ImageMarkers
from flimexplore.study.run import Progress, StudyResult, _resolved, run_study

__all__ = ["read_image_markers", "score_seeds", "score_seeds_all", "seeds_files"]

PathLike = str | os.PathLike[str]


def seeds_files(seeds: PathLike | Sequence[PathLike]) -> list[Path]:
    """The seeds files of ``--seeds``: the files given, or every ``<stem>-seeds.txt`` of one folder.

    Raises
    ------
    MarkerError
        If a path does not exist, or a folder holds no seeds file.
    """
    paths = [Path(seeds)] if isinstance(seeds, str | os.PathLike) else [Path(p) for p in seeds]
    if not paths:
        raise MarkerError("no seeds file given; give --seeds FILE (repeat it) or --seeds DIR")
    if len(paths) == 1 and paths[0].is_dir():
        found = sorted(paths[0].glob(f"*{SEEDS_SUFFIX}"))
        if not found:
            raise MarkerError(f"--seeds {paths[0]}: the folder holds no <stem>{SEEDS_SUFFIX} file")
        return found
    for p in paths:
        if p.is_dir():
            raise MarkerError(f"--seeds {p}: a folder can only be given alone; give its files one by one instead")
        if not p.is_file():
            raise MarkerError(f"--seeds {p}: no such seeds file")
    return paths


def _marked_list(dataset: Dataset, split: Split) -> str:
    return ", ".join(f"{dataset.stems[i]!r} (--image {k})" for k, i in enumerate(split.marked))


def _image_of(path: Path, dataset: Dataset, split: Split, seed: int) -> int:
    """The marked-image number a seeds file names by its ``<stem>-seeds.txt``."""
    name = path.name
    fix = f"give --image K once per --seeds file, or name the file <stem>{SEEDS_SUFFIX} after a marked image"
    if not name.endswith(SEEDS_SUFFIX):
        raise MarkerError(f"seeds file {path}: its name does not say which image it marks; {fix} ({_marked_list(dataset, split)})")
    stem = name[: -len(SEEDS_SUFFIX)]
    if stem not in dataset.stems:
        raise MarkerError(
            f"seeds file {path} is for image {stem!r}, which is not an image of dataset {dataset.name!r}; "
            f"{fix} ({_marked_list(dataset, split)})"
        )
    index = dataset.stems.index(stem)
    if index in split.marked:
        return split.marked.index(index)
    part = "validation" if index in split.val else "test"
    other = next((s for s in range(seed + 1, seed + 200) if index in split_dataset(len(dataset), seed=s).marked), None)
    instead = f"; --seed {other} draws a split that marks it" if other is not None else ""
    raise MarkerError(
        f"seeds file {path} marks {stem!r}, a {part} image of this split (--seed {seed}): validation and test images "
        f"are held out and never marked; give markers of the marked images {_marked_list(dataset, split)}, or move "
        f"the file out of the folder{instead}"
    )


def read_image_markers(
    dataset: Dataset,
    split: Split,
    seeds: PathLike | Sequence[PathLike],
    images: Sequence[int] | None = None,
    seed: int = 0,
) -> tuple[ImageMarkers, list[Path]]:
    """Read one model's markers from seeds files, one file per marked image.

    Parameters
    ----------
    dataset : Dataset
    split : Split
        The study's split (only its marked images can be marked).
    seeds : path-like or sequence of path-like
        The seeds files, or one folder holding ``<stem>-seeds.txt`` files (e.g. a LIDS ``markers/``).
    images : sequence of int, optional
        The marked-image number of each file, in order (``--image K`` per ``--seeds FILE``);
        default: each file's ``<stem>``.
    seed : int, optional
        The split's seed (for messages).

    Returns
    -------
    markers : ImageMarkers
        Images in the order of the files.
    files : list of Path

    Raises
    ------
    MarkerError
        Naming the file and the fix: a stem that is not in the dataset, a
        validation or test image, an image given twice, an empty file,
        labels other than 0/1, pixels off the image, x and y swapped, or no
        pixel of a class on any image.
    """
    files = seeds_files(seeds)
    if images is not None and len(images) != len(files):
        raise MarkerError(
            f"{len(files)} seeds files but {len(images)} --image values; give one --image K per --seeds FILE, "
            "in the same order (or none: then each file's <stem> names its image)"
        )
    rows: dict[int, NDArray[np.int64]] = {}
    owner: dict[int, Path] = {}
    for j, path in enumerate(files):
        k = int(images[j]) if images is not None else _image_of(path, dataset, split, seed)
        if not 0 <= k < len(split.marked):
            raise MarkerError(
                f"seeds file {path}: --image {k} does not exist; the split has {len(split.marked)} marked images "
                f"({_marked_list(dataset, split)})"
            )
        if k in owner:
            raise MarkerError(f"seeds files {owner[k]} and {path} both mark image {k}; merge them into one file per image")
        mask = dataset.masks[split.marked[k]]
        markers, shape = read_seeds(path, image_shape=mask.shape)
        check_seeds_shape(path, markers, shape, mask)
        if not len(markers):
            raise MarkerError(f"seeds file {path} holds no marker pixel (its header says 0); draw markers or leave it out")
        rows[k], owner[k] = markers, path
    where = ", ".join(str(p) for p in files)
    shapes = {k: tuple(dataset.masks[i].shape) for k, i in enumerate(split.marked)}
    return ImageMarkers.from_rows(rows).check(shapes, where=f"seeds files {where}"), files


def score_seeds(
    config: StudyConfig,
    seeds: PathLike | Sequence[PathLike],
    out: PathLike | None = None,
    *,
    images: Sequence[int] | None = None,
    device: str = "auto",
    context: StudyContext | None = None,
    **run_options: Any,
) -> Generator[Progress, None, StudyResult]:
    """Train and score one model from seeds files on one or several marked images; a generator like ``run_study``.

    Parameters
    ----------
    config : StudyConfig
        Dataset, seed (the split), epochs, FLIM settings; ``image`` becomes
        the first file's marked image (the one the heatmap shows).
    seeds : path-like or sequence of path-like
        See :func:`read_image_markers`.
    out : path-like, optional
        Results folder, laid out like a study's; rerunning resumes.
    images : sequence of int, optional
        The marked-image number of each file (default: the files' stems).
    device : str, optional
    context : StudyContext, optional
        Prepared data of the same dataset and seed.
    **run_options
        ``engine``, ``model_chunk``, ``memory_mb`` of :func:`~flimexplore.study.run.run_study`.

    Yields
    ------
    Progress

    Returns
    -------
    StudyResult
        One model (split 0): ``results.csv``'s positions are the marked pixels
        nearest each class's centroid on the first image holding that class.

    Raises
    ------
    MarkerError
        If a file does not fit (see :func:`read_image_markers`); nothing is written then.
    """
    config.validate()
    same = context is not None and (context.config.dataset, context.config.n_images, context.config.seed, context.config.size) == (
        config.dataset, config.n_images, config.seed, config.size)
    dataset = context.dataset if same else load_dataset(
        config.dataset, n_images=config.n_images, object_label=config.object_label, size=config.size)
    split = split_dataset(len(dataset), seed=config.seed)
    markers, _ = read_image_markers(dataset, split, seeds, images, config.seed)
    wanted = config.replace(image=markers.images[0], splits=1, n_bg=1, dense=False, dense_spacing=None).validate()
    if context is None or context.config.to_dict() != _resolved(wanted, context).to_dict():
        context = StudyContext(wanted, device, dataset=dataset)
    return (yield from run_study(context.config, out, device=device, context=context, markers=[markers], **run_options))


def score_seeds_all(config: StudyConfig, seeds: PathLike | Sequence[PathLike], out: Any = None, **kwargs: Any) -> StudyResult:
    """Score seeds files to the end, ignoring progress events (see :func:`score_seeds`)."""
    gen = score_seeds(config, seeds, out, **kwargs)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
