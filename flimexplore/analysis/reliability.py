"""How far marker advice can be trusted on this image, from the advisor's own probe.

The advisor probes each candidate position with ``H`` fits that differ only
in their decision-layer seed (:func:`~flimexplore.analysis.probe.probe_scores`)
and scores them on training images.  :func:`probe_reliability` asks of that
table the question the study's repeated fits ask of validation Dice
(:mod:`flimexplore.study.uncertainty`): what share of the probe's variance
is marker position, and what is seed noise?

* ``position_share`` is the intraclass correlation ICC(1) of the probe
  scores over (candidate, fit), with a bootstrap interval over candidates:
  how much of the probe's variance is position, over every probed
  candidate.  It is reported, and benchmarked, as the advice's reliability.
* ``probe_gain`` is how much the 5 best probed positions beat the median
  probed position (mean probe Dice over all fits).  Choosing the best 5 and
  measuring them on the same fits overstates the gain (the winners' seed
  noise is part of why they won), so the advice decides on
  ``probe_gain_cv``, a cross-fitted gain: the best 5 are chosen on some of
  each candidate's fits and their gain over the median is measured on the
  other fits, averaged over the ways of splitting them (:func:`crossfit_gain`).
* ``gain_p`` is how often seed noise alone gives a cross-fitted gain at
  least that large: a permutation test that shuffles the probe's fits among
  the candidates (what would be seen if position did not matter) and
  recomputes it :data:`N_PERMUTATIONS` times, seeded (:func:`gain_null`).

The advice abstains for noise when ``gain_p`` is above :data:`ABSTAIN_P`
(its best positions stand out no more than seed noise would make some stand
out), and as "flat" when the cross-fitted gain is under :data:`ABSTAIN_GAIN`
Dice (position barely matters, however consistent the differences); it says
which in one plain line.  The test asks what the advice claims, "these few
positions beat the rest".  Two earlier rules failed on the advice benchmark
(``benchmarks/RESULTS.md``, section 9): an ICC below 0.2 hid a handful of
clearly better positions among many equal ones, and the same permutation
test of the in-sample gain lost its power where failed fits cluster at a
few positions (shuffled, the failures spread over all candidates and make
large in-sample gains by chance).  Both numbers come from training images
only (the marked image and the split's other marked images), never from a
validation or test mask.  ``benchmarks/advice.py`` measures how well
``position_share`` predicts the percentile the advice then reaches among
random markers, and whether abstaining was right.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
from numpy.typing import NDArray

from flimexplore.study.uncertainty import position_share

__all__ = ["ABSTAIN_GAIN", "ABSTAIN_P", "N_PERMUTATIONS", "crossfit_gain", "gain_null", "probe_reliability"]

ABSTAIN_P = 0.05
"""Above this permutation p-value of the cross-fitted gain, seed noise could have produced it: the advice abstains."""
N_PERMUTATIONS = 1000
"""Shuffles of the probe's fits among the candidates in the permutation test of the gain."""
ABSTAIN_GAIN = 0.01
"""Below this cross-fitted gain of the 5 best probed positions over the median (Dice), position barely matters."""
TOP = 5
"""The gain compares the mean of this many best probed positions with the median position."""
MAX_SPLITS = 20
"""At most this many splits of the fits in the cross-fitted gain (all of them when there are no more)."""


