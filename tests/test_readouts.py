"""Other readouts of a study's models (issue 19): decoders and attention through the study, store, CLI and sweep."""

import csv
import json
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from flimexplore.cli import main
from flimexplore.engine.attention import attention_scores
from flimexplore.engine.decision import DecisionParams, head_gap
from flimexplore.engine.decoders import DECODERS, score_decoders
from flimexplore.engine.scores import metrics_from_counts
from flimexplore.errors import ConfigError, ResumeError
from flimexplore.study.config import StudyConfig
from flimexplore.study.context import unpack_models
from flimexplore.study.progress import StopStudy
from flimexplore.study.readout_summary import rank_agreement, top_overlap
from flimexplore.study.readout_table import ATTENTION_COLUMNS, READOUT_COLUMNS, READOUTS, TRAINED
from flimexplore.study.readouts import readout_maps
from flimexplore.study.run import run_study, run_study_all
from flimexplore.study.score import read_pairs, score_pairs_all
from flimexplore.study.store import COLUMNS, REPEAT_COLUMNS
from flimexplore.sweep import run_sweep_all

CFG = StudyConfig(dataset="fish", n_images=12, splits=2, n_bg=3, epochs=4, seed=5)
ALL = CFG.replace(decoders=READOUTS)


def _csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    out = tmp_path_factory.mktemp("plain")
    return run_study_all(CFG, out), out


@pytest.fixture(scope="module")
def every(tmp_path_factory):
    out = tmp_path_factory.mktemp("every")
    return run_study_all(ALL, out), out


def test_engine_decoders_are_the_study_readouts():
    assert READOUTS == (TRAINED, *DECODERS)


def test_config_takes_decoders_as_text_in_canonical_order():
    assert StudyConfig(decoders="mean, trained").decoders == (TRAINED, "mean")
    assert StudyConfig.from_json(ALL.to_json()).decoders == READOUTS
    assert CFG.decoders == (TRAINED,) and CFG.attention is False


