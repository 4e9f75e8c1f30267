"""Headless tests of the explorer's flow (issue 11 C): out-of-date views, live chunks, Stop/Run resume,
settings never changed silently, your own pair inspected, held-out scores behind a toggle.

Like ``tests/test_widgets.py``: set traits, simulate browser clicks, assert on state and figure data.
"""

from __future__ import annotations

import numpy as np
import pytest

from flimexplore.study.context import StudyContext
from flimexplore.widgets import USER_MODEL, Explorer, simulate_click
from flimexplore.widgets.app import eta_text

SETTINGS = dict(n_images=16, splits=2, n_bg=4, epochs=5, seed=3, sync=True, projections=False, device="cpu")


def trace(fig, name: str):
    return next(t for t in fig.data if t.name == name)


@pytest.fixture(scope="module")
def app() -> Explorer:
    app = Explorer("fish", **SETTINGS)
    app.run()
    assert app.state.error == "" and app.state.result.complete
    return app


def test_changed_setting_marks_every_view_out_of_date_until_the_next_run(app):
    s = app.state
    assert not s.stale and app.banner.value == ""
    s.epochs = 6
    assert s.stale and "settings changed — press Run" in app.banner.value
    assert app.heatmap.figure.layout.title.text.startswith("OUT OF DATE")
    assert app.distribution.figure.layout.title.text.startswith("OUT OF DATE")
    s.epochs = SETTINGS["epochs"]  # back to the shown study's settings: up to date again
    assert not s.stale and app.banner.value == "" and not app.heatmap.figure.layout.title.text.startswith("OUT")


def test_thumbnail_of_another_image_is_said_to_differ_from_the_heatmap(app):
    s = app.state
    shown = app.state.result.context.stem
    before = s.thumbnail
    s.image = 1
    try:
        assert s.thumbnail != before and s.stale
        assert "thumbnail shows the new settings" in app.banner.value and shown in app.banner.value
    finally:
        s.image = 0
    assert not s.stale


def test_run_clears_the_banner_and_same_settings_resume_at_once(app):
    s = app.state
    full = app.state.result
    with s.hold_trait_notifications():
        s.splits, s.n_bg = 1, 1
    assert s.stale
    app.run()  # a new, one-model study
    assert not s.stale and app.banner.value == "" and len(s.result.rows) == 1
    with s.hold_trait_notifications():
        s.splits, s.n_bg = SETTINGS["splits"], SETTINGS["n_bg"]
    assert s.stale
    app.run()  # the earlier study's folder: nothing to train
    assert not s.stale and s.result.rows == full.rows and "0 trained now, 8 kept" in s.status


def test_eta_text():
    assert eta_text(8, 8, 0, 3.0) == "8 / 8 models"
    assert eta_text(6, 8, 2, 4.0) == "6 / 8 models, ~2 s left"  # rate from the 4 trained now, not the 2 kept


@pytest.mark.slow
def test_stop_then_run_resumes_without_retraining_and_shows_chunks_live(monkeypatch):
    app = Explorer("fish", model_chunk=2, **SETTINGS)
    trained = []
    evaluate = StudyContext.evaluate

    def counting(self, obj, bg, seeds, *args, **kwargs):
        trained.append(len(obj))
        return evaluate(self, obj, bg, seeds, *args, **kwargs)

    def stop(change):
        if change["new"] >= 2:
            app.stop()

    monkeypatch.setattr(StudyContext, "evaluate", counting)
    app.state.observe(stop, names=["done"])
    app.run()
    first = app.state.result
    assert not first.complete and len(first.rows) == 2 and sum(trained) == 2
    assert dict((v, label) for label, v in app.heatmap.split.options) == {0: "1 of 2", 1: "2 of 2 (not trained yet)"}
    app.state.unobserve(stop, names=["done"])

    seen = []

    def record(change):
        res = change["new"]
        if not app.state.running:
            return
        seen.append((len(res.rows), res.complete, len(trace(app.distribution.figure, "markers").x),
                     len(trace(app.heatmap.figure, "background markers").x), app.controls.progress_label.value))
        if len(res.rows) == 4:  # select a model while the study runs: the selection survives later chunks
            app.state.selected = res.rows[3]["model"]

    app.state.observe(record, names=["result"])
    app.run()
    res = app.state.result
    assert res.complete and len(res.rows) == 8
    assert sum(trained) == 8  # 2 before Stop + 6 after: the 2 finished models were not trained again
    assert res.rows[:2] == first.rows
    assert "6 trained now, 2 kept" in app.state.status
    assert dict((v, label) for label, v in app.heatmap.split.options) == {0: "1 of 2", 1: "2 of 2"}
    # live: the kept models at once, then each finished chunk (the last is the final result)
    assert [n for n, *_ in seen] == [2, 4, 6, 8]
    assert [c for _, c, *_ in seen] == [False, False, False, True]
    assert [d for _, _, d, _, _ in seen] == [2, 4, 6, 8]  # the distribution shows every finished model
    assert [h for *_, h, _ in seen] == [2, 4, 4, 4]  # object marker 1 (4 models) on the heatmap
    assert seen[0][4] == "<small>2 / 8 models, estimating time left</small>"
    assert "4 / 8 models, ~" in seen[1][4] and "s left" in seen[1][4]
    assert app.state.selected == res.rows[3]["model"] and app.state.detail.model == res.rows[3]["model"]


