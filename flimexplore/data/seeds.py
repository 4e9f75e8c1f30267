"""Read and write marker files in the LIDS seeds format (``<stem>-seeds.txt``).

The first line is ``N xsize ysize`` (marker pixel count, image width, image
height).  Each of the next N lines is ``x y id label`` with x the column, y the
row, id usually -1 and label 0 for background or 1 for object; readers in the
wild append extra fields (a handicap), which are ignored here.  In memory,
markers are an int64 array of rows ``(row, col, label)``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from flimexplore.data._dataset import check_markers
from flimexplore.errors import MarkerError

__all__ = ["read_seeds", "write_seeds"]


def read_seeds(path: str | os.PathLike[str]) -> tuple[NDArray[np.int64], tuple[int, int]]:
    r"""Read a LIDS seeds file.

    Parameters
    ----------
    path : str or path-like
        The ``-seeds.txt`` file.

    Returns
    -------
    markers : ndarray of shape (N, 3), dtype int64
        Rows ``(row, col, label)`` in file order; label 0 = background, 1 = object.
    shape : tuple of int
        ``(H, W)`` of the image, from the header's ysize and xsize.

    Raises
    ------
    MarkerError
        If the file cannot be read, the header is not ``N xsize ysize``, a line
        has fewer than 4 fields or a non-integer, the number of lines differs from
        N, a label is not 0 or 1, or a marker lies outside the image.  The message
        names the file and the first offending line.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a-seeds.txt"
    >>> _ = p.write_text("2 5 4\n1 2 -1 1\n4 0 -1 0\n")
    >>> markers, shape = read_seeds(p)
    >>> markers.tolist(), shape
    ([[2, 1, 1], [0, 4, 0]], (4, 5))
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise MarkerError(f"cannot read seeds file {path}: {err}") from err
    lines = text.rstrip().splitlines()
    if not lines:
        raise MarkerError(f"{path} is empty; expected a header 'N xsize ysize'")
    header = _integers(lines[0], path, 1)
    if len(header) != 3 or min(header) < 0 or min(header[1:]) < 1:
        raise MarkerError(f"{path} line 1: header {lines[0]!r} is not 'N xsize ysize' (3 positive integers)")
    n, width, height = header
    body = lines[1:]
    if len(body) != n:
        raise MarkerError(f"{path}: header announces {n} markers but {len(body)} lines follow")
    rows = np.empty((n, 3), dtype=np.int64)
    for i, line in enumerate(body):
        fields = line.split()
        if len(fields) < 4:
            raise MarkerError(f"{path} line {i + 2}: {line!r} has {len(fields)} fields; expected 'x y id label'")
        x, y, _, label = _integers(" ".join(fields[:4]), path, i + 2)
        if not (0 <= x < width and 0 <= y < height):
            raise MarkerError(f"{path} line {i + 2}: {line!r}: (x {x}, y {y}) is outside the {width}x{height} image")
        if label not in (0, 1):
            raise MarkerError(f"{path} line {i + 2}: {line!r}: label {label} is not 0 (background) or 1 (object)")
        rows[i] = (y, x, label)
    return rows, (height, width)


def write_seeds(path: str | os.PathLike[str], markers: np.ndarray, shape: tuple[int, int]) -> None:
    """Write markers to a LIDS seeds file, atomically.

    The text goes to a temporary file in the same folder, which then replaces
    `path`, so a reader never sees a half-written file.

    Parameters
    ----------
    path : str or path-like
        The ``-seeds.txt`` file to create or replace; its folder must exist.
    markers : array_like of shape (N, 3), integer dtype
        Rows ``(row, col, label)``; label 0 = background, 1 = object.
    shape : tuple of int
        ``(H, W)`` of the image the markers belong to.

    Raises
    ------
    MarkerError
        If the markers are malformed or lie outside `shape`, or the file
        cannot be written.
    """
    path = Path(path)
    height, width = (int(s) for s in shape)
    rows = check_markers(markers, (height, width), where=f"markers for {path}")
    lines = [f"{len(rows)} {width} {height}"]
    lines += [f"{c} {r} -1 {label}" for r, c, label in rows.tolist()]
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise MarkerError(f"cannot write seeds file {path}: {err}") from err
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise MarkerError(f"cannot write seeds file {path}: {err}") from err


def _integers(line: str, path: Path, number: int) -> list[int]:
    """Parse the whitespace-separated integers of one line, or raise MarkerError."""
    try:
        return [int(f) for f in line.split()]
    except ValueError:
        raise MarkerError(f"{path} line {number}: {line!r} holds a non-integer field") from None
