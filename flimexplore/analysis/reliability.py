"""How far marker advice can be trusted on this image, from the advisor's own probe.

The advisor probes each candidate position with ``H`` fits that differ only
in their decision-layer seed (:func:`~flimexplore.analysis.probe.probe_scores`)
and scores them on training images.  :func:`probe_reliability` asks of that
table the question the study's repeated fits ask of validation Dice
(:mod:`flimexplore.study.uncertainty`): what share of the probe's variance
is marker position, and what is seed noise?

* ``position_share`` is the intraclass correlation ICC(1) of the probe
  scores over (candidate, fit), with a bootstrap interval over candidates.
  When it is low the probe cannot tell positions apart: whichever position
  it ranks first is chosen by seed noise.
* ``probe_gain`` is how much the 5 best probed positions beat the median
  probed position (mean probe Dice).  When it is tiny, position barely
  matters on these images, however consistent the differences.

The advice abstains (:data:`ABSTAIN_SHARE`, :data:`ABSTAIN_GAIN`) when either
is below its threshold, and says which in one plain line.  Both numbers come
from training images only (the marked image and the split's other marked
images), never from a validation or test mask.  ``benchmarks/advice.py``
measures how well ``position_share`` predicts the percentile the advice then
reaches among random markers, and whether abstaining was right.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from flimexplore.study.uncertainty import position_share

__all__ = ["ABSTAIN_GAIN", "ABSTAIN_SHARE", "probe_reliability"]

ABSTAIN_SHARE = 0.2
"""Below this share of the probe's variance explained by position, the advice abstains (seed noise dominates)."""
ABSTAIN_GAIN = 0.01
"""Below this gain of the 5 best probed positions over the median (Dice), position barely matters: abstain."""


def probe_reliability(
    scores: NDArray[np.floating],
    where: str,
    seed: int = 0,
    what: str = "background",
    share_below: float = ABSTAIN_SHARE,
    gain_below: float = ABSTAIN_GAIN,
) -> dict[str, Any]:
    """Position share and gain of a probe table, and whether the advice should abstain.

    Parameters
    ----------
    scores : ndarray of shape (P, H)
        Probe Dice of ``P >= 2`` candidates, ``H >= 2`` fits each (averaged over the probe images).
    where : str
        The probe images, for the message (e.g. ``"the 2 other marked images"``).
    seed : int, optional
        Seed of the bootstrap.
    what : {"background", "object"}
        The advised marker, for the message.
    share_below, gain_below : float, optional
        Abstention thresholds.

    Returns
    -------
    dict
        ``position_share``, ``position_share_lo``, ``position_share_hi``,
        ``probe_gain``, ``n_probed``, ``fits``, ``abstain`` (bool), ``reason``
        (``"trusted"``, ``"noise"`` or ``"flat"``) and ``line``, one plain sentence.

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
    share = position_share(x, n_boot=1000, seed=seed)
    icc = share["icc"] if np.isfinite(share["icc"]) else 0.0
    mean = x.mean(axis=1)
    gain = float(np.sort(mean)[::-1][: min(5, len(mean))].mean() - np.median(mean))
    out: dict[str, Any] = {
        "position_share": round(icc, 4), "position_share_lo": round(share["icc_lo"], 4),
        "position_share_hi": round(share["icc_hi"], 4), "probe_gain": round(gain, 4), "n_probed": int(x.shape[0]),
        "fits": int(x.shape[1]),
    }
    said = (f"position explains {100 * icc:.0f} % (95 % CI {100 * share['icc_lo']:.0f}-{100 * share['icc_hi']:.0f} %) "
            f"of the probe's Dice variance on {where}")
    if icc < share_below:
        out |= {"abstain": True, "reason": "noise",
                "line": f"advice abstains: {said}, so seed noise, not position, would pick the 'best' {what} marker; "
                        "no position is recommended over another here"}
    elif gain < gain_below:
        out |= {"abstain": True, "reason": "flat",
                "line": f"advice abstains: {what} marker position barely matters here (the 5 best probed positions beat "
                        f"the median by {gain:.3f} Dice on {where}); draw it where it is convenient"}
    else:
        out |= {"abstain": False, "reason": "trusted",
                "line": f"advice trusted: {said}; the 5 best probed positions beat the median by {gain:.3f} Dice there"}
    return out