def test_detail_shows_a_one_line_hint_until_a_marker_is_selected(app):
    app.state.selected = -1
    assert app.detail._figure_box.layout.display == "none"
    assert "Click a background marker" in app.detail.text.value and "<br>" not in app.detail.text.value
    simulate_click(app.heatmap.figure, "background markers", 0)
    assert app.detail._figure_box.layout.display is None and "validation Dice" in app.detail.text.value
    app.state.selected = -1


def test_test_scores_only_behind_the_held_out_toggle(app):
    simulate_click(app.heatmap.figure, "background markers", 1)
    assert "test" not in app.detail.text.value.lower()
    app.detail.show_test.value = True
    try:
        assert app.state.show_test and "held-out test set" in app.detail.text.value
        row = app.state.row(app.state.selected)
        assert f"{row['test_dice']:.3f}" in app.detail.text.value
    finally:
        app.detail.show_test.value = False
        app.state.selected = -1


def test_validation_image_counts_from_one_and_refuses_out_of_range(app):
    simulate_click(app.heatmap.figure, "background markers", 0)
    n = len(app.state.result.context.split.val)
    assert app.detail.n_val.value == f"of {n}" and app.detail.val_image.value == 1
    app.detail.val_image.value = 2
    assert app.state.val_image == 1 and app.state.detail.val_image == 1
    assert f"validation image 2 of {n}" in app.detail.text.value
    app.detail.val_image.value = n + 1
    assert app.state.val_image == 1 and app.detail.val_image.value == 2
    assert f"validation image {n + 1} does not exist: choose 1-{n}" in app.detail.message.value
    app.detail.val_image.value = 1
    assert app.detail.message.value == "" and app.state.val_image == 0
    app.state.selected = -1


def test_counting_from_one_everywhere(app):
    assert [label for label, _ in app.controls.image.options][:2] == ["1 of 3", "2 of 3"]
    assert [label for label, _ in app.heatmap.split.options] == ["1 of 2", "2 of 2"]
    assert "object marker 1 of 2" in app.heatmap.figure.layout.title.text


def test_dataset_change_keeps_a_marker_count_you_typed():
    app = Explorer("fish", **{**SETTINGS, "n_bg": None})
    s = app.state
    suggested_radius = {}
    from flimexplore.data import load_dataset

    for name in ("fish", "eggs"):
        ds = load_dataset(name, n_images=16)
        suggested_radius[name] = (ds.n_bg, ds.radius)
    assert s.n_bg == suggested_radius["fish"][0]
    app.controls.n_bg.value = 5  # typed by the user
    s.dataset = "eggs"
    assert s.n_bg == 5 and s.radius == suggested_radius["eggs"][1]  # the untouched radius follows the dataset


def test_dense_map_disables_the_marker_count(app):
    assert not app.controls.n_bg.disabled
    app.state.dense = True
    try:
        assert app.controls.n_bg.disabled and app.state.stale
    finally:
        app.state.dense = False
    assert not app.controls.n_bg.disabled and not app.state.stale


def test_placing_an_object_marker_never_snaps_to_a_background_marker(app):
    s = app.state
    app.clear_markers()
    s.click_mode = "object"
    try:
        assert trace(app.heatmap.figure, "background markers").hoverinfo == "skip"  # the browser reports the pixel
        simulate_click(app.heatmap.figure, "background markers", 0)
        assert s.user_obj is None
        obj = tuple(int(v) for v in s.result.markers[0].obj)
        simulate_click(app.heatmap.figure, "image", row=obj[0] + 1, col=obj[1])
        assert s.user_obj == (obj[0] + 1, obj[1])
    finally:
        s.click_mode = "select"
        app.clear_markers()
    assert trace(app.heatmap.figure, "background markers").hoverinfo is None


