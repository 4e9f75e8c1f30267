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

__all__ = ["check_seeds_shape", "read_seeds", "write_seeds"]

SWAP_HINT = "x and y look swapped: x is the column and y the row, and the header is 'N xsize(width) ysize(height)'"


def read_seeds(
    path: str | os.PathLike[str], image_shape: tuple[int, int] | None = None
) -> tuple[NDArray[np.int64], tuple[int, int]]:
    r"""Read a LIDS seeds file.

    Parameters
    ----------
    path : str or path-like
        The ``-seeds.txt`` file.
    image_shape : tuple of int, optional
        ``(H, W)`` of the image the file is for; when given, a header of
        another size is refused (and a transposed one, or markers that fit
        only transposed, are named as swapped x/y).

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
        N, a label is not 0 or 1, a marker lies outside the image, or the file
        does not fit `image_shape`.  The message names the file and the first
        offending line.

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
    if image_shape is not None and (height, width) != tuple(image_shape):
        ih, iw = image_shape
        swapped = f"; {SWAP_HINT}" if (width, height) == (ih, iw) else ""
        raise MarkerError(
            f"seeds file {path} is for a {height}x{width} image (xsize {width}, ysize {height}) "
            f"but its image is {ih}x{iw} (width {iw}, height {ih}){swapped}"
        )
    body = lines[1:]
    if len(body) != n:
        raise MarkerError(f"{path}: header announces {n} markers but {len(body)} lines follow")
    rows = np.empty((n, 3), dtype=np.int64)
    for i, line in enumerate(body):
        fields = line.split()
        if len(fields) < 4:
            raise MarkerError(f"{path} line {i + 2}: {line!r} has {len(fields)} fields; expected 'x y id label'")
        x, y, _, label = _integers(" ".join(fields[:4]), path, i + 2)
        if label not in (0, 1):
            raise MarkerError(f"{path} line {i + 2}: {line!r}: label {label} is not 0 (background) or 1 (object)")
        rows[i] = (y, x, label)
    outside = (rows[:, 0] < 0) | (rows[:, 0] >= height) | (rows[:, 1] < 0) | (rows[:, 1] >= width)
    if outside.any():
        i = int(np.argmax(outside))
        fits_swapped = ((rows[:, 1] >= 0) & (rows[:, 1] < height) & (rows[:, 0] >= 0) & (rows[:, 0] < width)).all()
        hint = f"; {SWAP_HINT}" if fits_swapped and width != height else ""
        raise MarkerError(
            f"{path} line {i + 2}: {body[i]!r}: (x {rows[i, 1]}, y {rows[i, 0]}) is outside the {width}x{height} image"
            f" ({sum(outside.tolist())} of {n} markers are){hint}"
        )
    return rows, (height, width)


def check_seeds_shape(
    path: str | os.PathLike[str], markers: NDArray[np.int64], shape: tuple[int, int], mask: NDArray[np.bool_]
) -> None:
    """Refuse a seeds file whose x and y are swapped, judged against the image's mask.

    On a square image a swapped file fits, so its markers are compared with the
    ground truth: when fewer than half of the object markers lie on the object
    but at least 80 % of each class would with x and y swapped, the file is
    refused.  Hand-drawn markers that merely stray over the border pass.

    Parameters
    ----------
    path : str or path-like
        The seeds file, for messages.
    markers : ndarray of shape (N, 3), int64
        Rows ``(row, col, label)`` as read by :func:`read_seeds`.
    shape : tuple of int
        ``(H, W)`` from the file's header.
    mask : ndarray of shape (H, W), bool
        Ground truth of the image the file is for.

    Raises
    ------
    MarkerError
        If the header's size differs from the mask's, or x and y look swapped.
    """
    h, w = mask.shape
    if tuple(shape) != (h, w):
        swapped = f"; {SWAP_HINT}" if tuple(shape) == (w, h) else ""
        raise MarkerError(f"seeds file {path} is for a {shape[0]}x{shape[1]} image but its image is {h}x{w}{swapped}")
    obj, bg = markers[markers[:, 2] == 1], markers[markers[:, 2] == 0]
    if len(obj) == 0 or len(bg) == 0 or h != w:
        return
    on = mask[obj[:, 0], obj[:, 1]].mean()
    swapped_obj = mask[obj[:, 1], obj[:, 0]].mean()
    swapped_bg = 1.0 - mask[bg[:, 1], bg[:, 0]].mean()
    if on < 0.5 and swapped_obj >= 0.8 and swapped_bg >= 0.8:
        raise MarkerError(
            f"seeds file {path}: only {100 * on:.0f} % of its object markers lie on the object, but "
            f"{100 * swapped_obj:.0f} % would with x and y exchanged; {SWAP_HINT}. Fix the file (exchange the first two "
            "columns) and run again"
        )


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
