"""Repeated fits (issue 17): every marker's Dice as a mean with an interval, resumable per fit."""

import csv
import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from flimexplore.cli import main
from flimexplore.errors import ConfigError, ResumeError
from flimexplore.study.config import StudyConfig
from flimexplore.study.context import StudyContext
from flimexplore.study.progress import StopStudy
from flimexplore.study.repeats import decision_seeds, mean_interval, repeat_seed, varied
from flimexplore.study.run import model_seed, run_study, run_study_all
from flimexplore.sweep import run_sweep_all

DATA = Path(__file__).parent / "data"
CFG = StudyConfig(dataset="fish", n_images=12, splits=2, n_bg=3, epochs=4, seed=5)
KPP = StudyConfig(dataset="fish", n_images=12, splits=1, n_bg=3, epochs=4, seed=5, clustering="kmeans++", restarts=2)


def _csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize(("cfg", "golden"), [(CFG, "results_before_repeats.csv"),
                                             (KPP, "results_before_repeats_kmeanspp.csv")])
def test_one_fit_writes_exactly_what_flimexplore_wrote_before_repeats(tmp_path, cfg, golden):
    """The golden files were written by commit 9242756, before repeats existed: R = 1 changes no number."""
    run_study_all(cfg.replace(repeats=1), tmp_path)
    assert (tmp_path / "results.csv").read_bytes() == (DATA / golden).read_bytes()
    assert not (tmp_path / "repeats.csv").exists()
    assert "repeats" not in json.loads((tmp_path / "summary.json").read_text())


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    out = tmp_path_factory.mktemp("three")
    return run_study_all(CFG.replace(repeats=3), out), out


@pytest.fixture(scope="module")
def one():
    return run_study_all(CFG)


def test_fit_zero_of_several_is_the_single_fit(three, one):
    result, out = three
    fits = {(int(f["model"]), int(f["repeat"])): f for f in _csv(out / "repeats.csv")}
    assert len(fits) == 3 * len(one.rows)
    for row in one.rows:
        f0 = fits[(row["model"], 0)]
        for col in ("seed", "best_epoch", "val_dice", "test_dice", "val_jaccard", "test_specificity"):
            assert float(f0[col]) == pytest.approx(row[col], abs=0), col
        assert int(f0["cluster_seed"]) == -1  # the farthest-point clustering has no seed
    for m, arrays in one.arrays.items():  # the stored parameters are fit 0's
        for key, value in arrays.items():
            np.testing.assert_array_equal(result.arrays[m][key], value, err_msg=key)


def test_rows_hold_the_mean_and_a_t_interval_of_the_fits(three):
    result, out = three
    fits = _csv(out / "repeats.csv")
    for row in result.rows:
        dice = np.array([float(f["val_dice"]) for f in fits if int(f["model"]) == row["model"]])
        test = np.array([float(f["test_dice"]) for f in fits if int(f["model"]) == row["model"]])
        assert row["n_repeats"] == 3
        assert row["val_dice"] == pytest.approx(dice.mean(), abs=1e-6)
        assert row["test_dice"] == pytest.approx(test.mean(), abs=1e-6)
        lo, hi = stats.t.interval(0.95, 2, loc=dice.mean(), scale=dice.std(ddof=1) / math.sqrt(3))
        assert (row["val_dice_lo"], row["val_dice_hi"]) == (pytest.approx(lo, abs=1e-6), pytest.approx(hi, abs=1e-6))
        assert row["val_dice_lo"] <= row["val_dice"] <= row["val_dice_hi"]
        assert row["val_dice_sd"] == pytest.approx(dice.std(ddof=1), abs=1e-6)
    spread = [r["val_dice_sd"] for r in result.rows]
    assert max(spread) > 0  # the decision seed does move the Dice


