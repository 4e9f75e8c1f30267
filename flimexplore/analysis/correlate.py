"""Rank correlation with a seeded bootstrap interval (NumPy and SciPy only).

:func:`spearman` is Spearman's rho (Pearson's correlation of average ranks,
so ties are handled as usual); :func:`bootstrap_spearman` adds a percentile
95 % interval from resampling the (x, y) pairs with replacement, seeded, so
the same data always give the same interval.  :func:`verdict` turns an
interval into a plain-words statement about a claimed direction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["Correlation", "bootstrap_spearman", "spearman", "verdict"]

N_BOOT = 2000


@dataclass(frozen=True)
class Correlation:
    """Spearman's rho of two samples and its bootstrap interval.

    Attributes
    ----------
    rho : float
        NaN when either sample is constant or fewer than 3 pairs are finite.
    lo, hi : float
        Percentile bootstrap interval of ``level`` (NaN like ``rho``).
    n : int
        Pairs used (those with both values finite).
    level : float
    """

    rho: float
    lo: float
    hi: float
    n: int
    level: float = 0.95

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-ready, with NaN as None."""
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()}


def _rank_rows(a: NDArray[np.float64]) -> NDArray[np.float64]:
    from scipy.stats import rankdata

    return rankdata(a, axis=-1, method="average")


def _pearson_rows(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=-1) / den
    return np.where(den > 0, r, np.nan)  # ranks of a constant sample are all equal: den is exactly 0


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman's rank correlation of two equal-length samples.

    Parameters
    ----------
    x, y : array_like of shape (n,)
        Pairs with a non-finite value are dropped.

    Returns
    -------
    rho : float
        In [-1, 1]; NaN when fewer than 3 pairs remain or a sample is constant.

    Examples
    --------
    >>> spearman([1, 2, 3, 4], [10, 20, 30, 40]), spearman([1, 2, 3, 4], [4, 3, 2, 1])
    (1.0, -1.0)
    >>> round(spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]), 4)
    0.8208
    """
    x, y = _finite_pairs(x, y)
    if len(x) < 3:
        return float("nan")
    return float(_pearson_rows(_rank_rows(x), _rank_rows(y)))


def _finite_pairs(x: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def bootstrap_spearman(
    x: ArrayLike, y: ArrayLike, n_boot: int = N_BOOT, level: float = 0.95, seed: int = 0
) -> Correlation:
    """Spearman's rho with a percentile bootstrap interval.

    Parameters
    ----------
    x, y : array_like of shape (n,)
    n_boot : int, optional
        Resamples of the n pairs, drawn with replacement.
    level : float, optional
        Coverage of the interval.
    seed : int, optional
        Seeds the resampling.

    Returns
    -------
    Correlation
        Resamples whose rho is undefined (a constant resample) are left out
        of the interval.

    Examples
    --------
    >>> c = bootstrap_spearman(range(20), range(20))
    >>> (c.rho, c.lo, c.hi, c.n)
    (1.0, 1.0, 1.0, 20)
    """
    x, y = _finite_pairs(x, y)
    n = len(x)
    rho = spearman(x, y)
    if not np.isfinite(rho):
        return Correlation(float("nan"), float("nan"), float("nan"), n, level)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    boot = _pearson_rows(_rank_rows(x[idx]), _rank_rows(y[idx]))
    boot = boot[np.isfinite(boot)]
    if not len(boot):
        return Correlation(rho, float("nan"), float("nan"), n, level)
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(boot, [tail, 100.0 - tail])
    return Correlation(rho, float(lo), float(hi), n, level)


def verdict(c: Correlation, claim: Literal["positive", "negative", "none"], what: str) -> dict[str, str]:
    """A plain-words verdict on a claimed correlation, from its interval.

    A claimed positive (negative) correlation *holds* when the whole interval
    lies above (below) zero; a claimed absence of correlation holds when the
    interval contains zero.

    Returns
    -------
    dict
        ``verdict`` (``"holds"``, ``"does not hold on this data"`` or
        ``"not measured"``) and ``says`` (one sentence with rho and the interval).
    """
    if not np.isfinite(c.lo):
        return {"verdict": "not measured", "says": f"{what}: rho is undefined on this data (n = {c.n})."}
    ci = f"rho = {c.rho:+.2f}, {int(round(c.level * 100))} % CI [{c.lo:+.2f}, {c.hi:+.2f}], n = {c.n}"
    if claim == "none":
        ok = c.lo <= 0.0 <= c.hi
        found = "no correlation detected" if ok else f"a {'positive' if c.lo > 0 else 'negative'} correlation"
    else:
        ok = c.lo > 0.0 if claim == "positive" else c.hi < 0.0
        found = (
            f"a {claim} correlation" if ok
            else "no correlation detected" if c.lo <= 0.0 <= c.hi
            else f"a {'positive' if c.lo > 0 else 'negative'} correlation, the opposite of the claim"
        )
    return {"verdict": "holds" if ok else "does not hold on this data", "says": f"{what}: {found} ({ci})."}
