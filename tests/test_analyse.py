"""flimexplore analyse on a finished tiny study: descriptors, correlations, verdicts, files (issue 8 §2)."""

import json
import math

import numpy as np
import pytest

from flimexplore.analysis.analyse import analyse, load_study
from flimexplore.analysis.descriptors import DESCRIPTORS
from flimexplore.analysis.model_descriptors import MODEL_DESCRIPTORS, model_descriptors
from flimexplore.cli import main
from flimexplore.errors import OutputError
from flimexplore.study.run import run_study_all


@pytest.fixture(scope="module")
def finished(tmp_path_factory, small_config, small_context):
    out = tmp_path_factory.mktemp("study")
    res = run_study_all(small_config.replace(n_bg=5, epochs=3), out, device="cpu")
    return out, res


@pytest.mark.slow
def test_analyse_writes_report_figure_and_table(tmp_path, finished):
    study, res = finished
    report = analyse(study, tmp_path, device="cpu", n_boot=200, max_val_images=3)
    on_disk = json.loads((tmp_path / "analysis.json").read_text())
    assert on_disk["n_models"] == report["n_models"] == len(res.rows) == 10
    names = set(DESCRIPTORS) | set(MODEL_DESCRIPTORS) | {"val_superpixel_silhouette", "val_superpixel_fisher"}
    assert names <= set(on_disk["descriptors"])
    for name in ("fit_dice_marked", "val_superpixel_silhouette", "patch_fisher", "bg_std", "feature_fisher_marked"):
        entry = on_disk["descriptors"][name]
        assert math.isfinite(entry["all"]["rho"]) and entry["all"]["lo"] <= entry["all"]["rho"] <= entry["all"]["hi"]
        assert len(entry["per_split"]) == 2 and entry["per_split"][0]["n"] == 5
    assert on_disk["descriptors"]["val_superpixel_silhouette"]["reads"] == "validation images and masks"
    claims = on_disk["claims"]
    assert claims["rq2_fig4c_feature_separation"]["verdict"] in ("holds", "does not hold on this data")
    assert claims["rq2_fig4b_patch_separation"]["verdict"] in ("holds", "does not hold on this data")
    assert claims["object_markers_on_the_border_help"]["verdict"] == "not measured"  # background study
    assert (tmp_path / "analysis.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (tmp_path / "descriptors.csv").read_text().splitlines()
    assert len(table) == 11 and table[0].startswith("model,split,obj_row,obj_col,bg_row,bg_col,val_dice,")
    # the reported rho is the rank correlation of the written table's columns
    from flimexplore.analysis.correlate import spearman

    header = table[0].split(",")
    cols = np.array([[float(v) for v in line.split(",")] for line in table[1:]])
    k = header.index("fit_dice_marked")
    assert on_disk["descriptors"]["fit_dice_marked"]["all"]["rho"] == pytest.approx(spearman(cols[:, k], cols[:, 6]), abs=1e-5)


@pytest.mark.slow
def test_model_descriptors_tell_a_good_model_from_a_broken_one(finished, small_context):
    study, res = finished
    _, _, _, arrays = load_study(study)
    best = max(res.rows, key=lambda r: r["val_dice"])
    good = model_descriptors(res.context, arrays[best["model"]])
    broken = dict(arrays[best["model"]])
    broken["weight"] = np.zeros_like(broken["weight"])  # decision layer predicts one class everywhere
    broken["bias"] = np.array([10.0, -10.0], dtype=broken["bias"].dtype)  # row 0 background, row 1 object
    bad = model_descriptors(res.context, broken)
    assert 0.3 < good["fit_dice_marked"] <= 1.0 and bad["fit_dice_marked"] < 0.05
    assert good["feature_fisher_marked"] == pytest.approx(bad["feature_fisher_marked"])  # same FLIM features
    assert -1.0 <= good["feature_silhouette_marked"] <= 1.0


def test_analyse_refuses_what_is_not_a_finished_study(tmp_path, capsys):
    with pytest.raises(OutputError, match="not a study folder"):
        load_study(tmp_path)
    assert main(["analyse", str(tmp_path), "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "not a study folder" in err and err.count("\n") == 1
    assert main(["analyse", str(tmp_path), "--out", str(tmp_path / "a"), "--n-boot", "1"]) == 2
    assert "--n-boot" in capsys.readouterr().err
