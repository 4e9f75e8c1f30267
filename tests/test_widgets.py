"""Headless tests of the explorer: set traits, simulate browser clicks, assert on state and figures.

Clicks go through the same path as in a browser: the frontend sets the
synced trait ``_js2py_pointsCallback`` of the ``FigureWidget``, whose
handler dispatches to the traces' ``on_click`` callbacks.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from flimexplore.data import read_seeds
from flimexplore.figures import overlay
from flimexplore.widgets import Explorer, ExplorerState, explore, simulate_click

SETTINGS = dict(n_images=16, splits=2, n_bg=4, epochs=5, seed=3, sync=True, projections=False, device="cpu")


def click(fig, name: str, index: int | None = None, row: float | None = None, col: float | None = None) -> None:
    """Simulate a browser click on point ``index`` of trace ``name`` (or at pixel ``row, col`` of an image)."""
    simulate_click(fig, name, index, row=row, col=col)


def trace(fig, name: str):
    return next(t for t in fig.data if t.name == name)


def decode(source: str) -> np.ndarray:
    """The pixels of an image trace's PNG data URI."""
    import base64

    import imageio.v3 as iio

    return iio.imread(base64.b64decode(source.split(",", 1)[1]), extension=".png")


def assert_json_safe(app: Explorer) -> None:
    """What the figures send to the browser is strict JSON (Jupyter rejects NaN in messages)."""
    from plotly.serializers import _py_to_js

    for fig in (app.heatmap.figure, app.distribution.figure, app.detail.figure):
        plain = _py_to_js({"data": fig._widget_data, "layout": fig._widget_layout}, None)
        json.dumps(plain, allow_nan=False, default=lambda o: None if isinstance(o, memoryview) else o)


@pytest.fixture(scope="module")
def app() -> Explorer:
    app = Explorer("fish", **SETTINGS)
    app.run()
    assert app.state.error == ""
    return app


@pytest.fixture
def fresh(app: Explorer) -> Explorer:
    """The shared explorer with nothing selected and no markers of your own."""
    app.state.click_mode = "select"
    app.clear_markers()
    app.state.selected = -1
    app.state.split = 0
    app.state.error = ""
    return app


def test_state_builds_config():
    state = ExplorerState(dataset=" eggs ", n_images=0, n_bg=5, radius=4, splits=3, dense=True)
    cfg = state.config()
    assert (cfg.dataset, cfg.n_images, cfg.n_bg, cfg.radius, cfg.splits, cfg.dense, cfg.dense_spacing) == (
        "eggs", None, 5, 4, 3, True, None)


def test_run_fills_heatmap_and_distribution(fresh):
    res, s = fresh.state.result, fresh.state
    assert res.complete and len(res.rows) == 8 and s.done == s.total == 8 and not s.running
    assert s.device == "cpu" and "cpu" in fresh.controls.device.value
    bg = trace(fresh.heatmap.figure, "background markers")
    rows = s.rows(0)
    assert list(bg.customdata) == [r["model"] for r in rows]
    assert list(bg.x) == [r["bg_col"] for r in rows] and list(bg.y) == [r["bg_row"] for r in rows]
    np.testing.assert_allclose(bg.marker.color, [r["val_dice"] for r in rows])
    assert all(0.0 <= d <= 1.0 for d in bg.marker.color)
    obj = trace(fresh.heatmap.figure, "object marker")
    assert (obj.y[0], obj.x[0]) == tuple(res.markers[0].obj)
    assert len(trace(fresh.distribution.figure, "markers").x) == 8
    assert fresh.controls.progress.value == fresh.controls.progress.max == 8
    assert fresh.heatmap.split.options == (("1 of 2", 0), ("2 of 2", 1))
    assert fresh.controls.progress_label.value == "<small>8 / 8 models</small>"


