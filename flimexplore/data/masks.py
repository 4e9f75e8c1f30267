"""How mask files become boolean object masks: object values, lossy masks, label images.

The conventions of the datasets flimexplore is pointed at differ:

* binary masks (Fish4Knowledge black/white, LIDS ``label/``): two values,
  non-zero = object, the default;
* label images (REFUGE ``Disc_Cup_Masks``: 0 = optic cup, 128 = optic-disc
  rim, 255 = background): the object is a set of values, chosen with
  ``object_label`` (``--object-label 0,128`` for the optic disc);
* lossy copies (JPEG) of binary masks: compression noise near 0 and near the
  maximum; "non-zero" would turn the noise into object, so they are
  thresholded at half their value range.

:func:`read_mask` decides per file and says what it did;
:func:`warn_about_masks` turns the readings of a dataset into one
:class:`~flimexplore.errors.MaskWarning` per kind of guess, naming the files
and the option that removes the guess.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from flimexplore.errors import DatasetError, MaskWarning

__all__ = ["LABEL_MAX_VALUES", "MaskReading", "normalise_object_label", "read_mask", "warn_about_masks"]

LABEL_MAX_VALUES = 8
"""A mask with 3 to this many distinct values is taken for a label image; more values, for a lossy mask."""
NEAR_END = 0.25
"""Values within this fraction of the value range from the minimum or the maximum are "near an end"."""
LOSSY_SHARE = 0.95
"""A many-valued mask is lossy when at least this share of its pixels is near an end."""
LARGE_OBJECT = 0.5
"""Object share of the image above which a mask may be inverted."""

Kind = Literal["binary", "selected", "labels", "lossy", "grey"]


@dataclass(frozen=True, eq=False)
class MaskReading:
    """One mask file read into a boolean mask, with what was guessed.

    Attributes
    ----------
    mask : ndarray of shape (H, W), bool
        True = object.
    kind : {"binary", "selected", "labels", "lossy", "grey"}
        ``binary``: at most two values, non-zero = object; ``selected``: the
        ``object_label`` values are object; ``labels``: 3 to
        :data:`LABEL_MAX_VALUES` values, non-zero = object; ``lossy`` and
        ``grey``: many values (mostly near the ends, or not), thresholded at
        half the value range.
    values : tuple of float
        The distinct values when there are at most :data:`LABEL_MAX_VALUES`, else empty.
    changed : int
        Pixels whose class differs from "non-zero = object" (thresholded masks).
    threshold : float
        The threshold of thresholded masks (object = value above it); NaN otherwise.
    """

    mask: NDArray[np.bool_]
    kind: Kind
    values: tuple[float, ...] = ()
    changed: int = 0
    threshold: float = float("nan")

    @property
    def object_share(self) -> float:
        """Fraction of the pixels that are object."""
        return float(self.mask.mean())


def normalise_object_label(value: object) -> tuple[int, ...] | None:
    """Object values as a sorted tuple of ints, from a tuple, list, int or ``"0,128"``.

    Raises
    ------
    DatasetError
        If a value is not a non-negative integer or none is given.

    Examples
    --------
    >>> normalise_object_label("128, 0"), normalise_object_label(255), normalise_object_label(None)
    ((0, 128), (255,), None)
    """
    if value is None:
        return None
    items: Sequence[object]
    if isinstance(value, str):
        items = [v for v in value.replace(" ", "").split(",") if v]
    elif isinstance(value, int | np.integer):
        items = [value]
    else:
        items = list(value)  # type: ignore[call-overload]
    out = []
    for v in items:
        try:
            number = int(v)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            number = -1
        if isinstance(v, bool) or number < 0 or (not isinstance(v, str) and number != v):
            raise DatasetError(f"object_label (--object-label) must be non-negative integers like 0,128; got {value!r}")
        out.append(number)
    if not out:
        raise DatasetError(f"object_label (--object-label) names no value; got {value!r}")
    return tuple(sorted(set(out)))


def read_mask(raw: np.ndarray, object_label: tuple[int, ...] | None, where: str) -> MaskReading:
    """Turn the pixel values of a mask file into a boolean mask.

    Parameters
    ----------
    raw : ndarray of shape (H, W) or (H, W, C), any real dtype
        The decoded file, alpha already dropped.  Colour masks whose channels
        are equal are read as grey; other colour masks by their largest channel.
    object_label : tuple of int or None
        Values that are object; None: "non-zero = object" for masks of at most
        :data:`LABEL_MAX_VALUES` values, half the value range for masks with more.
    where : str
        The file, for messages.

    Returns
    -------
    MaskReading

    Raises
    ------
    DatasetError
        If `object_label` is given for a colour mask whose channels differ.

    Examples
    --------
    >>> jpeg_like = np.array([[0, 3, 250, 255, 1, 2, 4, 5, 252, 251]] * 2, np.uint8)
    >>> r = read_mask(jpeg_like, None, "m.jpg")
    >>> r.kind, r.mask[0].astype(int).tolist(), r.changed
    ('lossy', [0, 0, 1, 1, 0, 0, 0, 0, 1, 1], 10)
    """
    grey = raw
    if raw.ndim == 3:
        same = all(np.array_equal(raw[..., 0], raw[..., k]) for k in range(1, raw.shape[2]))
        if not same and object_label is not None:
            raise DatasetError(
                f"{where}: --object-label selects grey values, but this mask's colour channels differ; "
                "save the masks as grey images"
            )
        grey = raw[..., 0] if same else raw.max(axis=2)
    if object_label is not None:
        return MaskReading(np.isin(grey, object_label), "selected", _few(grey))
    values = np.unique(grey)
    if len(values) <= LABEL_MAX_VALUES:
        kind: Kind = "binary" if len(values) <= 2 else "labels"
        return MaskReading(grey != 0, kind, tuple(float(v) for v in values))
    lo, hi = float(values[0]), float(values[-1])
    threshold = (lo + hi) / 2
    g = grey.astype(np.float64)
    mask = g > threshold
    near = (g <= lo + NEAR_END * (hi - lo)) | (g >= hi - NEAR_END * (hi - lo))
    kind = "lossy" if near.mean() >= LOSSY_SHARE else "grey"
    return MaskReading(mask, kind, (), int((mask != (grey != 0)).sum()), threshold)


def warn_about_masks(names: Sequence[str], readings: Sequence[MaskReading], object_label: tuple[int, ...] | None) -> list[str]:
    """Warn once per kind of guess made while reading a dataset's masks.

    Parameters
    ----------
    names : sequence of str
        The mask files' names, one per reading.
    readings : sequence of MaskReading
    object_label : tuple of int or None
        What the masks were read with.

    Returns
    -------
    list of str
        The warnings' messages (also given to :func:`warnings.warn` as
        :class:`~flimexplore.errors.MaskWarning`), for a dataset's description.
    """
    messages = []
    pairs = list(zip(names, readings, strict=True))
    thresholded = [(n, r) for n, r in pairs if r.kind in ("lossy", "grey")]
    if thresholded:
        total = sum(r.mask.size for _, r in thresholded)
        changed = sum(r.changed for _, r in thresholded)
        listed = ", ".join(f"{n} ({r.changed} px)" for n, r in thresholded[:5])
        lossy = sum(r.kind == "lossy" for _, r in thresholded)
        messages.append(
            f"{_count(thresholded, 'mask')} {_pl(thresholded, 'hold', 'holds')} more than {LABEL_MAX_VALUES} grey values "
            f"({lossy} like lossy, e.g. JPEG, copies of binary masks) and {_pl(thresholded, 'were', 'was')} "
            "thresholded at half the value range"
            f"; {changed} of {total} pixels ({100 * changed / total:.1f} %) differ from 'non-zero = object': "
            f"{listed}{_more(thresholded)}. Save masks as PNG, or pass --object-label V[,V...] for label images"
        )
    labels = [(n, r) for n, r in pairs if r.kind == "labels"]
    if labels:
        listed = ", ".join(f"{n} (values {_values(r.values)})" for n, r in labels[:5])
        messages.append(
            f"{_count(labels, 'mask')} {_pl(labels, 'hold', 'holds')} 3 to {LABEL_MAX_VALUES} distinct values, like a "
            f"label image, and {_pl(labels, 'were', 'was')} read as 'non-zero = object': {listed}{_more(labels)}. Pass --object-label V[,V...] to choose the object "
            "values (REFUGE optic disc: --object-label 0,128)"
        )
    if object_label is None:
        large = [(n, r) for n, r in pairs if r.object_share > LARGE_OBJECT]
        if large:
            listed = ", ".join(f"{n} ({100 * r.object_share:.0f} %)" for n, r in large[:5])
            messages.append(
                f"in {_count(large, 'mask')} the object covers more than half of the image: {listed}{_more(large)}. "
                "If these masks are inverted (object = 0) pass --object-label 0; for a label image pass the object "
                "values with --object-label V[,V...]"
            )
    else:
        empty = [n for n, r in pairs if not r.mask.any()]
        if len(empty) == len(pairs):
            seen = sorted({v for _, r in pairs for v in r.values})
            messages.append(
                f"no mask holds the --object-label values {_values(object_label)}"
                + (f"; the masks hold {_values(tuple(seen))}" if seen else "")
            )
    for message in messages:
        warnings.warn(message, MaskWarning, stacklevel=2)
    return messages


def _few(grey: np.ndarray) -> tuple[float, ...]:
    values = np.unique(grey)
    return tuple(float(v) for v in values) if len(values) <= LABEL_MAX_VALUES else ()


def _values(values: Sequence[float]) -> str:
    return "/".join(f"{v:g}" for v in values)


def _count(items: Sequence[object], noun: str) -> str:
    return f"{len(items)} {noun}{'s' if len(items) != 1 else ''}"


def _pl(items: Sequence[object], plural: str, singular: str) -> str:
    return singular if len(items) == 1 else plural


def _more(items: Sequence[object]) -> str:
    return f" and {len(items) - 5} more" if len(items) > 5 else ""
