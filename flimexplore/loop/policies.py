"""Where the robot user draws its next marker: the ``random``, ``advised`` and ``error`` policies.

Every policy returns exactly one disk marker on the given marked image,
centred on an admissible position (:func:`~flimexplore.loop.drawn.admissible`),
and reads only a :class:`~flimexplore.loop.view.MarkedView` (the marked
images and their own masks) and the current model trained on them:

- ``random``: the class alternates, background first (markers 3, 5, ... are
  background, 4, 6, ... object), so both classes grow at the same pace
  whatever the object's size; the centre is uniform among the admissible
  positions of that class (the other class when none is left).
- ``advised``: :func:`flimexplore.loop.advised.advise_next` (candidates of
  both classes, a prior from the current model's errors, a probe per
  candidate on the marked images).
- ``error``: :func:`flimexplore.loop.clicker.error_click`, the centre of the
  largest error region of the current model on the image.  When no error
  region holds an admissible centre (the model is right on the image, or
  its errors are thin slivers along the border), the marker goes where the
  model is least sure (smallest ``|gap|``) among the admissible positions,
  with that pixel's class; such markers say ``how = "uncertain"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from flimexplore.errors import MarkerError
from flimexplore.loop.advised import advise_next
from flimexplore.loop.clicker import error_click
from flimexplore.loop.config import CANDIDATES, POLICIES
from flimexplore.loop.drawn import Marker, admissible
from flimexplore.loop.fit import FitSettings, MarkedModel
from flimexplore.loop.view import MarkedView

__all__ = ["POLICIES", "error_marker", "next_marker", "random_marker"]


def random_marker(view: MarkedView, drawn: Sequence[Marker], image: int, radius: int, rng: np.random.Generator) -> Marker:
    """The random policy's next marker (class alternating, background first; position uniform).

    Raises
    ------
    MarkerError
        If no admissible position is left on the image.
    """
    mask = view.masks[image]
    ok = admissible(mask.shape, radius, drawn, image)
    added = sum(m.how != "start" for m in drawn)
    label = 0 if added % 2 == 0 else 1
    for want in (label, 1 - label):
        pool = np.flatnonzero(ok & (mask if want == 1 else ~mask))
        if pool.size:
            r, c = divmod(int(pool[rng.integers(pool.size)]), mask.shape[1])
            return Marker(image, want, r, c, "random")
    raise MarkerError(_full(image, view, radius))


def _full(image: int, view: MarkedView, radius: int) -> str:
    return (f"no admissible marker position is left on marked image {image} ({view.stems[image]!r}) with radius "
            f"{radius}; ask for fewer markers (--max-markers), a smaller --radius, or --next-image-after")


def error_marker(view: MarkedView, drawn: Sequence[Marker], image: int, radius: int, current: MarkedModel) -> Marker:
    """The error policy's next marker (see the module notes)."""
    mask = view.masks[image]
    ok = admissible(mask.shape, radius, drawn, image)
    if not ok.any():
        raise MarkerError(_full(image, view, radius))
    gap = current.gap(view, image)[0]
    click = error_click(gap > 0, mask, ok)
    if click is not None:
        return Marker(image, click.label, click.row, click.col, "error")
    unsure = np.where(ok, np.abs(gap), np.inf)
    r, c = divmod(int(np.argmin(unsure)), mask.shape[1])
    return Marker(image, int(mask[r, c]), r, c, "uncertain")


def next_marker(
    policy: str,
    view: MarkedView,
    drawn: Sequence[Marker],
    image: int,
    radius: int,
    *,
    rng: np.random.Generator | None = None,
    current: MarkedModel | None = None,
    fit: FitSettings | None = None,
    candidates: int = CANDIDATES,
    base: Mapping[int, NDArray[np.integer]] | None = None,
) -> Marker:
    """One more marker on marked image ``image`` by ``policy``.

    Parameters
    ----------
    policy : {"random", "advised", "error"}
    view : MarkedView
        The marked images and their own masks (all a policy may read).
    drawn : sequence of Marker
        Markers drawn so far.
    image : int
        Marked image the marker goes on.
    radius : int
        Disk radius of the markers.
    rng : numpy.random.Generator, optional
        The random policy's draws.
    current : MarkedModel, optional
        The model trained on ``drawn`` (advised and error policies).
    fit : FitSettings, optional
        How the advised policy's probes are trained.
    candidates : int, optional
        Candidates the advised policy probes.
    base : mapping of int to ndarray of shape (N, 3), optional
        Markers of any shape drawn so far (a user's strokes) as seeds rows per
        marked image; ``drawn`` then only keeps the new marker apart from them
        (see :func:`flimexplore.loop.advised.advise_next`).

    Returns
    -------
    Marker

    Raises
    ------
    MarkerError
        If no admissible position is left on the image.
    ValueError
        If ``policy`` is unknown or what it needs is missing.
    """
    if policy == "random":
        if rng is None:
            raise ValueError("the random policy needs rng")
        return random_marker(view, drawn, image, radius, rng)
    if current is None:
        raise ValueError(f"the {policy} policy needs the current model")
    if policy == "error":
        return error_marker(view, drawn, image, radius, current)
    if policy == "advised":
        if fit is None:
            raise ValueError("the advised policy needs the fit settings of its probes")
        try:
            return advise_next(view, drawn, image, current, fit, radius, candidates, base=base)[0]
        except ValueError as err:
            raise MarkerError(_full(image, view, radius)) from err
    raise ValueError(f"unknown policy {policy!r}; use one of {', '.join(POLICIES)}")