def test_click_marker_selects_model_everywhere(fresh):
    fig = fresh.heatmap.figure
    click(fig, "background markers", 2)
    model = int(trace(fig, "background markers").customdata[2])
    row = fresh.state.row(model)
    assert fresh.state.selected == model and fresh.state.error == ""
    assert f"{row['val_dice']:.3f}" in fresh.detail.text.value
    d = fresh.state.detail
    assert d.model == model and d.pred.shape == d.truth.shape and 0.0 <= d.image_scores["dice"] <= 1.0
    sel = trace(fig, "selected")
    assert (sel.x[0], sel.y[0]) == (row["bg_col"], row["bg_row"])
    assert list(trace(fresh.distribution.figure, "selected").x) == pytest.approx([row["val_dice"]])
    shown = decode(trace(fresh.detail.figure, "prediction").source)
    np.testing.assert_array_equal(shown, overlay(d.image, d.truth, d.pred))
    assert_json_safe(fresh)


def test_click_on_image_inside_a_marker_selects_it(fresh):
    row = fresh.state.rows(0)[1]
    click(fresh.heatmap.figure, "image", row=row["bg_row"] + 1, col=row["bg_col"])
    assert fresh.state.selected == row["model"]


def test_distribution_click_selects_marker_on_heatmap(fresh):
    dist = fresh.distribution.figure
    index = [int(m) for m in trace(dist, "markers").customdata].index(fresh.state.rows(1)[3]["model"])
    click(dist, "markers", index)
    row = fresh.state.rows(1)[3]
    assert fresh.state.selected == row["model"] and fresh.state.split == 1
    assert fresh.heatmap.split.value == 1
    heat = fresh.heatmap.figure
    assert (trace(heat, "object marker").y[0], trace(heat, "object marker").x[0]) == tuple(
        fresh.state.result.markers[1].obj)
    assert (trace(heat, "selected").x[0], trace(heat, "selected").y[0]) == (row["bg_col"], row["bg_row"])


def test_split_selector_switches_object_marker(fresh):
    fresh.heatmap.split.value = 1
    assert fresh.state.split == 1
    bg = trace(fresh.heatmap.figure, "background markers")
    assert list(bg.customdata) == [r["model"] for r in fresh.state.rows(1)]


def test_selection_updates_each_figure_in_one_batched_message(fresh, monkeypatch):
    sent = []
    for fig in (fresh.heatmap.figure, fresh.distribution.figure):
        for kind in ("_send_update_msg", "_send_restyle_msg", "_send_relayout_msg"):
            original = getattr(fig, kind)
            monkeypatch.setattr(fig, kind, lambda *a, _k=kind, _f=original, _n=fig, **kw: (sent.append((_n, _k)),
                                                                                          _f(*a, **kw)))
    click(fresh.heatmap.figure, "background markers", 0)
    kinds = {(id(f), k) for f, k in sent}
    assert len(sent) == len(kinds) == 2 and {k for _, k in sent} == {"_send_update_msg"}


