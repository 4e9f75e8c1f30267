"""The advice's abstention rule: a permutation test of the cross-fitted probe gain, on tables whose truth is known."""

import numpy as np
import pytest

from flimexplore.analysis.reliability import crossfit_gain, gain_null, probe_reliability


def test_seed_noise_alone_passes_the_test_at_most_about_5_percent_of_the_time():
    rng = np.random.default_rng(7)
    tables = [0.8 + 0.03 * rng.standard_normal((40, 5)) for _ in range(60)]
    trusted = [probe_reliability(t, "the marked image", seed=i)["reason"] == "trusted" for i, t in enumerate(tables)]
    assert sum(trusted) <= 8  # 5 % of 60 is 3; binomial 99.9 % bound about 9
    assert all(probe_reliability(t, "x", seed=0)["gain_p"] > 0 for t in tables)


def test_a_few_clearly_better_positions_are_trusted_even_where_the_icc_is_low():
    # 80 candidates equal up to seed noise, 5 of them 0.08 Dice better: position explains little of the
    # variance over all candidates (the first rule, ICC < 0.2, abstained), but the 5 best stand out.
    rng = np.random.default_rng(3)
    x = 0.7 + 0.05 * rng.standard_normal((80, 5))
    x[:5] += 0.08
    rel = probe_reliability(x, "the marked image")
    assert rel["position_share"] < 0.2
    assert not rel["abstain"] and rel["reason"] == "trusted" and rel["gain_p"] <= 0.05, rel
    assert rel["probe_gain_cv"] > rel["gain_noise95"]
    assert 0 < rel["probe_gain_cv"] < rel["probe_gain"]  # the in-sample gain includes the winners' luck
    assert rel["line"].startswith("advice trusted:")


def test_a_consistent_but_tiny_gain_is_flat_not_trusted():
    x = np.linspace(0.800, 0.806, 50)[:, None] + 1e-5 * np.random.default_rng(0).standard_normal((50, 5))
    rel = probe_reliability(x, "the marked image")
    assert rel["gain_p"] <= 0.05 and rel["probe_gain_cv"] < 0.01
    assert rel["abstain"] and rel["reason"] == "flat"


def test_failed_fits_clustered_at_some_positions_do_not_hide_a_real_order():
    # 45 usable positions with a real order (0.82 .. 0.88), 15 where most fits fail (Dice 0.1). Shuffled, the
    # failures spread over every candidate, the median candidate gets one, and the in-sample gain of the best 5
    # over the median is larger by chance than the real one: that test abstained on such probes. Measured on
    # fits that did not choose them, the best 5 still beat the median and the test sees it.
    rng = np.random.default_rng(5)
    x = np.concatenate([np.linspace(0.82, 0.88, 45)[:, None] + 0.005 * rng.standard_normal((45, 5)),
                        np.where(rng.random((15, 5)) < 0.6, 0.1, 0.85)])
    rel = probe_reliability(x, "the marked image")
    assert rel["reason"] == "trusted" and rel["gain_p"] <= 0.01, rel
    flat = np.broadcast_to(x.reshape(-1), (500, x.size))
    shuffled = np.random.default_rng(0).permuted(flat, axis=1).reshape(500, *x.shape).mean(axis=2)
    in_sample_null = -np.partition(-shuffled, 4, axis=1)[:, :5].mean(axis=1) - np.median(shuffled, axis=1)
    assert np.mean(in_sample_null >= rel["probe_gain"]) > 0.5  # the in-sample test would have called it noise


def test_the_cross_fitted_gain_of_a_hand_worked_table():
    # 6 candidates, 2 fits: choose on one fit, measure on the other, both ways round.
    x = np.array([[0.9, 0.5], [0.8, 0.8], [0.7, 0.7], [0.6, 0.6], [0.5, 0.9], [0.1, 0.1]])
    # choose on fit 0: best 5 = rows 0-4, fit-1 mean (0.5+0.8+0.7+0.6+0.9)/5 = 0.70, fit-1 median 0.65 -> 0.05
    # choose on fit 1: best 5 = rows 0-4 again, fit-0 mean 0.70, fit-0 median 0.65 -> 0.05
    assert crossfit_gain(x)[0] == pytest.approx(0.05)
    assert crossfit_gain(x, splits=[(0,)])[0] == pytest.approx(0.05)


def test_the_null_is_seeded_and_deals_every_score_out_again():
    x = np.random.default_rng(2).normal(0.8, 0.02, (30, 4))
    a, b = gain_null(x, n=50, seed=5), gain_null(x, n=50, seed=5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, gain_null(x, n=50, seed=6))
    # a table whose scores are all equal has no gain, shuffled or not
    assert np.all(gain_null(np.full((10, 3), 0.5), n=20) == 0)


def test_an_unscored_probe_is_refused():
    x = np.full((10, 3), 0.5)
    x[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        probe_reliability(x, "the marked image")