def test_your_pair_can_be_inspected_like_a_sampled_model(app):
    s = app.state
    mask = s.result.context.mask
    r, c = (int(v) for v in np.argwhere(~mask)[len(np.argwhere(~mask)) // 2])
    assert app.heatmap.inspect.disabled
    s.click_mode = "background"
    try:
        simulate_click(app.heatmap.figure, "image", row=r, col=c)
        assert s.user_score is not None and not app.heatmap.inspect.disabled
        app.heatmap.inspect.click()
        d = s.detail
        assert s.selected == USER_MODEL and d.model == USER_MODEL and s.error == ""
        assert tuple(d.bg) == (r, c) and d.row["val_dice"] == pytest.approx(s.user_score.dice)
        assert "your pair" in app.detail.text.value and f"{s.user_score.dice:.3f}" in app.detail.text.value
        assert d.pred.shape == d.truth.shape
    finally:
        s.click_mode = "select"
        app.clear_markers()
    assert s.selected == -1 and s.detail is None


def test_marker_errors_show_next_to_your_markers_not_the_settings(app):
    obj = tuple(int(v) for v in app.state.result.markers[0].obj)
    app.state.click_mode = "background"
    try:
        simulate_click(app.heatmap.figure, "image", row=obj[0], col=obj[1])
        assert app.state.error_at == "markers" and "lies on the object" in app.heatmap.message.value
        assert app.controls.message.value == ""
    finally:
        app.state.click_mode = "select"
        app.clear_markers()
        app.state.error = ""


@pytest.mark.slow
def test_feature_projection_has_enough_points_and_the_panel_says_how_many(app):
    from flimexplore.widgets import model_detail
    from flimexplore.widgets.detail import DetailView

    d = model_detail(app.state.result, app.state.rows(0)[0]["model"], **app._detail_kw)
    label = np.asarray(d.features["label"])
    n_obj, n_bg = int((label == 1).sum()), int((label == 0).sum())
    assert n_obj >= 10 and n_bg >= 10, (n_obj, n_bg)
    n_images = len(np.unique(d.features["image"]))
    assert DetailView._counts(d) == (f"<br>features: {n_obj} object + {n_bg} background superpixels on "
                                     f"{n_images} validation images")


def test_advice_layer_rings_the_best_positions_and_a_click_scores_one(app):
    s = app.state
    heat = app.heatmap.figure
    assert trace(heat, "advice map").visible is False and len(trace(heat, "advised positions").x) == 0
    app.heatmap.advice.value = True
    try:
        adv = s.advice
        assert adv is not None and s.show_advice and tuple(adv.obj) == tuple(s.result.markers[0].obj)
        rings = trace(heat, "advised positions")
        top = adv.top(s.advice_top)
        assert list(zip(rings.y, rings.x, strict=True)) == [tuple(int(v) for v in c) for c in top] and len(top) == 5
        assert trace(heat, "advice map").visible is True
        simulate_click(heat, "advised positions", 0)
        score = s.user_score
        assert s.error == "" and s.user_bg == tuple(int(v) for v in top[0]) and s.user_obj is None
        dice = np.array([r["val_dice"] for r in s.rows()])
        assert score.rank == 1 + int((dice > score.dice).sum()) and "advice #1" in s.status
        assert f"rank {score.rank} of {score.n + 1}" in s.status
    finally:
        app.heatmap.advice.value = False
        app.clear_markers()
    assert len(trace(heat, "advised positions").x) == 0


def test_advice_states_its_reliability_and_also_advises_object_markers(app):
    s = app.state
    heat = app.heatmap.figure
    app.heatmap.advice.value = True
    try:
        adv = s.advice
        assert adv.reliability is not None and app.heatmap.advice_line.value
        assert adv.reliability["line"].split(":")[0] in app.heatmap.advice_line.value  # "advice trusted" / "advice abstains"
        rings = trace(heat, "advised positions")
        assert (len(rings.x) == 0) == adv.abstains  # an abstaining advice rings nothing
        chosen = s.rows(0)[1]
        s.selected = chosen["model"]
        app.heatmap.advice_for.value = "object"  # object positions for the selected background marker
        adv = s.advice
        assert adv.settings.target == "object" and tuple(adv.obj) == (chosen["bg_row"], chosen["bg_col"])
        mask = s.result.context.mask
        assert mask[adv.centres[:, 0], adv.centres[:, 1]].all() and adv.reliability is not None
        if not adv.abstains:
            simulate_click(heat, "advised positions", 0)
            assert s.error == "" and s.user_obj == tuple(int(v) for v in adv.centres[0])
            assert s.user_bg == (chosen["bg_row"], chosen["bg_col"]) and s.user_score is not None
    finally:
        app.heatmap.advice_for.value = "background"
        app.heatmap.advice.value = False
        app.clear_markers()
        s.selected = -1


def test_analysis_panel_plots_a_descriptor_against_dice_and_selects_on_click(app):
    from flimexplore.analysis.correlate import spearman

    s = app.state
    fig = app.analysis.figure
    pts = trace(fig, "markers")
    rows = s.rows()
    assert len(pts.x) == len(rows) and list(pts.customdata) == [r["model"] for r in rows]
    np.testing.assert_allclose(pts.y, [r["val_dice"] for r in rows])
    app.analysis.choice.value = "bg_std"
    x = np.asarray(s.descriptors["bg_std"])
    np.testing.assert_allclose(trace(fig, "markers").x, x)
    rho = spearman(x, [r["val_dice"] for r in rows])
    assert f"ρ = {rho:+.2f}" in fig.layout.title.text and "bg_std" in fig.layout.title.text
    target = rows[5]
    simulate_click(fig, "markers", 5)
    assert s.selected == target["model"] and s.split == target["split"]
    assert list(trace(app.heatmap.figure, "selected").x) == [target["bg_col"]]
    assert list(trace(fig, "selected").x) == pytest.approx([x[5]])
    s.selected = -1