def probe_reliability(
    scores: NDArray[np.floating],
    where: str,
    seed: int = 0,
    what: str = "background",
    p_above: float = ABSTAIN_P,
    gain_below: float = ABSTAIN_GAIN,
) -> dict[str, Any]:
    """Position share, gains and the permutation p-value of a probe table, and whether the advice should abstain.

    Parameters
    ----------
    scores : ndarray of shape (P, H)
        Probe Dice of ``P >= 2`` candidates, ``H >= 2`` fits each (averaged over the probe images).
    where : str
        The probe images, for the message (e.g. ``"the 2 other marked images"``).
    seed : int, optional
        Seed of the bootstrap, of the splits and of the permutation test.
    what : {"background", "object"}
        The advised marker, for the message.
    p_above, gain_below : float, optional
        Abstention thresholds: the permutation p-value, and the cross-fitted gain in Dice.

    Returns
    -------
    dict
        ``position_share``, ``position_share_lo``, ``position_share_hi``,
        ``probe_gain`` (in-sample), ``probe_gain_cv`` (cross-fitted),
        ``gain_p``, ``gain_noise95`` (the 95th percentile of the cross-fitted
        gain with shuffled fits), ``n_probed``, ``fits``, ``abstain`` (bool),
        ``reason`` (``"trusted"``, ``"noise"`` or ``"flat"``) and ``line``,
        one plain sentence.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> flat = 0.8 + 0.02 * rng.standard_normal((40, 5))  # positions differ only by seed noise
    >>> probe_reliability(flat, "the marked image")["reason"]
    'noise'
    >>> clear = np.linspace(0.5, 0.9, 40)[:, None] + 0.01 * rng.standard_normal((40, 5))
    >>> probe_reliability(clear, "the marked image")["abstain"]
    False
    """
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"need at least 2 candidates with at least 2 fits each, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("the probe table holds NaN or infinite Dice; every candidate's fits must be scored")
    share = position_share(x, n_boot=1000, seed=seed)
    icc = share["icc"] if np.isfinite(share["icc"]) else 0.0
    gain = float(_gain(x.mean(axis=1)[None])[0])
    splits = _splits(x.shape[1], seed)
    cv = float(crossfit_gain(x, splits)[0])
    null = gain_null(x, seed=seed, splits=splits)
    p = float((1 + np.count_nonzero(null >= cv - 1e-12)) / (len(null) + 1))
    out: dict[str, Any] = {
        "position_share": round(icc, 4), "position_share_lo": round(share["icc_lo"], 4),
        "position_share_hi": round(share["icc_hi"], 4), "probe_gain": round(gain, 4), "probe_gain_cv": round(cv, 4),
        "gain_p": round(p, 4), "gain_noise95": round(float(np.quantile(null, 0.95)), 4), "n_probed": int(x.shape[0]),
        "fits": int(x.shape[1]),
    }
    said = (f"position explains {100 * icc:.0f} % (95 % CI {100 * share['icc_lo']:.0f}-{100 * share['icc_hi']:.0f} %) "
            f"of the probe's Dice variance")
    margin = f"beat the median by {cv:.3f} Dice" if cv > 0 else f"do not beat the median ({cv:+.3f} Dice)"
    beat = f"the {TOP} best probed positions {margin} on {where}, measured on fits they were not chosen by"
    if p > p_above:
        out |= {"abstain": True, "reason": "noise",
                "line": f"advice abstains: {beat}, a margin seed noise alone reaches {100 * p:.0f} % of the time, so "
                        f"noise, not position, would pick the 'best' {what} marker; no position is recommended here"}
    elif cv < gain_below:
        out |= {"abstain": True, "reason": "flat",
                "line": f"advice abstains: {what} marker position barely matters here ({beat}); "
                        "draw it where it is convenient"}
    else:
        out |= {"abstain": False, "reason": "trusted",
                "line": f"advice trusted: {beat} (seed noise alone: p = {p:.3f}); {said}"}
    return out


def _gain(means: NDArray[np.float64]) -> NDArray[np.float64]:
    """Mean of the best :data:`TOP` minus the median, per row of candidate means: shape (B, P) -> (B,)."""
    k = min(TOP, means.shape[1])
    top = -np.partition(-means, k - 1, axis=1)[:, :k]
    return top.mean(axis=1) - np.median(means, axis=1)


