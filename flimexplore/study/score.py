"""Score given marker pairs exactly as a study does (``flimexplore score``).

A pairs file is either

- a CSV file with one pair per line, ``obj_row,obj_col,bg_row,bg_col``
  (a header line is optional; a header that names these four columns picks
  them by name, so a study's own ``results.csv`` is a pairs file too; of a
  ``results.csv`` with other readouts, one row per pair and readout, the
  ``trained`` rows are read), or
- a LIDS ``-seeds.txt`` file (:func:`flimexplore.data.read_seeds`) holding
  the markers of the marked image: any number of strokes or disks per class
  (every marked pixel of a class is that class's marker).

The pairs are grouped into splits the way a study forms them: pairs that
share the fixed marker (the object marker; the background marker with
``vary="object"``) form one split, numbered in order of first appearance,
and ``bg_index`` counts the pairs of a split in file order.  Each model's
seed is then a study's: ``model_seed(seed, image, split, bg_index)``.
Scoring the pairs of a finished study, in its ``results.csv`` order and with
its settings, therefore trains the same models in the same chunks and
reproduces its scores exactly.  (Two splits of a study that drew the same
fixed marker by chance would be merged into one, and get other seeds.)

A seeds file is scored as drawn (markers of any shape, through
:meth:`StudyContext.evaluate_markers`): one model, split 0, whose
``obj_row, obj_col`` (``bg_row, bg_col``) in ``results.csv`` are the marker
pixel nearest the marker's centroid; ``--radius`` plays no part in it.
Seeds files of several marked images train one model together:
:mod:`flimexplore.study.score_seeds` (``flimexplore score --seeds``).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from flimexplore.errors import MarkerError
from flimexplore.markers import MarkerPixels, MarkerSet, ObjectMarkerSet
from flimexplore.study.config import StudyConfig
from flimexplore.study.context import StudyContext
from flimexplore.study.run import Progress, StudyResult, _resolved, run_study

__all__ = ["MarkerPairs", "check_pairs", "group_pairs", "read_pairs", "score_pairs", "score_pairs_all"]

PAIR_COLUMNS = ("obj_row", "obj_col", "bg_row", "bg_col")


@dataclass(frozen=True, eq=False)
class MarkerPairs:
    """Marker pairs read from a file.

    Attributes
    ----------
    obj, bg : ndarray of shape (n, 2), int64
        Object and background centres ``(row, col)``.
    lines : ndarray of shape (n,), int64
        1-based line of each pair in ``source`` (for error messages).
    source : str
        The file they were read from.
    shape : tuple of int or None
        ``(H, W)`` the file declares (seeds files), else None.
    pixels : tuple of two ndarray of shape (K, 2) or None
        A seeds file's object and background pixels (then ``obj`` and ``bg``
        hold the single pair's pixels nearest the markers' centroids).
    """

    obj: NDArray[np.int64]
    bg: NDArray[np.int64]
    lines: NDArray[np.int64]
    source: str
    shape: tuple[int, int] | None = None
    pixels: tuple[NDArray[np.int64], NDArray[np.int64]] | None = None

    def __len__(self) -> int:
        return len(self.obj)


def read_pairs(path: str | os.PathLike[str]) -> MarkerPairs:
    """Read a pairs file (CSV, or a LIDS ``-seeds.txt`` of the marked image, scored as one model).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    MarkerPairs

    Raises
    ------
    MarkerError
        If the file cannot be read or a line is not four integers, or a seeds
        file holds no pixel of a class; the message names the file and the line.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "pairs.csv"
    >>> _ = p.write_text("obj_row,obj_col,bg_row,bg_col\\n40,50,10,12\\n")
    >>> read_pairs(p).obj.tolist(), read_pairs(p).lines.tolist()
    ([[40, 50]], [2])
    """
    path = Path(path)
    if path.name.endswith("-seeds.txt"):
        return _read_seeds_pairs(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise MarkerError(f"cannot read pairs file {path}: {err}") from err
    rows = [(i + 1, fields) for i, fields in enumerate(csv.reader(text.splitlines()))]
    rows = [(n, [f.strip() for f in fields]) for n, fields in rows if fields and "".join(fields).strip() and not fields[0].lstrip().startswith("#")]
    if not rows:
        raise MarkerError(f"{path} holds no marker pairs; expected lines 'obj_row,obj_col,bg_row,bg_col'")
    take = [0, 1, 2, 3]
    if not _all_int(rows[0][1]):  # a header
        n, header = rows.pop(0)
        names = [h.lower() for h in header]
        if not set(PAIR_COLUMNS) <= set(names):
            raise MarkerError(
                f"{path} line {n}: header {','.join(header)!r} does not name the columns "
                f"{','.join(PAIR_COLUMNS)}; give them, or no header"
            )
        take = [names.index(c) for c in PAIR_COLUMNS]
        if "decoder" in names:  # a results.csv with other readouts: one row per pair and readout
            at = names.index("decoder")
            rows = [(n, f) for n, f in rows if at < len(f) and f[at] == "trained"]
        if not rows:
            raise MarkerError(f"{path} holds a header but no marker pairs")
    values = np.empty((len(rows), 4), dtype=np.int64)
    for j, (n, fields) in enumerate(rows):
        picked = [fields[k] for k in take if k < len(fields)]
        if len(fields) < max(take) + 1 or (take == [0, 1, 2, 3] and len(fields) != 4) or not _all_int(picked):
            raise MarkerError(
                f"{path} line {n}: {','.join(fields)!r} is not four integers obj_row,obj_col,bg_row,bg_col"
            )
        values[j] = [int(float(v)) for v in picked]
    lines = np.array([n for n, _ in rows], dtype=np.int64)
    return MarkerPairs(values[:, :2].copy(), values[:, 2:].copy(), lines, str(path))


def _all_int(fields: list[str]) -> bool:
    try:
        return all(float(f) == int(float(f)) for f in fields)
    except (ValueError, OverflowError):
        return False


def _read_seeds_pairs(path: Path) -> MarkerPairs:
    from flimexplore.data import read_seeds

    markers, shape = read_seeds(path)
    centres, pixels = [], []
    for label, name in ((1, "object"), (0, "background")):
        px = markers[markers[:, 2] == label, :2]
        if not len(px):
            raise MarkerError(
                f"{path} holds no {name} marker pixels (label {label}); a model needs both classes "
                "(to add markers of other marked images, use --seeds FILE --image K, once per image)"
            )
        mean = px.mean(axis=0)
        centres.append(px[np.argmin(((px - mean) ** 2).sum(axis=1))])
        pixels.append(px.astype(np.int64))
    first = int(np.flatnonzero(markers[:, 2] == 1)[0]) + 2  # the line of the first object pixel
    return MarkerPairs(
        np.asarray(centres[0], np.int64)[None], np.asarray(centres[1], np.int64)[None],
        np.array([first], np.int64), str(path), (int(shape[0]), int(shape[1])), (pixels[0], pixels[1]),
    )


def check_pairs(pairs: MarkerPairs, mask: NDArray[np.bool_], radius: int, stem: str = "") -> None:
    """Refuse pairs that do not fit the marked image, naming the file and the line.

    Every centre must lie inside the image with its whole disk of ``radius``
    (a disk cut by the image border would train on fewer pixels than the
    study's markers), the object centre on the object and the background
    centre on the background of ``mask``.

    Raises
    ------
    MarkerError
    """
    h, w = mask.shape
    what = f"the {h}x{w} marked image{' ' + stem if stem else ''}"
    if pairs.shape is not None and tuple(pairs.shape) != (h, w):
        raise MarkerError(
            f"{pairs.source}: the seeds file is for a {pairs.shape[0]}x{pairs.shape[1]} image, not {what}; "
            "use --image/--dataset of the image it was drawn on"
        )
    if pairs.pixels is not None:  # a seeds file: markers as drawn (strays over the border are fine), no radius
        for name, px, want in (("object", pairs.pixels[0], True), ("background", pairs.pixels[1], False)):
            off = px[(px[:, 0] < 0) | (px[:, 0] >= h) | (px[:, 1] < 0) | (px[:, 1] >= w)]
            if len(off):
                raise MarkerError(f"{pairs.source}: {name} pixel ({off[0, 0]}, {off[0, 1]}) is outside {what}")
            on = float((mask[px[:, 0], px[:, 1]] == want).mean())
            if on < 0.5:
                raise MarkerError(
                    f"{pairs.source}: {100 * (1 - on):.0f} % of the {name} marker pixels lie on the "
                    f"{'background' if want else 'object'} of {what}; were the labels swapped?"
                )
        return
    if 2 * radius + 1 > min(h, w):
        raise MarkerError(f"{pairs.source}: radius {radius} is too big for {what}; use a smaller --radius")
    for obj, bg, line in zip(pairs.obj, pairs.bg, pairs.lines, strict=True):
        for name, (r, c), want in (("object", obj, True), ("background", bg, False)):
            where = f"{pairs.source} line {line}: {name} marker ({r}, {c})"
            if not (0 <= r < h and 0 <= c < w):
                raise MarkerError(f"{where} is outside {what}")
            if bool(mask[r, c]) != want:
                raise MarkerError(f"{where} lies on the {'background' if want else 'object'} of {what}")
            if not (radius <= r < h - radius and radius <= c < w - radius):
                raise MarkerError(
                    f"{where}: its disk of radius {radius} reaches outside {what}; move it at least "
                    f"{radius} px from the border or use a smaller --radius"
                )


def group_pairs(
    pairs: MarkerPairs, radius: int, vary: str = "background"
) -> list[MarkerSet] | list[ObjectMarkerSet] | list[MarkerPixels]:
    """Group pairs into splits by their fixed marker, in order of first appearance (see module notes).

    Returns
    -------
    list of MarkerSet (``vary="background"``) or of ObjectMarkerSet (``vary="object"``);
    one MarkerPixels for a seeds file.
    """
    if pairs.pixels is not None:
        return [MarkerPixels(*pairs.pixels)]
    fixed, varied = (pairs.bg, pairs.obj) if vary == "object" else (pairs.obj, pairs.bg)
    order: dict[tuple[int, int], list[int]] = {}
    for i, f in enumerate(fixed):
        order.setdefault((int(f[0]), int(f[1])), []).append(i)
    out: list[Any] = []
    for key, members in order.items():
        centre, others = np.array(key, np.int64), varied[members].astype(np.int64)
        out.append(ObjectMarkerSet(centre, others, radius) if vary == "object" else MarkerSet(centre, others, radius))
    return out


def score_pairs(
    config: StudyConfig,
    pairs: MarkerPairs | str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    device: str = "auto",
    context: StudyContext | None = None,
    **run_options: Any,
) -> Generator[Progress, None, StudyResult]:
    """Train and score given marker pairs like a study; a generator like :func:`run_study`.

    Parameters
    ----------
    config : StudyConfig
        Dataset, marked image, radius, epochs, lr, seed and ``vary`` (which
        marker of a pair is the varied one); ``splits``, ``n_bg`` and
        ``dense`` are set from the pairs.
    pairs : MarkerPairs or path-like
        The pairs, or a pairs file (see :func:`read_pairs`).
    out : path-like, optional
        Results folder, laid out like a study's (``results.csv`` with the same
        columns, ``models/``, heatmaps, ``summary.json``); rerunning resumes.
    device : str, optional
    context : StudyContext, optional
        Prepared data of the same dataset, image and seed.
    **run_options
        ``engine``, ``model_chunk``, ``memory_mb`` of :func:`run_study`.

    Yields
    ------
    Progress

    Returns
    -------
    StudyResult

    Raises
    ------
    MarkerError
        If a pair does not fit the marked image (see :func:`check_pairs`).
    """
    if not isinstance(pairs, MarkerPairs):
        pairs = read_pairs(pairs)
    sizes = [len(s) for s in group_pairs(pairs, 1, config.vary)]
    wanted = config.replace(splits=len(sizes), n_bg=max(sizes), dense=False, dense_spacing=None).validate()
    if context is None or context.config.to_dict() != _resolved(wanted, context).to_dict():
        same_data = context is not None and (context.config.dataset, context.config.n_images) == (wanted.dataset, wanted.n_images)
        context = StudyContext(wanted, device, dataset=context.dataset if same_data else None)
    resolved = context.config
    check_pairs(pairs, context.mask, resolved.radius, context.stem)
    sets = group_pairs(pairs, resolved.radius, resolved.vary)
    return (yield from run_study(resolved, out, device=device, context=context, markers=sets, **run_options))


def score_pairs_all(config: StudyConfig, pairs: MarkerPairs | str | os.PathLike[str], out: Any = None, **kwargs: Any) -> StudyResult:
    """Score pairs to the end, ignoring progress events (see :func:`score_pairs`)."""
    gen = score_pairs(config, pairs, out, **kwargs)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