def test_place_background_marker_gives_dice_and_rank(fresh):
    s = fresh.state
    mask = s.result.context.mask
    r, c = np.argwhere(~mask)[len(np.argwhere(~mask)) // 3]
    s.click_mode = "background"
    click(fresh.heatmap.figure, "image", row=r, col=c)
    score = s.user_score
    assert s.user_bg == (r, c) and s.error == ""
    assert 0.0 <= score.dice <= 1.0 and 1 <= score.rank <= score.n + 1 and score.n == 8
    dice = np.array([row["val_dice"] for row in s.rows()])
    assert score.rank == 1 + int((dice > score.dice).sum())
    assert list(trace(fresh.distribution.figure, "your pair").x) == pytest.approx([score.dice] * 2)
    user = trace(fresh.heatmap.figure, "your bg marker")
    assert (user.y[0], user.x[0]) == (r, c) and f"{score.dice:.3f}" in fresh.heatmap.user.value


def test_your_pair_on_a_sampled_marker_reproduces_its_dice(fresh):
    row = fresh.state.rows(0)[0]
    fresh.state.click_mode = "background"
    click(fresh.heatmap.figure, "background markers", 0)
    assert fresh.state.user_bg == (row["bg_row"], row["bg_col"])
    assert fresh.state.user_score.dice == pytest.approx(row["val_dice"], abs=1e-3)


def test_marker_on_wrong_class_is_a_readable_message(fresh):
    obj = tuple(int(v) for v in fresh.state.result.markers[0].obj)
    fresh.state.click_mode = "background"
    click(fresh.heatmap.figure, "image", row=obj[0], col=obj[1])
    assert "lies on the object" in fresh.state.error
    assert "lies on the object" in fresh.heatmap.message.value  # next to the control that caused it
    assert fresh.controls.message.value == ""
    assert fresh.state.user_score is None


def test_seeds_round_trip_through_the_explorer(fresh, tmp_path):
    s = fresh.state
    mask = s.result.context.mask
    bg = tuple(int(v) for v in np.argwhere(~mask)[40])
    obj = tuple(int(v) for v in fresh.state.result.markers[1].obj)
    s.user_obj, s.user_bg = obj, bg
    path = fresh.save_seeds(tmp_path / "marked-seeds.txt")
    markers, shape = read_seeds(path)
    assert shape == mask.shape and set(markers[:, 2]) == {0, 1}
    fresh.clear_markers()
    assert s.user_obj is None and s.user_score is None
    s.seeds_path = str(path)
    fresh.load_seeds()
    assert (s.user_obj, s.user_bg) == (obj, bg) and s.user_score is not None and s.error == ""


def test_scribbles_from_a_seeds_file_are_scored_whole(fresh, tmp_path):
    from flimexplore.data import write_seeds
    from flimexplore.study.run import model_seed
    from flimexplore.widgets.inspect import USER_BG_INDEX

    s = fresh.state
    ctx = s.result.context
    r0, c0 = (int(v) for v in s.result.markers[0].obj)
    obj = np.array([(r0, c) for c in range(c0 - 3, c0 + 4) if ctx.mask[r0, c]])
    bgs = np.argwhere(~ctx.mask)
    bg = np.concatenate([bgs[100:130], bgs[-60:-40]])  # two strokes
    rows = np.concatenate([np.column_stack([obj, np.ones(len(obj), int)]), np.column_stack([bg, np.zeros(len(bg), int)])])
    write_seeds(tmp_path / "scribble-seeds.txt", rows, ctx.mask.shape)
    fresh.load_seeds(tmp_path / "scribble-seeds.txt")
    assert s.error == "" and s.user_markers is not None and len(s.user_markers) == len(rows)
    seed = model_seed(s.result.config.seed, s.result.config.image, s.split, USER_BG_INDEX + 1)
    want = ctx.evaluate_markers([obj], [bg], [seed]).val["dice"][0]
    assert s.user_score.dice == pytest.approx(want) and "scored whole" in s.status
    fresh.clear_markers()
    assert s.user_markers is None
    assert ExplorerState(object_label="128, 0").config().object_label == (0, 128)


def test_load_missing_seeds_file_is_a_readable_message(fresh, tmp_path):
    fresh.heatmap.path.value = str(tmp_path / "nope-seeds.txt")
    button = [b for b in fresh.heatmap.widget.children[-1].children if getattr(b, "description", "") == "Load"][0]
    button.click()
    assert "cannot read seeds file" in fresh.state.error


def test_folder_that_does_not_exist_is_a_readable_message(app, tmp_path):
    missing = str(tmp_path / "no-such-folder")
    app.controls.dataset.value = missing
    try:
        assert "no dataset named" in app.state.error and missing in app.controls.message.value
        app.controls.run.click()  # the Run button with the bad path
        assert "no dataset named" in app.state.error and not app.state.running
        assert app.state.result is not None  # the last study is kept
    finally:
        app.state.dataset = "fish"
    assert app.state.error == ""


def test_invalid_setting_is_a_readable_message_and_nothing_runs(fresh):
    before = fresh.state.result
    fresh.state.epochs = 0
    try:
        fresh.controls.run.click()
        assert "epochs" in fresh.state.error and not fresh.state.running and fresh.state.result is before
    finally:
        fresh.state.epochs = SETTINGS["epochs"]


def test_unexpected_errors_land_in_the_panel_with_traceback(fresh, monkeypatch):
    import flimexplore.widgets.app as app_module

    def boom(*args, **kwargs):
        raise RuntimeError("projection exploded")

    monkeypatch.setattr(app_module, "model_detail", boom)
    click(fresh.heatmap.figure, "background markers", 1)
    assert fresh.state.error == "RuntimeError: projection exploded"
    assert any("Traceback" in out.get("text", "") for out in fresh.log.outputs)


def test_stop_keeps_finished_models():
    app = Explorer("fish", model_chunk=2, **SETTINGS)
    app.state.observe(lambda change: app.stop() if change["new"] >= 2 else None, names=["done"])
    app.run()
    res = app.state.result
    assert not res.complete and len(res.rows) == 2 and not app.state.running
    assert "stopped" in app.state.status
    assert len(trace(app.heatmap.figure, "background markers").x) == 2


def test_background_thread_run_then_stop():
    app = Explorer("fish", **{**SETTINGS, "sync": False, "splits": 1})
    app.run()
    assert app.state.running
    app.stop()
    res = app.wait(120)
    assert not app.state.running and res is not None and not res.complete and app.state.error == ""


def test_dense_map_layer():
    app = Explorer("fish", dense=True, dense_spacing=32, **{**SETTINGS, "splits": 1})
    app.run()
    res = app.state.result
    assert res.config.dense and len(res.rows) > 2
    layer = trace(app.heatmap.figure, "dense map")
    z = np.array(layer.z, dtype=float)  # None (unpainted) -> NaN
    assert layer.visible is True and z.shape == res.context.mask.shape
    assert np.nanmax(z) <= 1.0 and np.isnan(z).any()
    assert_json_safe(app)


def test_projections_of_the_selected_model():
    app = explore("eggs", **{**SETTINGS, "splits": 1, "projections": True, "feature_images": 1, "superpixels": 15})
    app.run()
    click(app.heatmap.figure, "background markers", 0)
    d = app.state.detail
    assert set(d.patches["label"]) == {0, 1} and len(d.features["x"]) > 3
    assert len(trace(app.detail.figure, "patches: object").x) == int(d.patches["label"].sum())
    bundle = app._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_markers_placed_before_a_run_are_scored_by_it():
    app = Explorer("fish", **{**SETTINGS, "splits": 1, "n_bg": 2})
    app.state.click_mode = "background"
    simulate_click(app.heatmap.figure, "image", row=5, col=5)  # a background corner of this marked image
    assert app.state.user_bg == (5, 5) and app.state.user_score is None
    assert "run a study" in app.state.status
    app.run()
    assert not app.state.result.context.mask[5, 5]
    score = app.state.user_score
    assert score is not None and score.bg == (5, 5) and score.n == 2 and app.state.error == ""


def test_stored_widget_state_follows_updates(fresh):
    """A view created later (the app displayed after being driven from Python) renders the current figure."""
    click(fresh.heatmap.figure, "background markers", 3)
    for fig in (fresh.heatmap.figure, fresh.distribution.figure, fresh.detail.figure):
        assert [t.get("name") for t in fig._widget_data] == [t.name for t in fig.data]
        for stored, live in zip(fig._widget_data, fig.data, strict=True):
            if live.type == "scatter":
                assert list(np.ravel(stored.get("x", []))) == list(np.ravel(live.x))
            else:
                assert stored.get("source") == getattr(live, "source", None)
    assert fresh.heatmap.figure._widget_data[5]["x"] == [fresh.state.row(fresh.state.selected)["bg_col"]]
