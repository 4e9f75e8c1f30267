"""The advised next marker: the candidate whose marker helps the model most on the marked images.

Given the markers drawn so far, :func:`advise_next` ranks candidate
positions of **both** classes on one marked image in three stages, all from
the marked images and their own masks (never a validation or test mask):

1. *Candidates*: every admissible centre (:func:`~flimexplore.loop.drawn.admissible`)
   on a grid of spacing ``r`` (the dense study's grid); its class is the
   mask's value at the centre.
2. *Prior* (cheap, no training): the mean probability of error of the
   current model (the last refit, at its last epoch) under the candidate's
   disk: ``sigmoid(-gap)`` on object pixels, ``sigmoid(gap)`` on background
   pixels.  The best ``k`` candidates are kept, half per class (the other
   class fills in when one runs short), each at least ``3 r`` from the ones
   kept before it, so that the probes cover different regions.
3. *Probe*: ``k`` models are trained together, each on the drawn markers
   plus one candidate (the same seed and settings as the refit), and scored
   at their last epoch on the marked images they trained on against those
   images' own masks (mean per-image Dice).  The best probe wins; ties go
   to the higher prior.

Cost: one batched training of ``k`` models and one scoring of them on the
marked images, about ``k`` times a refit's training without its validation
scoring (measured in ``benchmarks/loop.py``, ``advised_s`` per step).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from flimexplore.loop.config import CANDIDATES
from flimexplore.loop.drawn import Marker, admissible, image_markers
from flimexplore.loop.fit import FitSettings, MarkedModel, fit_marked
from flimexplore.loop.view import MarkedView
from flimexplore.markers import disk_offsets

__all__ = ["CANDIDATES", "Candidates", "advise_next", "candidate_prior"]

SPREAD = 3.0
"""Kept candidates lie at least this many radii apart."""


@dataclass(frozen=True, eq=False)
class Candidates:
    """The advised policy's candidates of one step, best first after the probe.

    Attributes
    ----------
    centres : ndarray of shape (K, 2), int64
    labels : ndarray of shape (K,), int64
    prior : ndarray of shape (K,), float64
        Mean error probability of the current model under each disk.
    probe : ndarray of shape (K,), float64
        Dice on the marked images of the model with that marker added (NaN when not probed).
    """

    centres: NDArray[np.int64]
    labels: NDArray[np.int64]
    prior: NDArray[np.float64]
    probe: NDArray[np.float64]


def candidate_prior(gap: NDArray[np.floating], mask: NDArray[np.bool_], radius: int) -> NDArray[np.float64]:
    """Mean error probability of a model under a disk centred on every pixel.

    Parameters
    ----------
    gap : ndarray of shape (H, W), float
        The model's logit gap (object minus background).
    mask : ndarray of shape (H, W), bool
    radius : int

    Returns
    -------
    prior : ndarray of shape (H, W), float64
        In [0, 1]; outside the image counts as no error.
    """
    prob = 1.0 / (1.0 + np.exp(-np.asarray(gap, np.float64)))
    error = np.where(mask, 1.0 - prob, prob)
    off = disk_offsets(radius)
    kernel = np.zeros((2 * radius + 1, 2 * radius + 1))
    kernel[off[:, 0] + radius, off[:, 1] + radius] = 1.0 / len(off)
    return ndimage.correlate(error, kernel, mode="constant", cval=0.0)


def _keep(centres: NDArray[np.int64], prior: NDArray[np.float64], n: int, apart: float, taken: list[NDArray]) -> list[int]:
    """Indices of the ``n`` best candidates by prior, each ``apart`` from every one kept (and ``taken``)."""
    chosen: list[int] = []
    for i in np.argsort(-prior, kind="stable"):
        if len(chosen) == n:
            break
        near = [c for c in (*taken, *(centres[j] for j in chosen)) if ((c - centres[i]) ** 2).sum() < apart**2]
        if not near:
            chosen.append(int(i))
    return chosen


def advise_next(
    view: MarkedView,
    drawn: Sequence[Marker],
    image: int,
    current: MarkedModel,
    fit: FitSettings,
    radius: int,
    k: int = CANDIDATES,
    spacing: int | None = None,
    base: Mapping[int, NDArray[np.integer]] | None = None,
) -> tuple[Marker, Candidates]:
    """The advised next marker on marked image ``image``.

    Parameters
    ----------
    view : MarkedView
    drawn : sequence of Marker
        Markers drawn so far (on any marked image).
    image : int
        Marked image the next marker goes on.
    current : MarkedModel
        The current model (trained on ``drawn``), for the prior.
    fit : FitSettings
        Training of the probes (the refit's).
    radius : int
    k : int, optional
        Candidates probed (:data:`CANDIDATES`); 0 ranks by the prior alone.
    spacing : int, optional
        Grid spacing of the candidates (default: the radius).
    base : mapping of int to ndarray of shape (N, 3), optional
        The pixels drawn so far as seeds rows per marked image (a user's
        strokes); a probe then trains on them plus the candidate's disk, and
        ``drawn`` only keeps new markers apart from the old ones.

    Returns
    -------
    marker : Marker
    candidates : Candidates
        The probed candidates, best first.

    Raises
    ------
    ValueError
        If no admissible position is left on the image.
    """
    mask = view.masks[image]
    ok = admissible(mask.shape, radius, drawn, image)
    step = int(spacing or radius)
    grid = np.zeros_like(ok)
    grid[::step, ::step] = True
    centres = np.argwhere(ok & grid).astype(np.int64)
    if not len(centres):
        centres = np.argwhere(ok).astype(np.int64)
    if not len(centres):
        raise ValueError(f"no admissible marker position is left on marked image {image}")
    labels = mask[centres[:, 0], centres[:, 1]].astype(np.int64)
    gap = current.gap(view, image)[0]
    prior = candidate_prior(gap, mask, radius)[centres[:, 0], centres[:, 1]]
    n = max(1, int(k))
    want = {1: (n + 1) // 2, 0: n // 2}
    picked: list[int] = []
    for label in (1, 0):
        idx = np.flatnonzero(labels == label)
        picked += [int(idx[j]) for j in _keep(centres[idx], prior[idx], want[label], SPREAD * radius, [])]
    if len(picked) < n:  # one class ran short: the best of the rest, still spread out
        rest = np.setdiff1d(np.arange(len(centres)), picked)
        picked += [int(rest[j]) for j in _keep(centres[rest], prior[rest], n - len(picked), SPREAD * radius,
                                               [centres[i] for i in picked])]
    picked.sort(key=lambda i: (-prior[i], i))
    idx = np.array(picked, dtype=np.int64)
    probe = np.full(len(idx), np.nan)
    if k > 0:
        new = [Marker(image, int(labels[i]), int(centres[i, 0]), int(centres[i, 1]), "advised") for i in idx]
        if base is None:
            images_of = [image_markers([*drawn, m], radius, view.shapes) for m in new]
        else:
            images_of = [image_markers([m], radius, view.shapes, base) for m in new]
        probe = fit_marked(view, images_of, fit).dice(view, images_of[0].images)
    order = np.lexsort((np.arange(len(idx)), -prior[idx], -np.nan_to_num(probe, nan=-1.0)))
    best = idx[order[0]]
    marker = Marker(image, int(labels[best]), int(centres[best, 0]), int(centres[best, 1]), "advised")
    return marker, Candidates(centres[idx[order]], labels[idx[order]], prior[idx[order]], probe[order])