def _splits(h: int, seed: int = 0) -> list[tuple[int, ...]]:
    """The fits that choose the best candidates, one tuple per split: every ``ceil(h / 2)``-subset, or a sample."""
    choose = list(combinations(range(h), (h + 1) // 2))
    if len(choose) <= MAX_SPLITS:
        return choose
    rng = np.random.default_rng([seed, 0x5B1])
    return [choose[i] for i in sorted(rng.choice(len(choose), MAX_SPLITS, replace=False))]


def crossfit_gain(scores: NDArray[np.floating], splits: list[tuple[int, ...]] | None = None) -> NDArray[np.float64]:
    """How much the best :data:`TOP` candidates beat the median on fits that did not choose them.

    Parameters
    ----------
    scores : ndarray of shape (P, H) or (B, P, H)
        Probe Dice of ``P`` candidates, ``H >= 2`` fits each (a batch of ``B`` tables).
    splits : list of tuple of int, optional
        The fits that choose, one tuple per split (default: every subset of
        ``ceil(H / 2)`` fits, or :data:`MAX_SPLITS` of them).

    Returns
    -------
    ndarray of shape (B,)
        Per table, the mean over splits of: the mean, over the other fits, of
        the best ``TOP`` candidates by the choosing fits, minus the median
        candidate over the other fits.

    Notes
    -----
    The in-sample gain of the best candidates is biased upwards: among
    equal candidates, the ones whose seeds were lucky win and seem better.
    Measured on fits that had no part in the choice, the gain of equal
    candidates is about zero whatever the shape of the seed noise, and what
    remains is what the chosen positions are worth.

    Examples
    --------
    >>> equal = np.random.default_rng(0).normal(0.8, 0.02, (60, 5))
    >>> bool(abs(crossfit_gain(equal)[0]) < 0.01)
    True
    >>> ordered = np.linspace(0.6, 0.9, 60)[:, None] + np.zeros((1, 5))
    >>> round(float(crossfit_gain(ordered)[0]), 3)
    0.14
    """
    x = np.asarray(scores, dtype=np.float64)
    x = x[None] if x.ndim == 2 else x
    h = x.shape[-1]
    if h < 2:
        raise ValueError(f"a cross-fitted gain needs at least 2 fits per candidate, got {h}")
    k = min(TOP, x.shape[1])
    total = np.zeros(x.shape[0])
    splits = _splits(h) if splits is None else splits
    for choosing in splits:
        other = [j for j in range(h) if j not in choosing]
        chosen_by, measured = x[..., list(choosing)].mean(axis=-1), x[..., other].mean(axis=-1)
        best = np.argpartition(-chosen_by, k - 1, axis=1)[:, :k]
        total += np.take_along_axis(measured, best, axis=1).mean(axis=1) - np.median(measured, axis=1)
    return total / len(splits)


def gain_null(
    scores: NDArray[np.floating], n: int = N_PERMUTATIONS, seed: int = 0, splits: list[tuple[int, ...]] | None = None
) -> NDArray[np.float64]:
    """Cross-fitted gains seen when position does not matter: the fits shuffled among the candidates.

    Parameters
    ----------
    scores : ndarray of shape (P, H)
        Probe Dice of ``P`` candidates, ``H`` fits each.
    n : int, optional
        Number of shuffles.
    seed : int, optional
        Seed of the shuffles (and of the splits when they are sampled).
    splits : list of tuple of int, optional
        As :func:`crossfit_gain`'s.

    Returns
    -------
    ndarray of shape (n,)
        The cross-fitted gain of each shuffled table.

    Notes
    -----
    Every fit of every candidate has a decision-layer seed of its own, so if
    position did not matter the ``P * H`` scores would be exchangeable: each
    shuffle deals all of them out again, ``H`` per candidate, and seed noise
    alone passes the test at most 5 % of the time, whatever its shape.  A
    null built from each fit's residual about its own candidate's mean was
    tried and rejected: with ``H = 5`` fits, the residuals of a candidate
    with one failed fit misrepresent the (skewed) seed noise, and that null
    gave p = 1.0 to clearly ordered fundus probes (``benchmarks/RESULTS.md``,
    section 9).

    Examples
    --------
    >>> x = np.random.default_rng(1).normal(0.8, 0.02, (60, 5))
    >>> null = gain_null(x, n=200)
    >>> null.shape, bool(abs(null.mean()) < 0.005)
    ((200,), True)
    """
    x = np.asarray(scores, dtype=np.float64)
    rng = np.random.default_rng([seed, 0x6A1])
    flat = np.broadcast_to(x.reshape(-1), (n, x.size))
    shuffled = rng.permuted(flat, axis=1).reshape(n, *x.shape)
    return crossfit_gain(shuffled, _splits(x.shape[1], seed) if splits is None else splits)
