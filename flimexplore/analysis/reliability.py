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
  probed position (mean probe Dice), and ``gain_p`` how often seed noise
  alone gives at least that gain: a permutation test that shuffles the
  probe's fits among the candidates (what would be seen if position did not
  matter) and recomputes the gain :data:`N_PERMUTATIONS` times, seeded.

The advice abstains for noise when ``gain_p`` is above :data:`ABSTAIN_P`
(its best positions stand out no more than seed noise would make some stand
out), and as "flat" when the gain is under :data:`ABSTAIN_GAIN` Dice
(position barely matters, however consistent the differences); it says which
in one plain line.  The test asks what the advice claims, "these few
positions beat the rest": a low ICC over all candidates can hide a handful
that clearly stand out, and the first rule, abstaining below an ICC of 0.2,
threw such advice away (``benchmarks/RESULTS.md``, section 9).  Both numbers
come from training images only (the marked image and the split's other
marked images), never from a validation or test mask.
``benchmarks/advice.py`` measures how well ``position_share`` predicts the
percentile the advice then reaches among random markers, and whether
abstaining was right.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from flimexplore.study.uncertainty import position_share

__all__ = ["ABSTAIN_GAIN", "ABSTAIN_P", "N_PERMUTATIONS", "gain_null", "probe_reliability"]

ABSTAIN_P = 0.05
"""Above this permutation p-value of the probe gain, seed noise could have produced it: the advice abstains."""
N_PERMUTATIONS = 1000
"""Shuffles of the probe's fits among the candidates in the permutation test of the gain."""
ABSTAIN_GAIN = 0.01
"""Below this gain of the 5 best probed positions over the median (Dice), position barely matters: abstain."""
TOP = 5
"""The gain compares the mean of this many best probed positions with the median position."""


def probe_reliability(
    scores: NDArray[np.floating],
    where: str,
    seed: int = 0,
    what: str = "background",
    p_above: float = ABSTAIN_P,
    gain_below: float = ABSTAIN_GAIN,
) -> dict[str, Any]:
    """Position share, gain and its permutation p-value of a probe table, and whether the advice should abstain.

    Parameters
    ----------
    scores : ndarray of shape (P, H)
        Probe Dice of ``P >= 2`` candidates, ``H >= 2`` fits each (averaged over the probe images).
    where : str
        The probe images, for the message (e.g. ``"the 2 other marked images"``).
    seed : int, optional
        Seed of the bootstrap and of the permutation test.
    what : {"background", "object"}
        The advised marker, for the message.
    p_above, gain_below : float, optional
        Abstention thresholds: the gain's permutation p-value, and the gain in Dice.

    Returns
    -------
    dict
        ``position_share``, ``position_share_lo``, ``position_share_hi``,
        ``probe_gain``, ``gain_p``, ``gain_noise95`` (the 95th percentile of
        the gain with shuffled fits), ``n_probed``, ``fits``, ``abstain``
        (bool), ``reason`` (``"trusted"``, ``"noise"`` or ``"flat"``) and
        ``line``, one plain sentence.

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
    null = gain_null(x, seed=seed)
    p = float((1 + np.count_nonzero(null >= gain - 1e-12)) / (len(null) + 1))
    out: dict[str, Any] = {
        "position_share": round(icc, 4), "position_share_lo": round(share["icc_lo"], 4),
        "position_share_hi": round(share["icc_hi"], 4), "probe_gain": round(gain, 4), "gain_p": round(p, 4),
        "gain_noise95": round(float(np.quantile(null, 0.95)), 4), "n_probed": int(x.shape[0]),
        "fits": int(x.shape[1]),
    }
    said = (f"position explains {100 * icc:.0f} % (95 % CI {100 * share['icc_lo']:.0f}-{100 * share['icc_hi']:.0f} %) "
            f"of the probe's Dice variance")
    beat = f"the {TOP} best probed positions beat the median by {gain:.3f} Dice on {where}"
    if p > p_above:
        out |= {"abstain": True, "reason": "noise",
                "line": f"advice abstains: {beat}, a margin seed noise alone reaches {100 * p:.0f} % of the time, so "
                        f"noise, not position, would pick the 'best' {what} marker; no position is recommended here"}
    elif gain < gain_below:
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


def gain_null(scores: NDArray[np.floating], n: int = N_PERMUTATIONS, seed: int = 0) -> NDArray[np.float64]:
    """Probe gains seen when position does not matter: the fits shuffled among the candidates.

    Parameters
    ----------
    scores : ndarray of shape (P, H)
        Probe Dice of ``P`` candidates, ``H`` fits each.
    n : int, optional
        Number of shuffles.
    seed : int, optional
        Seed of the shuffles.

    Returns
    -------
    ndarray of shape (n,)
        The gain (mean of the best :data:`TOP` candidate means minus their median) of each shuffle.

    Notes
    -----
    Every fit of every candidate has a decision-layer seed of its own, so if
    position did not matter the ``P * H`` scores would be exchangeable: each
    shuffle deals all of them out again, ``H`` per candidate.  The spread of
    the pooled scores includes any real differences between positions, which
    makes the test conservative: it loses some power when position matters
    weakly, but seed noise alone passes it at most 5 % of the time.

    Examples
    --------
    >>> x = np.random.default_rng(1).normal(0.8, 0.02, (60, 5))
    >>> null = gain_null(x, n=200)
    >>> null.shape, bool(null.min() > 0)
    ((200,), True)
    """
    x = np.asarray(scores, dtype=np.float64)
    rng = np.random.default_rng([seed, 0x6A1])
    flat = np.broadcast_to(x.reshape(-1), (n, x.size))
    shuffled = rng.permuted(flat, axis=1).reshape(n, *x.shape)
    return _gain(shuffled.mean(axis=2))
