"""analyse of a study with other readouts: attention against Dice and agreement between readouts, with intervals."""

import json
import math

import pytest

from flimexplore.analysis.analyse import analyse
from flimexplore.analysis.readouts import disagreements, readout_report
from flimexplore.cli import main
from flimexplore.study.readout_table import TRAINED
from flimexplore.study.run import run_study_all


@pytest.fixture(scope="module")
def finished(tmp_path_factory, small_config):
    out = tmp_path_factory.mktemp("readout_study")
    res = run_study_all(small_config.replace(n_bg=6, epochs=3, decoders="trained,vanilla,mean"), out, device="cpu")
    return out, res


def test_readout_report_relates_attention_to_dice(finished):
    _, res = finished
    report = readout_report([r for r in res.readouts if r["split"] >= 0], n_boot=100, seed=1)
    assert report["readouts"] == [TRAINED, "vanilla", "mean"]
    kinds = {(a["readout"], a["score"], a["dice_of"]) for a in report["attention"]}
    assert (TRAINED, "mass_in_object", "own") in kinds and ("mean", "pointing", "trained") in kinds
    assert (TRAINED, "pointing", "trained") not in kinds  # the trained layer's own Dice is the trained Dice
    for a in report["attention"]:
        assert a["split"] in (None, 0, 1) and a["n"] == (12 if a["split"] is None else 6)
        if a["rho"] is not None and a["lo"] is not None:
            assert a["lo"] <= a["rho"] <= a["hi"]
    pairs = {(a["a"], a["b"]) for a in report["agreement"]}
    assert pairs == {(TRAINED, "vanilla"), (TRAINED, "mean"), ("vanilla", "mean")}
    overall = [a for a in report["agreement"] if a["split"] is None]
    assert all(a["top5_overlap"] is not None and 0 <= a["top5_overlap"] <= 1 for a in overall)
    assert set(report["verdicts"]) == {TRAINED, "vanilla", "mean"}
    assert readout_report([r for r in res.readouts if r["split"] >= 0], n_boot=100, seed=1) == report  # seeded


def test_disagreements_rank_dice_against_attention(finished):
    _, res = finished
    found = disagreements(res.readouts, "mean", "mass_in_object", k=3)
    assert len(found) == 3 and abs(found[0]["gap"]) >= abs(found[-1]["gap"])
    assert all(-1 <= f["gap"] <= 1 and f["gap"] == pytest.approx(f["dice_rank"] - f["score_rank"]) for f in found)


@pytest.mark.slow
def test_analyse_and_its_cli_report_the_readouts(tmp_path, finished, capsys):
    study, res = finished
    report = analyse(study, tmp_path, device="cpu", n_boot=50, max_val_images=1)
    assert report["n_models"] == len(res.rows) == 12  # descriptors of the trained rows only
    on_disk = json.loads((tmp_path / "analysis.json").read_text())
    assert on_disk["readouts"]["readouts"] == [TRAINED, "vanilla", "mean"]
    assert all(math.isfinite(a["rho"]) for a in on_disk["readouts"]["agreement"] if a["rho"] is not None)
    assert main(["analyse", str(study), "--out", str(tmp_path / "cli"), "--n-boot", "20", "--max-val-images", "1",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "agreement of vanilla with trained (validation Dice): rho" in out and "attention: mean:" in out
