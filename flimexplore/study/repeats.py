"""Repeated fits of one model: their seeds, and a marker's Dice as a mean with an interval.

One FLIM model of a study holds random choices: the decision layer's
Xavier initialisation and, with ``--clustering kmeans++``, the k-means++
starts (the default farthest-point clustering is deterministic, and the
decision layer trains full-batch on one image, so there is no batch order
to shuffle).  ``--repeats R`` fits every model ``R`` times with those
choices re-drawn, so that a marker's validation Dice is a mean with an
uncertainty rather than one noisy fit.

Seeds.  Fit ``r = 0`` uses exactly the seeds of a study without repeats
(so ``R = 1`` gives today's numbers); fit ``r >= 1`` draws its decision
seed from ``SeedSequence([model seed, r])`` and its k-means++ seed from
``SeedSequence([cluster_seed, r])``.  The k-means++ seed of fit ``r`` is
shared by every model of the study, as the study's ``cluster_seed`` is.

Interval.  With few repeats (3-10), the 95 % interval of the mean is the
Student t interval ``mean +- t_{R-1, 0.975} sd / sqrt(R)`` (``sd`` with
``R - 1`` degrees of freedom).  A percentile bootstrap over repeats needs
about 20 repeats before its quantiles mean anything, so it is not used.
The interval is for the marker's mean Dice over refits (the quantity a
heatmap colour shows), not a prediction interval for one more fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "REPEAT_OVER",
    "cluster_seeds",
    "decision_seeds",
    "mean_interval",
    "repeat_seed",
    "varied",
]

REPEAT_OVER = ("both", "decision", "clustering")
"""What a repeat re-draws: every random choice of the model, or one source."""

RepeatOver = Literal["both", "decision", "clustering"]


def repeat_seed(seed: int, r: int) -> int:
    """The seed of fit ``r`` derived from a fit-0 seed (fit 0 keeps ``seed`` itself)."""
    if r == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(r)]).generate_state(1)[0])


def varied(repeat_over: str, clustering: str) -> tuple[str, ...]:
    """Which random choices the repeats re-draw: ``decision`` and/or ``clustering``.

    The farthest-point clustering has no random choice, so it never varies.
    """
    out = []
    if repeat_over in ("both", "decision"):
        out.append("decision")
    if repeat_over in ("both", "clustering") and clustering == "kmeans++":
        out.append("clustering")
    return tuple(out)


def decision_seeds(base: Sequence[int], repeats: Sequence[int], repeat_over: str) -> list[list[int]]:
    """Decision-layer seeds of every model's fits: ``len(base)`` rows of ``len(repeats)`` seeds.

    When the repeats do not re-draw the decision layer, every fit keeps the
    model's own seed.
    """
    vary = repeat_over in ("both", "decision")
    return [[repeat_seed(s, r) if vary else int(s) for r in repeats] for s in base]


def cluster_seeds(cluster_seed: int, repeats: Sequence[int], repeat_over: str, clustering: str) -> list[int] | None:
    """k-means++ seeds of the fits, or None when every fit shares the model's encoder."""
    if "clustering" not in varied(repeat_over, clustering):
        return None
    return [repeat_seed(cluster_seed, r) for r in repeats]


def mean_interval(values: NDArray[np.floating], level: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, sample standard deviation and the two-sided Student t interval of the mean.

    Parameters
    ----------
    values : ndarray of shape (R,)
        One marker's Dice over its repeated fits.
    level : float, optional

    Returns
    -------
    mean, sd, lo, hi : float
        ``sd`` uses ``R - 1`` degrees of freedom; with ``R = 1`` it and the
        bounds are NaN (one fit says nothing about its spread).

    Examples
    --------
    >>> [round(v, 4) for v in mean_interval(np.array([0.70, 0.72, 0.74]))]
    [0.72, 0.02, 0.6703, 0.7697]
    """
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    mean = float(x.mean())
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    sd = float(x.std(ddof=1))
    from scipy import stats  # here, not at import: scipy.stats costs half a second to import

    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return mean, sd, mean - half, mean + half


def interval_columns(val_dice: NDArray[np.floating]) -> dict[str, Any]:
    """The uncertainty columns of one results row from its fits' validation Dice (rounded as stored)."""
    mean, sd, lo, hi = mean_interval(val_dice)
    return {
        "val_dice_sd": round(sd, 6), "val_dice_lo": round(lo, 6), "val_dice_hi": round(hi, 6),
        "n_repeats": int(len(val_dice)),
    }