@pytest.mark.parametrize(
    ("decoders", "match"),
    [
        ("trained,bogus", "decoders (--decoders) must be among trained, vanilla, probability, mean, labeled, got 'bogus'"),
        ("vanilla", "must include 'trained'"),
        ("trained,trained", "must name each decoder once"),
        ("", "decoders (--decoders) must be among"),
    ],
)
def test_bad_decoders_are_one_line(tmp_path, capsys, decoders, match):
    with pytest.raises(ConfigError, match="decoders"):
        StudyConfig(decoders=decoders).validate()
    code = main(["study", "--n-images", "12", "--splits", "1", "--n-bg", "3", "--decoders", decoders,
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("flimexplore: error: ") and match in err[0], err
    assert not (tmp_path / "o").exists()


def test_default_study_writes_no_readouts(plain):
    result, out = plain
    assert not (out / "readouts.csv").exists() and not (out / "repeats.csv").exists()
    assert tuple(_csv(out / "results.csv")[0]) == COLUMNS
    assert result.readouts == [] and "readouts" not in json.loads((out / "summary.json").read_text())
    assert not list(out.glob("heatmap_overview_*.png"))


def test_several_decoders_give_one_row_per_pair_and_decoder(plain, every):
    (base, _), (result, out) = plain, every
    rows = _csv(out / "results.csv")
    assert tuple(rows[0]) == (*COLUMNS, "decoder", *ATTENTION_COLUMNS)
    assert len(rows) == len(base.rows) * len(READOUTS)
    assert [(int(r["model"]), r["decoder"]) for r in rows] == [(m["model"], d) for m in base.rows for d in READOUTS]
    for r in rows:
        model = next(m for m in base.rows if m["model"] == int(r["model"]))
        for k in ("split", "bg_index", "obj_row", "bg_col", "seed"):  # a decoder row keeps the model's place
            assert int(r[k]) == model[k]
        if r["decoder"] == TRAINED:  # the trained rows are the default study's numbers
            for k in COLUMNS[11:]:
                assert float(r[k]) == pytest.approx(model[k], abs=0), k
        else:
            assert int(r["best_epoch"]) == 0
    assert len(result.rows) == len(base.rows) and len(result.readouts) == len(rows)
    assert [r["val_dice"] for r in result.decoder_rows("mean")] == [float(r["val_dice"]) for r in rows if r["decoder"] == "mean"]
    readouts = _csv(out / "readouts.csv")
    assert tuple(readouts[0]) == READOUT_COLUMNS and len(readouts) == len(rows)
    assert sorted(p.name for p in out.glob("heatmap_overview_*.png")) == sorted(
        f"heatmap_overview_{d}.png" for d in DECODERS)


def test_attention_columns_are_shares_or_nan(every):
    result, _ = every
    for r in result.readouts:
        for k in ATTENTION_COLUMNS:
            assert math.isnan(r[k]) or 0.0 <= r[k] <= 1.0, (r["decoder"], k, r[k])
    assert any(r["pointing"] > 0 for r in result.readouts)


def test_decoders_through_the_study_agree_with_the_engine(every):
    result, _ = every
    ctx = result.context
    ids = sorted(result.arrays)
    bank, params, bn = unpack_models([result.arrays[m] for m in ids], ctx.device, ctx.config.flim())
    for part, groups in (("val", ctx.val_groups), ("test", ctx.test_groups)):
        dice = metrics_from_counts(score_decoders(bank, groups, DECODERS).numpy())["dice"].mean(axis=2)
        for j, d in enumerate(DECODERS):
            got = [r[f"{part}_dice"] for r in sorted(result.decoder_rows(d), key=lambda r: r["model"])]
            np.testing.assert_allclose(got, dice[:, j], atol=5e-7, rtol=0)
    a, c = head_gap(DecisionParams(*(t[:, None] for t in params.astuple())), bn)
    att = attention_scores(bank, ctx.val_groups, a[:, 0], c[:, 0], DECODERS)
    for j, d in enumerate(READOUTS):
        rows = sorted(result.decoder_rows(d), key=lambda r: r["model"])
        for name, values in (("pointing", att.pointing), ("mass_in_object", att.mass_in_object)):
            want = torch.nanmean(values[:, j], dim=1).numpy()
            np.testing.assert_allclose([r[name] for r in rows], want, atol=5e-7, rtol=0, err_msg=f"{d} {name}")


def test_the_trained_cam_scores_as_the_trained_layer(every):
    """readouts.csv recounts fit 0's Dice from the head's CAM (logit gap > 0): it equals the trained layer's."""
    result, out = every
    cam = {int(r["model"]): r for r in _csv(out / "readouts.csv") if r["decoder"] == TRAINED}
    for row in result.rows:
        for k in ("val_dice", "test_dice", "val_sensitivity", "test_specificity"):
            assert float(cam[row["model"]][k]) == pytest.approx(row[k], abs=1e-3), k
    ctx, model = result.context, result.rows[0]["model"]
    image = ctx.dataset.images[ctx.split.val[0]]
    gap, pred = readout_maps(ctx, result.arrays[model], image, TRAINED)
    np.testing.assert_array_equal(pred, ctx.predict(result.arrays[model], image))
    assert gap.shape == pred.shape and gap.dtype == np.float32 and (gap > 0).sum() == pred.sum()
    saliency, mask = readout_maps(ctx, result.arrays[model], image, "mean")
    assert 0.0 <= saliency.min() and saliency.max() <= 1.0 and mask.dtype == bool


def test_summary_reports_readouts_and_their_agreement(every):
    result, out = every
    s = json.loads((out / "summary.json").read_text())["readouts"]
    assert s["readouts"] == list(READOUTS) and set(s["per_readout"]) == set(READOUTS)
    assert s["per_readout"]["trained"]["val_dice_max"] == pytest.approx(max(r["val_dice"] for r in result.rows))
    pairs = {(a["a"], a["b"]) for a in s["agreement"]}
    assert len(pairs) == 10 and ("trained", "vanilla") in pairs
    assert {a["part"] for a in s["agreement"]} == {"val", "test"} and {a["split"] for a in s["agreement"]} == {None, 0, 1}
    for a in s["agreement"]:
        assert a["rho"] is None or -1 <= a["rho"] <= 1
        if a["split"] is None:  # 6 sampled markers: the top 5 of each readout overlap in 4 or 5
            assert a["top5_overlap"] in (0.8, 1.0)
        else:  # 3 per split: every marker is in the top 5, the overlap says nothing
            assert a["top5_overlap"] is None


def test_top_overlap_and_rank_agreement_by_hand():
    a = {m: float(m) for m in range(8)}
    b = {m: float(m) for m in range(8)} | {7: -1.0}  # the best of a is the worst of b
    assert top_overlap(a, b) == pytest.approx(4 / 5)
    assert math.isnan(top_overlap({0: 1.0, 1: 2.0}, {0: 1.0, 1: 2.0}))  # at most 5 markers: every one is top
    out = rank_agreement(a, a)
    assert out == {"n": 8, "rho": 1.0, "top5_overlap": 1.0}
    assert rank_agreement(a, {m: 0.5 for m in a})["rho"] is None  # a constant readout has no ranks


def test_decoders_grow_on_resume_without_training_again(tmp_path, plain):
    out = tmp_path / "o"
    first = run_study_all(CFG, out)
    npz = {p.name: p.read_bytes() for p in (out / "models").glob("*.npz")}
    grown = run_study(CFG.replace(decoders="trained,mean"), out)
    events = []
    while True:
        try:
            events.append(next(grown))
        except StopIteration as stop:
            result = stop.value
            break
    assert any("read out by trained, mean" in e.message for e in events)
    assert {p.name: p.read_bytes() for p in (out / "models").glob("*.npz")} == npz  # nothing trained again
    assert [r["val_dice"] for r in result.decoder_rows(TRAINED)] == [r["val_dice"] for r in first.rows]
    fresh = run_study_all(CFG.replace(decoders="trained,mean"))
    assert result.readouts == fresh.readouts
    more = run_study_all(CFG.replace(decoders="trained,mean,labeled"), out)
    assert {r["decoder"] for r in more.readouts} == {TRAINED, "mean", "labeled"}
    with pytest.raises(ResumeError, match=r"decoders: folder has .* asked \['trained'\].*may grow"):
        run_study_all(CFG, out)
    with pytest.raises(ResumeError, match="decoders"):
        run_study_all(CFG.replace(decoders="trained,vanilla"), out)


def test_attention_alone_then_decoders(tmp_path):
    out = tmp_path / "o"
    att = run_study_all(CFG.replace(attention=True), out)
    assert {r["decoder"] for r in att.readouts} == {TRAINED} and len(att.readouts) == len(att.rows)
    assert tuple(_csv(out / "results.csv")[0]) == (*COLUMNS, "decoder", *ATTENTION_COLUMNS)
    more = run_study_all(CFG.replace(decoders="trained,vanilla"), out)  # attention is implied: it grows
    assert len(more.readouts) == 2 * len(more.rows)
    with pytest.raises(ResumeError):
        run_study_all(CFG.replace(attention=False), out)


def test_stopped_study_resumes_its_readouts(tmp_path):
    cfg = CFG.replace(decoders="trained,labeled")
    out = tmp_path / "o"
    gen = run_study(cfg, out, model_chunk=2)
    next(gen)
    next(gen)  # the first chunk: trained and read out
    with pytest.raises(StopIteration) as stop:
        gen.throw(StopStudy())
    part = stop.value.value
    assert len(part.rows) == 2 and len(part.readouts) == 4
    # a crash between storing a chunk's fits and its readouts: the readouts of model 1 are lost
    rows = [r for r in _csv(out / "readouts.csv") if r["model"] != "1"]
    with open(out / "readouts.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, READOUT_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    full = run_study_all(cfg, out, model_chunk=2)
    assert full.readouts == run_study_all(cfg, model_chunk=2).readouts
    assert len(full.readouts) == 2 * len(full.rows) == 12


def test_repeats_and_decoders(tmp_path):
    cfg = CFG.replace(splits=1, repeats=2, decoders="trained,mean")
    result = run_study_all(cfg, tmp_path)
    rows = _csv(tmp_path / "results.csv")
    assert tuple(rows[0]) == (*COLUMNS, *REPEAT_COLUMNS, "decoder", *ATTENTION_COLUMNS)
    for r in rows:
        if r["decoder"] == "mean":  # one deterministic readout of fit 0's encoder: no interval
            assert r["n_repeats"] == "1" and r["val_dice_sd"] == "nan" and r["val_dice_lo"] == "nan"
        else:
            assert r["n_repeats"] == "2"
    assert "repeats" in result.summary() and "readouts" in result.summary()


def test_sequential_engine_refuses_readouts():
    with pytest.raises(ConfigError, match="--engine sequential keeps no model parameters"):
        run_study_all(CFG.replace(decoders="trained,mean"), engine="sequential")


def test_score_reads_the_trained_rows_of_a_joined_results_csv(tmp_path, every):
    result, out = every
    pairs = read_pairs(out / "results.csv")
    assert len(pairs) == len(result.rows)
    again = score_pairs_all(ALL, pairs, tmp_path / "s")
    assert [r["val_dice"] for r in again.rows] == [r["val_dice"] for r in result.rows]
    assert again.readouts == result.readouts


def test_cli_study_with_decoders(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["study", "--n-images", "12", "--splits", "1", "--n-bg", "3", "--epochs", "3", "--quiet",
                 "--decoders", "trained,vanilla", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "vanilla" in text and "3 models" in text
    assert {r["decoder"] for r in _csv(out / "results.csv")} == {TRAINED, "vanilla"}


@pytest.mark.parametrize("executor", [None, "threads"])
def test_sweep_with_decoders_equals_the_study(tmp_path, executor):
    cfg = StudyConfig(n_images=12, splits=1, n_bg=3, epochs=3, seed=5)
    ex = ThreadPoolExecutor(2) if executor else None
    out = tmp_path / "sweep"
    run_sweep_all(["fish"], "0", cfg, out, executor=ex, model_chunk=2)
    result = run_sweep_all(["fish"], "0", cfg.replace(decoders="trained,mean"), out, executor=ex, model_chunk=2)
    study = run_study_all(cfg.replace(dataset="fish", image=0, decoders="trained,mean"), tmp_path / "study", model_chunk=2)
    assert (out / "fish" / "image0" / "results.csv").read_bytes() == (tmp_path / "study" / "results.csv").read_bytes()
    sweep_rows = _csv(out / "sweep.csv")
    assert tuple(sweep_rows[0])[-3:] == ("decoder", *ATTENTION_COLUMNS) and len(sweep_rows) == 2 * len(study.rows)
    entry = result.report["datasets"]["fish"]["image0"]
    assert entry["n_models"] == 3 and set(entry["readouts"]) == {TRAINED, "mean"}