def test_intervals_narrow_as_fits_are_added():
    """On a fixed case (20 epochs, 6 markers) the mean interval width falls as fits are added.

    Each width is ``2 t_{R-1} sd / sqrt(R)``: the sd estimate is noisy from marker to marker, but
    ``t_{R-1} / sqrt(R)`` falls from 2.48 (R = 3) to 0.64 (R = 12).
    """
    cfg = StudyConfig(dataset="fish", n_images=12, splits=1, n_bg=6, seed=5)
    width = {r: np.mean([x["val_dice_hi"] - x["val_dice_lo"] for x in run_study_all(cfg.replace(repeats=r)).rows])
             for r in (3, 12)}
    assert width[12] < 0.7 * width[3]


def test_same_seed_gives_the_same_fits(three, tmp_path):
    _, out = three
    run_study_all(CFG.replace(repeats=3), tmp_path)
    assert (tmp_path / "repeats.csv").read_bytes() == (out / "repeats.csv").read_bytes()
    assert (tmp_path / "results.csv").read_bytes() == (out / "results.csv").read_bytes()


def test_what_each_repeat_redraws():
    base = [11, 22]
    assert decision_seeds(base, (0, 1, 2), "decision")[0] == [11, repeat_seed(11, 1), repeat_seed(11, 2)]
    assert decision_seeds(base, (0, 1, 2), "clustering") == [[11] * 3, [22] * 3]
    assert varied("both", "farthest") == ("decision",)
    assert varied("both", "kmeans++") == ("decision", "clustering")
    with pytest.raises(ConfigError, match="farthest.*no random choice"):
        CFG.replace(repeats=2, repeat_over="clustering").validate()
    with pytest.raises(ConfigError, match="repeats"):
        CFG.replace(repeats=0).validate()
    fits = run_study_all(KPP.replace(repeats=2, repeat_over="clustering")).fits
    seeds = {(f["model"], f["repeat"]): (f["seed"], f["cluster_seed"]) for f in fits}
    for m in {f["model"] for f in fits}:
        (s0, c0), (s1, c1) = seeds[(m, 0)], seeds[(m, 1)]
        assert s0 == s1 == model_seed(5, 0, 0, m)  # the decision layer is not re-drawn
        assert (c0, c1) == (42, repeat_seed(42, 1))  # k-means++ is, with one seed per fit shared by every model
    both = run_study_all(KPP.replace(repeats=2)).fits
    assert len({f["cluster_seed"] for f in both}) == 2 and len({f["seed"] for f in both}) == 2 * 3


def test_more_fits_resume_the_fits_already_made(three, tmp_path):
    _, out = three
    partial = tmp_path / "grow"
    run_study_all(CFG.replace(repeats=2), partial)
    gen = run_study(CFG.replace(repeats=3), partial)
    first = next(gen)
    assert "already done" in first.message and first.done == 0  # every model lacks its third fit
    while True:
        try:
            next(gen)
        except StopIteration:
            break
    # the grown folder equals a study run with 3 fits from the start, byte for byte
    assert (partial / "repeats.csv").read_bytes() == (out / "repeats.csv").read_bytes()
    assert (partial / "results.csv").read_bytes() == (out / "results.csv").read_bytes()
    with pytest.raises(ResumeError, match="repeats: folder has 3, asked 2.*--repeats may grow"):
        run_study_all(CFG.replace(repeats=2), partial)


def test_an_interrupted_study_resumes_to_the_same_bytes(three, tmp_path):
    _, out = three
    gen = run_study(CFG.replace(repeats=3), tmp_path, model_chunk=2)
    next(gen)
    next(gen)  # the first chunk (2 models x 3 fits) is stored
    with pytest.raises(StopIteration):
        gen.throw(StopStudy())
    assert len(_csv(tmp_path / "repeats.csv")) == 6
    run_study_all(CFG.replace(repeats=3), tmp_path)
    assert (tmp_path / "repeats.csv").read_bytes() == (out / "repeats.csv").read_bytes()


def test_a_folder_of_single_fits_grows_into_repeats(tmp_path, three):
    _, out = three
    run_study_all(CFG, tmp_path)
    run_study_all(CFG.replace(repeats=3), tmp_path)
    assert (tmp_path / "repeats.csv").read_bytes() == (out / "repeats.csv").read_bytes()


