"""Markers needed (NoC) and the area under a Dice-vs-markers curve, with intervals over repeats.

Interactive segmentation reports NoC@tau: the clicks a simulated user needs
until the quality reaches tau, failures counted at the cap (RITM).  Here the
quality is the validation Dice after each refit, the count is markers
(the two starting markers included), and a run that never reaches tau
within ``max_markers`` counts as ``max_markers + 1``, "not reached".
Intervals over the repeats are Student t 95 % intervals of the mean
(:func:`flimexplore.study.repeats.mean_interval`, the study's choice for
few repeats), cut to the values the quantity can take (NoC: 2 to
``max_markers + 1``; areas and Dice: 0 to 1): with 2-3 repeats the t
factor is large (12.7 for 2) and the raw bounds would leave that range.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from flimexplore.study.repeats import mean_interval

__all__ = ["band", "curve_area", "markers_needed", "summarise"]


def markers_needed(n_markers: ArrayLike, dice: ArrayLike, target: float, max_markers: int) -> int:
    """Markers at the first step whose Dice reaches ``target``; ``max_markers + 1`` if none does.

    Parameters
    ----------
    n_markers : array_like of shape (S,), int
        Markers of each step, increasing.
    dice : array_like of shape (S,), float
    target : float
    max_markers : int

    Examples
    --------
    >>> markers_needed([2, 3, 4, 5], [0.70, 0.82, 0.79, 0.91], 0.80, 5)
    3
    >>> markers_needed([2, 3, 4, 5], [0.70, 0.82, 0.79, 0.91], 0.95, 5)
    6
    """
    n = np.asarray(n_markers)
    reached = np.flatnonzero(np.asarray(dice, dtype=np.float64) >= target)
    return int(n[reached[0]]) if len(reached) else int(max_markers) + 1


def curve_area(n_markers: ArrayLike, dice: ArrayLike) -> float:
    """Normalised area under a Dice-vs-markers curve (trapezoids): the curve's mean height, in [0, 1].

    Examples
    --------
    >>> round(curve_area([2, 3, 4], [0.5, 0.7, 0.9]), 6)
    0.7
    """
    x = np.asarray(n_markers, dtype=np.float64)
    y = np.asarray(dice, dtype=np.float64)
    if len(x) < 2:
        return float(y[0])
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)) / (x[-1] - x[0]))


def _interval(values: Sequence[float], low: float, high: float) -> dict[str, float | None]:
    mean, sd, lo, hi = mean_interval(np.asarray(values, dtype=np.float64))

    def clean(v: float) -> float | None:
        return None if not np.isfinite(v) else round(float(v), 6)

    return {"mean": clean(mean), "sd": clean(sd), "lo": clean(max(lo, low)), "hi": clean(min(hi, high))}


def summarise(
    curves: dict[int, tuple[ArrayLike, ArrayLike]], targets: Sequence[float], max_markers: int
) -> dict[str, object]:
    """NoC at every target and the curve area of one policy, over its repeats.

    Parameters
    ----------
    curves : dict of int to (n_markers, dice)
        Each repeat's curve.
    targets : sequence of float
    max_markers : int

    Returns
    -------
    dict
        ``noc``: per target ``{"target", "per_repeat", "n_reached", "mean", "sd", "lo", "hi"}``;
        ``area``: ``{"per_repeat", "mean", "sd", "lo", "hi"}``; ``n_repeats``.
        With one repeat ``sd``, ``lo`` and ``hi`` are None.
    """
    reps = sorted(curves)
    noc = []
    for t in targets:
        per = [markers_needed(*curves[r], t, max_markers) for r in reps]
        noc.append({"target": float(t), "per_repeat": per, "n_reached": sum(v <= max_markers for v in per)}
                   | _interval(per, 2, max_markers + 1))
    areas = [round(curve_area(*curves[r]), 6) for r in reps]
    return {"n_repeats": len(reps), "noc": noc, "area": {"per_repeat": areas} | _interval(areas, 0.0, 1.0)}


def band(curves: dict[int, tuple[ArrayLike, ArrayLike]]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """A policy's line over its repeats: markers, mean Dice and the 95 % t interval of the mean at each step.

    Parameters
    ----------
    curves : dict of int to (n_markers, dice)
        Each repeat's curve (all of the same steps).

    Returns
    -------
    x, mean : ndarray of shape (S,)
    lo, hi : ndarray of shape (S,) or None
        Cut to 0-1; None with one repeat.
    """
    reps = sorted(curves)
    x = np.asarray(curves[reps[0]][0])
    y = np.stack([np.asarray(curves[r][1], dtype=np.float64) for r in reps])  # (R, S)
    stats = [mean_interval(y[:, j]) for j in range(y.shape[1])]
    mean = np.array([s[0] for s in stats])
    if len(reps) < 2:
        return x, mean, None, None
    return x, mean, np.clip([s[2] for s in stats], 0.0, 1.0), np.clip([s[3] for s in stats], 0.0, 1.0)
