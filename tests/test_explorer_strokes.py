"""Freehand strokes and whole scribbles in the explorer (issue 9): drawn, shown pixel by pixel, scored whole.

A stroke arrives as the browser sends it: Plotly's ``drawopenpath`` adds a path shape and reports
``relayout({"shapes": [...]})``, which the ``FigureWidget`` receives in its synced ``_js2py_relayout``
trait; the tests set that trait.
"""

from __future__ import annotations

import numpy as np
import pytest

from flimexplore.data import read_seeds, write_seeds
from flimexplore.errors import MarkerError
from flimexplore.markers import marker_pixels, stroke_pixels
from flimexplore.widgets import Explorer
from flimexplore.widgets.heatmap import path_points
from flimexplore.widgets.inspect import score_markers

SETTINGS = dict(n_images=16, splits=1, n_bg=4, epochs=4, seed=2, sync=True, projections=False, device="cpu")


def draw(app: Explorer, points: np.ndarray) -> None:
    """Send a stroke through (row, col) points as the browser does after a drag in a draw mode."""
    path = "M" + "L".join(f"{c:.2f},{r:.2f}" for r, c in points)
    shape = {"type": "path", "path": path, "line": {"color": "white", "width": 2}, "editable": True}
    app.heatmap.figure._js2py_relayout = {"relayout_data": {"shapes": [shape]}, "source_view_id": "test"}


def run_of(mask: np.ndarray, value: bool, length: int = 16, margin: int = 6) -> np.ndarray:
    """Two points of a horizontal run of ``length`` pixels of one class, away from the border and the other class."""
    h, w = mask.shape
    for r in range(margin, h - margin):
        for c in range(margin, w - margin - length):
            if (mask[r - 2 : r + 3, c - 2 : c + length + 2] == value).all():
                return np.array([[r, c], [r, c + length - 1]], dtype=float)
    raise AssertionError("no such run on the marked image")


def trace_pixels(app: Explorer, name: str) -> set[tuple[int, int]]:
    t = next(t for t in app.heatmap.figure.data if t.name == name)
    return {(int(y), int(x)) for x, y in zip(t.x or (), t.y or (), strict=True)}


@pytest.fixture(scope="module")
def studied() -> Explorer:
    app = Explorer("fish", **SETTINGS)
    app.run()
    assert app.state.error == ""
    return app


@pytest.fixture
def app(studied: Explorer) -> Explorer:
    studied.clear_markers()
    studied.state.click_mode = "select"
    studied.state.stroke_radius = 1
    studied.state.error = ""
    return studied


def test_path_points_reads_plotly_paths():
    assert path_points("M10.5,3L11,4.25L12,5").tolist() == [[3.0, 10.5], [4.25, 11.0], [5.0, 12.0]]
    assert path_points("M-1.5e1,2").tolist() == [[2.0, -15.0]]
    assert path_points("").shape == (0, 2)


def test_stroke_pixels_joins_points_and_widens_by_the_brush():
    px, outside = stroke_pixels([[1, 1], [3, 3]], 0, (6, 6))
    assert px.tolist() == [[1, 1], [2, 2], [3, 3]] and outside == 0
    wide, _ = stroke_pixels([[1, 1], [3, 3]], 1, (6, 6))
    expected = {tuple(q) for c in px for q in marker_pixels(c, 1, (6, 6))}
    assert {tuple(q) for q in wide} == expected and len(wide) == len(expected)


def test_stroke_pixels_drops_what_lies_off_the_image_and_refuses_nonsense():
    px, outside = stroke_pixels([[2, 2], [2, 9]], 0, (5, 5))
    assert px.tolist() == [[2, 2], [2, 3], [2, 4]] and outside == 1
    with pytest.raises(MarkerError, match="outside the 5x5 image"):
        stroke_pixels([[10, 10], [12, 12]], 0, (5, 5))
    with pytest.raises(MarkerError, match="finite"):
        stroke_pixels([[1, np.nan]], 0, (5, 5))


def test_a_background_stroke_is_shown_pixel_by_pixel_and_scored_as_drawn(app):
    res = app.state.result
    mask = res.context.mask
    points = run_of(mask, False)
    app.state.click_mode = "draw background"
    draw(app, points)
    assert app.state.error == ""
    assert app.heatmap.figure.layout.shapes == ()  # the path itself is removed; its pixels are drawn instead
    expected, _ = stroke_pixels(points, 1, mask.shape)
    got = app.state.user_markers
    assert sorted(map(tuple, got[:, :2])) == sorted(map(tuple, expected)) and (got[:, 2] == 0).all()
    assert trace_pixels(app, "your bg strokes") == set(map(tuple, expected))
    # the missing object class is the shown object marker's disk; the model trains on exactly these pixels
    obj = marker_pixels(res.markers[0].obj, res.config.radius, mask.shape)
    markers = np.concatenate([np.column_stack([expected, np.zeros(len(expected), int)]),
                              np.column_stack([obj, np.ones(len(obj), int)])])
    want = score_markers(res, markers, 0)
    assert app.state.user_score.dice == pytest.approx(want.dice, abs=1e-9)
    assert "scored whole" in app.state.status and f"{len(expected)} background pixels" in app.state.status