def test_summary_says_how_much_position_matters(three):
    result, out = three
    summary = json.loads((out / "summary.json").read_text())["repeats"]
    assert summary["n_repeats"] == 3 and summary["varied"] == ["decision"]
    assert "Student t" in summary["interval"] and "Holm" in summary["ties"]
    for split in summary["splits"]:
        assert 0 <= split["icc_lo"] <= split["icc"] <= split["icc_hi"] <= 1
        assert 1 <= split["n_tied_with_best"] <= split["n_markers"] == 3
        assert split["best_model"] in split["tied_models"]
        assert f"{split['n_tied_with_best']} of 3 background markers tie with the best" in split["verdict"]
    assert summary["all_models"]["n_markers"] == 6


def test_the_heatmap_png_gains_an_uncertainty_panel(three, one, tmp_path):
    import imageio.v3 as iio

    _, out = three
    run_study_all(CFG, tmp_path)
    with_panel = iio.imread(out / "heatmap_split0.png")
    without = iio.imread(tmp_path / "heatmap_split0.png")
    assert with_panel.shape[1] > without.shape[1] + 200  # the second panel and its colour bar


def test_sequential_reference_agrees_with_the_batched_fits():
    cfg = CFG.replace(splits=1, repeats=2)
    ctx = StudyContext(cfg, "cpu")
    from flimexplore.study.run import model_table, plan_markers

    table = model_table(ctx, plan_markers(ctx))
    obj, bg = np.stack([t.obj for t in table]), np.stack([t.bg for t in table])
    seeds = [t.seed for t in table]
    batched = ctx.evaluate(obj, bg, seeds)
    reference = ctx.evaluate_reference(obj, bg, seeds)
    np.testing.assert_array_equal(batched.fits.seeds, reference.fits.seeds)
    np.testing.assert_allclose(batched.fits.val["dice"], reference.fits.val["dice"], atol=1e-4)
    np.testing.assert_array_equal(batched.fits.best_epoch, reference.fits.best_epoch)


def test_mean_interval_is_the_student_t_interval():
    x = np.array([0.61, 0.66, 0.59, 0.70])
    mean, sd, lo, hi = mean_interval(x)
    exp = stats.t.interval(0.95, 3, loc=x.mean(), scale=stats.sem(x))
    assert (lo, hi) == (pytest.approx(exp[0]), pytest.approx(exp[1])) and sd == pytest.approx(x.std(ddof=1))
    assert all(math.isnan(v) for v in mean_interval(np.array([0.5]))[1:])


def test_cli_study_repeats(tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["study", "--dataset", "fish", "--n-images", "12", "--object-markers", "1", "--n-bg", "3",
                 "--epochs", "4", "--seed", "5", "--repeats", "2", "--quiet", "--out", str(out)])
    assert code == 0
    said = capsys.readouterr().out
    assert "(mean of 2 fits each)" in said and "object marker 0: position explains" in said
    assert (out / "repeats.csv").exists()
    code = main(["study", "--repeat-over", "clustering", "--repeats", "2", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "kmeans++" in err


def test_sweep_passes_repeats_through_in_process_and_on_an_executor(tmp_path):
    cfg = CFG.replace(splits=1, repeats=2)
    run_sweep_all(["fish"], [0], cfg, tmp_path / "here")
    with ThreadPoolExecutor(1) as pool:
        run_sweep_all(["fish"], [0], cfg, tmp_path / "there", executor=pool)
    here, there = tmp_path / "here" / "fish" / "image0", tmp_path / "there" / "fish" / "image0"
    assert (here / "repeats.csv").read_bytes() == (there / "repeats.csv").read_bytes()
    assert (here / "results.csv").read_bytes() == (there / "results.csv").read_bytes()
    assert "n_repeats" in _csv(here / "results.csv")[0]
    direct = run_study_all(cfg.replace(image=0))
    assert [r["val_dice"] for r in direct.rows] == [float(r["val_dice"]) for r in _csv(here / "results.csv")]
