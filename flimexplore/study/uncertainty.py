"""Does marker position matter here, and which markers tie with the best? (repeated fits)

With ``R`` fits of each of ``n`` markers (:mod:`flimexplore.study.repeats`)
the Dice table ``dice[i, r]`` splits into two kinds of variation: between
markers (position) and within a marker (refitting noise).

* :func:`position_share` is the one-way random-effects ANOVA: with the mean
  squares ``MSB = R * var_i(mean_i)`` (``n - 1`` df) and ``MSW`` (the pooled
  within-marker variance, ``n (R - 1)`` df), ``sigma2_between = max(0, (MSB
  - MSW) / R)`` and ``sigma2_within = MSW``; the intraclass correlation ICC
  = ``sigma2_between / (sigma2_between + sigma2_within)`` is the share of a
  single fit's Dice variance that marker position explains.  Its 95 %
  interval is a percentile bootstrap over markers (markers resampled with
  replacement, each keeping its own fits), seeded.
* :func:`ties_with_best` marks the markers statistically indistinguishable
  from the one of highest mean Dice: Welch's two-sided t-test of each
  marker against the best, Holm-corrected over the markers of the set at
  level 0.05; a marker ties when its difference is not significant.  The
  fits are not paired: the decision-layer seed of a fit differs from marker
  to marker, so fit ``r`` of two markers shares no random numbers, and a
  paired test would claim a sharpness the design does not have.  Interval
  overlap would be more conservative still.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["ALPHA", "N_BOOT", "position_share", "position_summary", "ties_with_best", "verdict"]

ALPHA = 0.05
N_BOOT = 2000


def _variance_parts(dice: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Between- and within-marker variance components of ``dice (..., n, R)`` (last two axes)."""
    r = dice.shape[-1]
    means = dice.mean(axis=-1)
    msb = r * means.var(axis=-1, ddof=1)
    msw = dice.var(axis=-1, ddof=1).mean(axis=-1)
    return np.maximum(0.0, (msb - msw) / r), msw


def position_share(
    dice: NDArray[np.floating], n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95
) -> dict[str, float]:
    """Share of the Dice variance explained by marker position (ICC(1)), with a bootstrap interval.

    Parameters
    ----------
    dice : ndarray of shape (n, R)
        Validation Dice of ``n >= 2`` markers, ``R >= 2`` fits each.
    n_boot : int, optional
        Bootstrap resamples over markers.
    seed : int, optional
    level : float, optional

    Returns
    -------
    dict
        ``between_var``, ``within_var``, ``icc``, ``icc_lo``, ``icc_hi``
        (NaN where undefined: no variance at all).

    Examples
    --------
    >>> d = np.array([[0.9, 0.91, 0.89], [0.5, 0.52, 0.48], [0.7, 0.69, 0.71]])
    >>> round(position_share(d, n_boot=200)["icc"], 3)
    0.995
    """
    x = np.asarray(dice, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"need at least 2 markers with at least 2 fits each, got shape {x.shape}")
    between, within = _variance_parts(x)
    total = between + within
    icc = float(between / total) if total > 0 else math.nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.shape[0], size=(n_boot, x.shape[0]))
    b_between, b_within = _variance_parts(x[idx])
    b_total = b_between + b_within
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = np.where(b_total > 0, b_between / np.where(b_total > 0, b_total, 1), np.nan)
    boot = boot[np.isfinite(boot)]
    lo, hi = (np.quantile(boot, [(1 - level) / 2, (1 + level) / 2]) if len(boot) else (math.nan, math.nan))
    return {"between_var": float(between), "within_var": float(within), "icc": icc, "icc_lo": float(lo), "icc_hi": float(hi)}