def test_an_object_stroke_joins_the_background_one_and_changes_the_model(app):
    mask = app.state.result.context.mask
    app.state.click_mode = "draw background"
    draw(app, run_of(mask, False))
    before = app.state.user_score.dice
    app.state.click_mode = "draw object"
    obj_points = run_of(mask, True, length=8, margin=4)
    draw(app, obj_points)
    m = app.state.user_markers
    obj_px, _ = stroke_pixels(obj_points, 1, mask.shape)
    assert set(map(tuple, m[m[:, 2] == 1, :2])) == set(map(tuple, obj_px))
    assert trace_pixels(app, "your object strokes") == set(map(tuple, obj_px))
    want = score_markers(app.state.result, m, 0)
    assert app.state.user_score.dice == pytest.approx(want.dice, abs=1e-9)
    assert app.state.user_score.dice != pytest.approx(before, abs=1e-6)  # other object pixels, another model


def test_a_drag_outside_the_draw_modes_marks_nothing(app):
    app.state.click_mode = "select"
    draw(app, run_of(app.state.result.context.mask, False))
    assert app.state.user_markers is None and app.heatmap.figure.layout.shapes == ()


def test_strokes_off_the_image_or_on_the_other_class_are_said(app):
    mask = app.state.result.context.mask
    h, w = mask.shape
    app.state.click_mode = "draw background"
    draw(app, np.array([[3.0, w - 6.0], [3.0, w + 20.0]]))
    assert "stroke points off the image were dropped" in app.state.status
    app.clear_markers()
    draw(app, run_of(mask, True, length=8, margin=4))  # a "background" stroke inside the fish
    assert "lie on the other class" in app.state.status
    app.clear_markers()
    draw(app, np.array([[h + 10.0, 5.0], [h + 20.0, 9.0]]))
    assert "outside the" in app.state.error and app.state.user_markers is None


def test_a_loaded_scribble_is_drawn_whole_and_saved_back_whole(app, tmp_path):
    res = app.state.result
    mask = res.context.mask
    bg_px, _ = stroke_pixels(run_of(mask, False), 1, mask.shape)
    obj_px, _ = stroke_pixels(run_of(mask, True, length=8, margin=4), 0, mask.shape)
    seeds = np.concatenate([np.column_stack([obj_px, np.ones(len(obj_px), int)]),
                            np.column_stack([bg_px, np.zeros(len(bg_px), int)])])
    write_seeds(tmp_path / "scribble-seeds.txt", seeds, mask.shape)
    app.load_seeds(tmp_path / "scribble-seeds.txt")
    assert trace_pixels(app, "your bg strokes") == set(map(tuple, bg_px))  # every pixel, not a centre
    assert trace_pixels(app, "your object strokes") == set(map(tuple, obj_px))
    assert not trace_pixels(app, "your bg marker")  # no disk stands in for the scribble
    assert app.state.user_score.dice == pytest.approx(score_markers(res, seeds, 0).dice, abs=1e-9)
    app.save_seeds(tmp_path / "again-seeds.txt")
    back, _ = read_seeds(tmp_path / "again-seeds.txt", image_shape=mask.shape)
    assert sorted(map(tuple, back)) == sorted(map(tuple, seeds))


def test_placing_an_object_disk_replaces_only_the_object_strokes(app):
    res = app.state.result
    mask = res.context.mask
    app.state.click_mode = "draw background"
    bg_points = run_of(mask, False)
    draw(app, bg_points)
    app.state.click_mode = "draw object"
    draw(app, run_of(mask, True, length=8, margin=4))
    centre = tuple(int(v) for v in res.markers[0].obj)
    app.state.click_mode = "object"
    app.state.user_obj = centre
    m = app.state.user_markers
    disk = marker_pixels(np.array(centre), app.state.radius, mask.shape)
    assert set(map(tuple, m[m[:, 2] == 1, :2])) == set(map(tuple, disk))
    assert set(map(tuple, m[m[:, 2] == 0, :2])) == set(map(tuple, stroke_pixels(bg_points, 1, mask.shape)[0]))
    assert app.state.user_score.dice == pytest.approx(score_markers(res, m, 0).dice, abs=1e-9)
