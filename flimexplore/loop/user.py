"""The loop for a person's own markers (strokes of any shape): suggest the next marker, then add it.

The explorer's "advise next" calls :func:`suggest_next` with the markers you
drew on the marked image (seeds rows, any shape) and :func:`add_marker` when
you accept; notebooks can do the same.  The suggestion reads the marked
images and their own masks only (a :class:`~flimexplore.loop.view.MarkedView`)
and your markers' model at its last epoch, as the robot users do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from flimexplore.loop.config import CANDIDATES
from flimexplore.loop.drawn import Marker, marker_rows, markers_of_rows
from flimexplore.loop.fit import FitSettings, fit_marked
from flimexplore.loop.policies import next_marker
from flimexplore.loop.view import MarkedView
from flimexplore.study.marked import ImageMarkers

__all__ = ["Suggestion", "add_marker", "suggest_next"]

WHY = {
    "advised": "of {k} candidates probed (the best by your markers' model's errors under them), the one whose model fits "
               "the marked image best",
    "error": "the centre of the largest error region of your markers' model on the marked image",
    "uncertain": "your markers' model makes no error a marker could correct; where it is least sure",
}


@dataclass(frozen=True)
class Suggestion:
    """Where the next marker should go, and why.

    Attributes
    ----------
    marker : Marker
    why : str
        One sentence for the user.
    seconds : float
        What finding it cost.
    """

    marker: Marker
    why: str
    seconds: float


def suggest_next(
    view: MarkedView, rows: NDArray[np.integer], image: int, radius: int, fit: FitSettings, policy: str = "advised",
    candidates: int = CANDIDATES,
) -> Suggestion:
    """The next marker for markers of any shape drawn on one marked image.

    Parameters
    ----------
    view : MarkedView
    rows : ndarray of shape (N, 3), int
        Your markers as seeds rows ``(row, col, label)`` on marked image ``image`` (both classes).
    image : int
        Marked-image number.
    radius : int
        Radius of the suggested disk (the study's).
    fit : FitSettings
        How your markers' model is trained (the seed your markers are scored with).
    policy : {"advised", "error"}
    candidates : int, optional
        Candidates the advised policy probes.

    Returns
    -------
    Suggestion
    """
    t0 = time.perf_counter()
    base = {image: np.asarray(rows, np.int64).reshape(-1, 3)}
    current = fit_marked(view, [ImageMarkers.from_rows(base)], fit)
    drawn = markers_of_rows(base[image], view.masks[image].shape, image)
    marker = next_marker(policy, view, drawn, image, radius, current=current, fit=fit, candidates=candidates, base=base)
    return Suggestion(marker, WHY[marker.how].format(k=candidates), time.perf_counter() - t0)


def add_marker(rows: NDArray[np.integer], marker: Marker, radius: int, shape: tuple[int, int]) -> NDArray[np.int64]:
    """Your markers with a disk marker painted over them (its pixels take its class), as seeds rows.

    Examples
    --------
    >>> add_marker(np.array([[1, 1, 1]]), Marker(0, 0, 3, 3), 0, (5, 5)).tolist()
    [[1, 1, 1], [3, 3, 0]]
    """
    return marker_rows([marker], radius, {marker.image: shape}, base={marker.image: rows})[marker.image]