def ties_with_best(dice: NDArray[np.floating], alpha: float = ALPHA) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Markers statistically indistinguishable from the best (Welch t-test, Holm-corrected).

    Parameters
    ----------
    dice : ndarray of shape (n, R)
        ``R >= 2`` fits of each of ``n`` markers.
    alpha : float, optional
        Family-wise error level of the Holm procedure.

    Returns
    -------
    tied : ndarray of shape (n,), bool
        True for the best marker (highest mean; the first on ties) and every
        marker whose difference from it is not significant.
    p : ndarray of shape (n,), float64
        Unadjusted two-sided p-value against the best (1 for the best).

    Examples
    --------
    >>> d = np.array([[0.90, 0.92, 0.91], [0.89, 0.93, 0.90], [0.50, 0.51, 0.49]])
    >>> ties_with_best(d)[0].tolist()
    [True, True, False]
    """
    x = np.asarray(dice, dtype=np.float64)
    n, r = x.shape
    if r < 2:
        raise ValueError("ties need at least 2 fits per marker")
    means, var = x.mean(axis=1), x.var(axis=1, ddof=1)
    best = int(np.argmax(means))
    se2 = var / r + var[best] / r
    diff = means[best] - means
    with np.errstate(invalid="ignore", divide="ignore"):
        t = diff / np.sqrt(se2)
        df = se2**2 / ((var / r) ** 2 / (r - 1) + (var[best] / r) ** 2 / (r - 1))
    from scipy import stats  # here, not at import: scipy.stats costs half a second to import

    p = np.where(se2 > 0, 2 * stats.t.sf(np.abs(t), np.where(se2 > 0, df, 1.0)), np.where(diff > 0, 0.0, 1.0))
    p[best] = 1.0
    others = np.array([i for i in range(n) if i != best], dtype=np.intp)
    rejected = np.zeros(n, bool)
    m = len(others)
    for k, i in enumerate(others[np.argsort(p[others], kind="stable")]):  # Holm's step-down
        if p[i] > alpha / (m - k):
            break
        rejected[i] = True
    return ~rejected, p


def verdict(share: dict[str, float], n_tied: int, n_markers: int, what: str = "markers") -> str:
    """One plain line: how much position explains, and how many markers tie with the best.

    Examples
    --------
    >>> verdict({"icc": 0.63, "icc_lo": 0.41, "icc_hi": 0.78}, 4, 30)
    'position explains 63 % of the Dice variance (95 % CI 41-78 %); 4 of 30 markers tie with the best'
    """
    if not math.isfinite(share["icc"]):
        head = "no Dice variance at all: every fit of every marker scored the same"
    else:
        head = (f"position explains {100 * share['icc']:.0f} % of the Dice variance "
                f"(95 % CI {100 * share['icc_lo']:.0f}-{100 * share['icc_hi']:.0f} %)")
    return f"{head}; {n_tied} of {n_markers} {what} tie with the best"


def position_summary(
    fits: list[dict[str, Any]], repeats: int, seed: int = 0, n_boot: int = N_BOOT, what: str = "markers"
) -> dict[str, Any] | None:
    """Position share and ties of one set of markers from their fit rows (``repeats.csv``).

    Parameters
    ----------
    fits : list of dict
        Fit rows (``model``, ``repeat``, ``val_dice``) of the set's markers.
    repeats : int
        Fits per marker; rows of later repeats are ignored.

    Returns
    -------
    dict or None
        ``n_markers``, the :func:`position_share` fields, ``n_tied_with_best``,
        ``best_model``, ``tied_models`` and the :func:`verdict` line; None
        with fewer than 2 markers or 2 complete fits.
    """
    by_model: dict[int, dict[int, float]] = {}
    for f in fits:
        if f["repeat"] < repeats:
            by_model.setdefault(int(f["model"]), {})[int(f["repeat"])] = float(f["val_dice"])
    models = sorted(m for m, d in by_model.items() if len(d) == repeats)
    if len(models) < 2 or repeats < 2:
        return None
    dice = np.array([[by_model[m][r] for r in range(repeats)] for m in models])
    share = position_share(dice, n_boot=n_boot, seed=seed)
    tied, _ = ties_with_best(dice)
    out: dict[str, Any] = {"n_markers": len(models)} | {k: round(v, 6) for k, v in share.items()}
    out |= {
        "n_tied_with_best": int(tied.sum()),
        "best_model": models[int(np.argmax(dice.mean(axis=1)))],
        "tied_models": [m for m, t in zip(models, tied, strict=True) if t],
        "verdict": verdict(share, int(tied.sum()), len(models), what),
    }
    return out
