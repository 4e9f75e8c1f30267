"""Spearman's rho, its seeded bootstrap interval and the plain-words verdicts, on literal arrays."""

import numpy as np
import pytest

from flimexplore.analysis.correlate import Correlation, bootstrap_spearman, spearman, verdict
from flimexplore.analysis.model_descriptors import fisher_ratio, silhouette


def test_spearman_known_values():
    assert spearman([1, 2, 3, 4], [1, 4, 9, 16]) == 1.0  # monotone, not linear
    assert spearman([1, 2, 3, 4], [8, 6, 4, 2]) == -1.0
    # d = ranks (1..5) vs (1, 2, 3.5, 5, 3.5): rho computed by hand from the average ranks
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(0.8207826816681233)
    assert spearman([1, 2, 3, 4, 5, 6], [1, 3, 2, 4, 6, 5]) == pytest.approx(1 - 6 * 4 / (6 * 35))


def test_spearman_drops_non_finite_pairs_and_refuses_constant_samples():
    assert spearman([1, 2, np.nan, 3, 4], [1, 2, 100, 3, 4]) == 1.0
    assert np.isnan(spearman([1, 1, 1, 1], [1, 2, 3, 4]))
    assert np.isnan(spearman([1, 2], [1, 2]))
    with pytest.raises(ValueError, match="same length"):
        spearman([1, 2, 3], [1, 2])


def test_bootstrap_interval_is_seeded_and_covers_rho():
    rng = np.random.default_rng(1)
    x = rng.normal(size=60)
    y = x + rng.normal(scale=1.0, size=60)
    a = bootstrap_spearman(x, y, seed=3)
    assert a == bootstrap_spearman(x, y, seed=3)
    assert a != bootstrap_spearman(x, y, seed=4)
    assert a.lo < a.rho < a.hi and a.n == 60 and a.lo > 0.3
    noise = bootstrap_spearman(x, rng.normal(size=60), seed=3)
    assert noise.lo < 0 < noise.hi
    assert bootstrap_spearman(range(10), range(10)) == Correlation(1.0, 1.0, 1.0, 10)


def test_verdicts_follow_the_interval():
    pos, none, neg = Correlation(0.6, 0.3, 0.8, 40), Correlation(0.1, -0.2, 0.4, 40), Correlation(-0.5, -0.7, -0.2, 40)
    assert verdict(pos, "positive", "x")["verdict"] == "holds"
    assert verdict(none, "positive", "x")["verdict"] == "does not hold on this data"
    assert "opposite" in verdict(neg, "positive", "x")["says"]
    assert verdict(none, "none", "x")["verdict"] == "holds"
    assert verdict(pos, "none", "x")["verdict"] == "does not hold on this data"
    assert verdict(neg, "negative", "x")["verdict"] == "holds"
    assert verdict(Correlation(float("nan"), float("nan"), float("nan"), 2), "none", "x")["verdict"] == "not measured"
    assert "[+0.30, +0.80]" in verdict(pos, "positive", "x")["says"]


def test_fisher_ratio_and_silhouette_values():
    x = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [12.0, 0.0]])
    labels = np.array([0, 0, 1, 1])
    assert fisher_ratio(x, labels) == pytest.approx(100.0 / 2.0)  # |10|^2 / (1 + 1)
    # silhouette of point 0: a = 2, b = 11 -> 9/11; point 1: a = 2, b = 9 -> 7/9; symmetric for the others
    assert silhouette(x, labels) == pytest.approx((9 / 11 + 7 / 9) / 2)
    assert np.isnan(fisher_ratio(x, np.ones(4)))
    assert np.isnan(silhouette(x, np.zeros(4)))
