import json

import numpy as np
import pytest

from flimexplore.markers import MARGIN_FACTOR
from flimexplore.study.config import StudyConfig
from flimexplore.study.run import StopStudy, dense_positions, run_study, run_study_all
from flimexplore.study.store import COLUMNS, read_results


def test_study_writes_results_summary_and_heatmaps(tmp_path, small_config, small_context):
    out = tmp_path / "run"
    res = run_study_all(small_config, out, context=small_context)
    rows = read_results(out / "results.csv")
    assert len(rows) == 8 and list(rows[0]) == list(COLUMNS)
    assert {r["split"] for r in rows} == {0, 1}
    assert all(1 <= r["best_epoch"] <= small_config.epochs for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_models"] == 8 and summary["device"] == "cpu"
    assert summary["val_dice_min"] == pytest.approx(min(r["val_dice"] for r in rows), abs=1e-6)
    assert summary["val_dice_min"] < summary["val_dice_max"]
    for s in (0, 1):
        assert (out / f"heatmap_split{s}.png").stat().st_size > 0
    # markers of a split share the object marker and respect the radius
    assert len({(r["obj_row"], r["obj_col"]) for r in rows if r["split"] == 0}) == 1
    assert res.complete and len(res.arrays) == 8


def test_progress_counts_up_to_the_total(small_config, small_context):
    gen = run_study(small_config, None, context=small_context, model_chunk=3)
    events = []
    with pytest.raises(StopIteration):
        while True:
            events.append(next(gen))
    # events inside a chunk (slow machines: one every INSIDE_EVERY_S) do not move `done`
    assert [e.done for e in events if e.inside is None] == [0, 3, 6, 8] and events[-1].total == 8
    assert all(e.done in (0, 3, 6) for e in events if e.inside is not None)


def test_stop_returns_the_finished_models(tmp_path, small_config, small_context):
    gen = run_study(small_config, tmp_path, context=small_context, model_chunk=3)
    next(gen), next(gen)
    with pytest.raises(StopIteration) as stop:
        gen.throw(StopStudy())
    partial = stop.value.value
    assert not partial.complete and len(partial.rows) == 3
    assert len(read_results(tmp_path / "results.csv")) == 3
    assert not (tmp_path / "summary.json").exists()


def test_heatmap_layer_paints_each_marker(small_config, small_context):
    res = run_study_all(small_config, context=small_context)
    layer = res.heatmap(0)
    for r in (r for r in res.rows if r["split"] == 0):
        assert layer.value[r["bg_row"], r["bg_col"]] == pytest.approx(r["val_dice"])


def test_dense_positions_cover_the_background_grid():
    mask = np.zeros((40, 40), bool)
    mask[15:25, 15:25] = True
    pos = dense_positions(mask, np.array([20, 20]), radius=2)
    assert (pos % 2 == 0).all() and not mask[pos[:, 0], pos[:, 1]].any()
    assert (pos >= MARGIN_FACTOR * 2).all() and (pos <= 39 - MARGIN_FACTOR * 2).all()
    assert len(pos) > 200


def test_dense_study_scores_every_grid_position(small_context):
    cfg = small_context.config.replace(dense=True, splits=1, dense_spacing=16, epochs=3)
    res = run_study_all(cfg, device="cpu")
    assert len(res.rows) == len(res.markers[0].bg) > 10
    layer = res.heatmap(0)
    for r in res.rows:
        assert layer.value[r["bg_row"], r["bg_col"]] == pytest.approx(r["val_dice"])


def test_config_round_trips_through_json():
    cfg = StudyConfig(dataset="eggs", n_bg=7, dense=True)
    assert StudyConfig.from_json(cfg.to_json()) == cfg
    assert cfg.differences(cfg.replace(seed=4)) == {"seed": (0, 4)}
    with pytest.raises(ValueError, match="unknown"):
        StudyConfig.from_dict({"nope": 1})
