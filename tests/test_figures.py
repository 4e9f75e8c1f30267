"""Tests of the pure Plotly builders: tiny literal arrays in, figure data asserted."""

import json
from types import SimpleNamespace

import numpy as np
import plotly.graph_objects as go
import pytest

from flimexplore import figures
from flimexplore.colormap import plotly_colorscale

IMAGE = np.zeros((20, 30, 3), np.float32)
IMAGE[5:10, 5:15] = 1.0
OBJ = np.array([7, 9])
BG = np.array([[15, 3], [15, 25], [3, 25]])
DICE = np.array([0.2, 0.9, 0.5])
TABLE = {"x": np.arange(6.0), "y": -np.arange(6.0), "label": np.array([1, 1, 0, 0, 0, 1])}


def trace(fig: go.Figure, name: str):
    (found,) = [t for t in fig.data if t.name == name]
    return found


def test_heatmap_trace_order_is_fixed():
    empty = figures.heatmap_figure(IMAGE, None, np.zeros((0, 2)), [], 2)
    full = figures.heatmap_figure(IMAGE, OBJ, BG, DICE, 2, selected=1, dense=np.ones((20, 30)), user_obj=(6, 6),
                                  user_bg=(2, 2), user_dice=0.4)
    assert tuple(t.name for t in empty.data) == figures.HEATMAP_TRACES
    assert tuple(t.name for t in full.data) == figures.HEATMAP_TRACES
    assert [t.type for t in empty.data] == [t.type for t in full.data]
    json.dumps(empty.to_plotly_json(), cls=None, allow_nan=False, default=lambda o: o.tolist())


def test_heatmap_markers_coloured_by_dice_with_shared_scale():
    fig = figures.heatmap_figure(IMAGE, OBJ, BG, DICE, 2, models=[10, 11, 12], vrange=(0.1, 0.95))
    bg = trace(fig, "background markers")
    assert list(bg.x) == [3, 25, 25] and list(bg.y) == [15, 15, 3]  # x = column, y = row
    np.testing.assert_allclose(bg.marker.color, DICE)
    assert list(bg.customdata) == [10, 11, 12]
    assert (bg.marker.cmin, bg.marker.cmax) == (0.1, 0.95)
    assert bg.marker.showscale and [list(s) for s in bg.marker.colorscale] == [list(s) for s in plotly_colorscale()]
    assert "Dice" in bg.hovertemplate
    obj = trace(fig, "object marker")
    assert (list(obj.x), list(obj.y)) == ([9], [7]) and obj.marker.color == figures.OBJECT
    assert obj.marker.symbol == "star" and bg.marker.symbol == "circle"  # its own glyph
    assert trace(fig, "dense map").visible is False
    assert fig.layout.yaxis.range == (19.5, -0.5)  # rows grow downwards


def test_heatmap_marker_size_follows_radius():
    small = trace(figures.heatmap_figure(IMAGE, OBJ, BG, DICE, 1, size=300), "background markers").marker.size
    large = trace(figures.heatmap_figure(IMAGE, OBJ, BG, DICE, 3, size=300), "background markers").marker.size
    assert large == pytest.approx(3 * small)
    assert large == pytest.approx(2 * 3 * 300 / 30)


def test_heatmap_selected_dense_and_user_markers():
    dense = np.full((20, 30), np.nan)
    dense[10:14, 10:14] = 0.7
    fig = figures.heatmap_figure(IMAGE, OBJ, BG, DICE, 2, selected=2, dense=dense, user_obj=(6, 7), user_bg=(1, 2),
                                 user_dice=0.44)
    sel = trace(fig, "selected")
    assert (list(sel.x), list(sel.y)) == ([25], [3])
    layer = trace(fig, "dense map")
    assert layer.visible is True and np.shape(layer.z) == (20, 30) and layer.hoverinfo == "skip"
    assert layer.z[0][0] is None and layer.z[10][10] == 0.7  # NaN would make the widget's JSON invalid
    assert (list(trace(fig, "your object marker").x), list(trace(fig, "your bg marker").y)) == ([7], [1])
    assert trace(fig, "your bg marker").text == ("0.440",)
    assert trace(figures.heatmap_figure(IMAGE, OBJ, BG, DICE, 2, selected=7), "selected").x == ()


def test_distribution_strip_rows_and_highlights():
    fig = figures.distribution_figure(DICE, [0, 1, 1], [4, 5, 6], selected=1, user_dice=0.3)
    assert tuple(t.name for t in fig.data) == figures.DISTRIBUTION_TRACES
    pts = trace(fig, "markers")
    np.testing.assert_allclose(pts.x, DICE)
    assert np.all(np.abs(np.asarray(pts.y) - [0, 1, 1]) <= 0.3)
    assert list(pts.customdata) == [4, 5, 6]
    assert list(trace(fig, "selected").x) == [0.9]
    assert list(trace(fig, "your pair").x) == [0.3, 0.3]
    assert list(fig.layout.yaxis.ticktext) == ["1", "2"]
    empty = figures.distribution_figure([], [])
    assert tuple(t.name for t in empty.data) == figures.DISTRIBUTION_TRACES


def test_jitter_is_deterministic_and_bounded():
    j = figures.jitter(50, 0.25)
    assert np.all(np.abs(j) <= 0.25) and len(np.unique(j.round(6))) == 50
    np.testing.assert_array_equal(j, figures.jitter(50, 0.25))


def test_overlay_colours_hits_false_objects_and_misses():
    truth = np.array([[1, 1, 0, 0]], bool)
    pred = np.array([[1, 0, 1, 0]], bool)
    rgb = figures.overlay(np.zeros((1, 4, 3)), truth, pred, alpha=1.0)
    assert rgb.dtype == np.uint8
    assert rgb[0].tolist() == [[0, 200, 0], [40, 90, 255], [255, 140, 0], [0, 0, 0]]


def test_detail_figure_splits_projections_by_label():
    fig = figures.detail_figure(IMAGE, IMAGE[..., 0] > 0, IMAGE[..., 1] > 0, TABLE, TABLE, title="model 3")
    assert tuple(t.name for t in fig.data) == figures.DETAIL_TRACES
    assert list(trace(fig, "patches: object").x) == [0.0, 1.0, 5.0]
    assert list(trace(fig, "features: background").y) == [-2.0, -3.0, -4.0]
    assert fig.layout.title.text == "model 3"
    empty = figures.detail_figure(IMAGE, IMAGE[..., 0] > 0, IMAGE[..., 0] > 0)
    assert [t.type for t in empty.data] == [t.type for t in fig.data]
    assert len(trace(empty, "patches: object").x) == 0


def _result(n_splits: int, dice: list[list[float]]) -> SimpleNamespace:
    rows = [
        {"model": 10 * s + k, "split": s, "bg_row": 15, "bg_col": 3 + 10 * k, "val_dice": d}
        for s, ds in enumerate(dice) for k, d in enumerate(ds)
    ]
    markers = [SimpleNamespace(obj=OBJ + s) for s in range(n_splits)]
    return SimpleNamespace(rows=rows, markers=markers, config=SimpleNamespace(radius=2),
                           context=SimpleNamespace(image=IMAGE))


def test_heatmap_grid_rows_images_columns_splits_with_min_max():
    results = [_result(2, [[0.1, 0.5], [0.3, 0.4]]), _result(2, [[0.6, 0.7], [0.9, 0.8]])]
    fig = figures.heatmap_grid(results, title="fish")
    assert sum(t.type == "image" for t in fig.data) == 4
    bgs = [t for t in fig.data if t.name == "background markers"]
    assert len(bgs) == 4 and all(t.marker.cmin == 0.1 and t.marker.cmax == 0.9 for t in bgs)
    assert sum(bool(t.marker.showscale) for t in bgs) == 1
    assert fig.layout.yaxis.title.text == "image 1<br>Dice 0.100-0.500"
    assert "0.600-0.900" in fig.layout.yaxis3.title.text


def test_marker_story_figure_one_row_per_model():
    detail = SimpleNamespace(marked=IMAGE, obj=OBJ, bg=BG[0], radius=2, patches=TABLE, features=TABLE,
                             row={"val_dice": 0.812}, label="fish, high")
    fig = figures.marker_story_figure([detail, detail])
    assert sum(t.type == "image" for t in fig.data) == 2
    assert sum(t.name == "patches: object" for t in fig.data) == 2
    assert fig.layout.yaxis.title.text == "fish, high<br>Dice 0.812"


def test_image_trace_is_a_png_of_the_image():
    import base64

    import imageio.v3 as iio

    fig = figures.heatmap_figure(IMAGE, OBJ, BG, DICE, 2)
    source = trace(fig, "image").source
    assert source.startswith("data:image/png;base64,")
    pixels = iio.imread(base64.b64decode(source.split(",", 1)[1]), extension=".png")
    np.testing.assert_array_equal(pixels, np.rint(IMAGE * 255).astype(np.uint8))


def test_markers_figure_draws_object_and_background_rings():
    fig = figures.markers_figure(IMAGE, OBJ, BG, 2, title="markers")
    assert [t.name for t in fig.data] == ["image", "object marker", "background marker"]
    assert fig.data[1].marker.symbol == "star" and fig.layout.showlegend
    assert len(fig.data[2].x) == 3


def test_figures_module_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, flimexplore.figures; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_study_heatmap_reads_one_split_of_a_result():
    result = _result(2, [[0.1, 0.5], [0.3, 0.4]])
    result.context.stem = "fish_007"
    fig = figures.study_heatmap(result, split=1)
    bg = trace(fig, "background markers")
    assert list(bg.customdata) == [10, 11] and list(bg.marker.color) == [0.3, 0.4]
    assert (bg.marker.cmin, bg.marker.cmax) == (0.1, 0.5)  # the whole study's range
    assert list(trace(fig, "object marker").y) == [8] and "fish_007" in fig.layout.title.text


def test_heatmap_legend_names_each_kind_of_marker_and_colour_bar_says_validation_dice():
    fig = figures.heatmap_figure(IMAGE, OBJ, BG, DICE, 2, selected=0, user_obj=(6, 7), user_bg=(1, 2))
    assert fig.layout.showlegend
    shown = {t.name for t in fig.data if t.type == "scatter" and t.showlegend}
    assert shown == {"object marker", "background markers", "selected", "your object marker", "your bg marker"}
    assert trace(fig, "background markers").marker.colorbar.title.text == "validation Dice"
    empty = figures.heatmap_figure(IMAGE, None, np.zeros((0, 2)), [], 2)
    assert not any(t.showlegend for t in empty.data if t.type == "scatter")  # no entry for what is not drawn
    # the object marker's colour is never a colour of the Dice scale
    assert figures.OBJECT.lower() not in {c.lower() for _, c in plotly_colorscale()}


def test_heatmap_title_sits_below_the_toolbar():
    fig = figures.heatmap_figure(IMAGE, OBJ, BG, DICE, 2, title="fish_003 · object marker 1 · 3 models")
    title = fig.layout.title
    assert (title.yref, title.yanchor, title.y) == ("paper", "bottom", 1.0)  # just above the plot area
    assert fig.layout.margin.t >= 14 + 40  # room for the toolbar above the title


def test_heatmap_while_placing_markers_take_no_clicks():
    fig = figures.heatmap_figure(IMAGE, OBJ, BG, DICE, 2, user_bg=(1, 2), placing=True)
    for name in ("background markers", "object marker", "your object marker", "your bg marker"):
        assert trace(fig, name).hoverinfo == "skip", name
    assert trace(fig, "image").hoverinfo != "skip"
    assert trace(figures.heatmap_figure(IMAGE, OBJ, BG, DICE, 2), "background markers").hoverinfo is None


def test_distribution_axis_fits_the_data_and_your_pair_never_moves_it():
    dice = [0.61, 0.62, 0.64]
    fig = figures.distribution_figure(dice, [0, 0, 0])
    lo, hi = fig.layout.xaxis.range
    assert lo == pytest.approx(0.60) and hi == pytest.approx(0.65)
    assert tuple(figures.distribution_figure(dice, [0, 0, 0], full_range=True).layout.xaxis.range) == (-0.02, 1.02)
    inside = figures.distribution_figure(dice, [0, 0, 0], user_dice=0.63)
    outside = figures.distribution_figure(dice, [0, 0, 0], user_dice=0.2)
    assert inside.layout.xaxis.range == fig.layout.xaxis.range == outside.layout.xaxis.range
    assert inside.layout.height == fig.layout.height
    assert list(trace(inside, "your pair").x) == [0.63, 0.63]
    pair = trace(outside, "your pair")
    assert list(pair.x) == [pytest.approx(0.60)] * 2 and pair.marker.symbol == "arrow-left"
    assert list(pair.customdata) == [0.2, 0.2]  # the hover tells the true Dice


def test_detail_figure_legends_the_overlay_colour_code():
    fig = figures.detail_figure(IMAGE, IMAGE[..., 0] > 0, IMAGE[..., 1] > 0, TABLE, TABLE)
    legend = [t.name for t in fig.data if t.type == "scatter" and t.showlegend]
    assert {"found", "false object", "missed", "patches: object", "patches: background"} == set(legend)
    colours = {t.name: t.marker.color for t in fig.data if t.name in ("found", "false object", "missed")}
    assert colours == {"found": "rgb(0,200,0)", "false object": "rgb(255,140,0)", "missed": "rgb(40,90,255)"}
    assert trace(fig, "patches: object").marker.color == figures.OBJECT
    assert trace(fig, "features: background").marker.color == figures.BACKGROUND


def test_heatmap_advice_layer_and_numbered_rings():
    score = np.full((20, 30), np.nan)
    score[14:17, 2:5] = 0.9
    fig = figures.heatmap_figure(IMAGE, OBJ, BG, DICE, 2, advice_map=score, advice_top=[[15, 3], [3, 25]])
    layer, rings = trace(fig, "advice map"), trace(fig, "advised positions")
    assert layer.visible is True and layer.z[15][3] == 0.9 and layer.z[0][0] is None
    assert (list(rings.x), list(rings.y), list(rings.text)) == ([3, 25], [15, 3], ["1", "2"])
    assert list(rings.customdata) == [0, 1] and rings.showlegend
    off = figures.heatmap_figure(IMAGE, OBJ, BG, DICE, 2)
    assert trace(off, "advice map").visible is False and len(trace(off, "advised positions").x) == 0


def test_descriptor_figure_scatter_with_rho_in_title():
    fig = figures.descriptor_figure([1.0, np.nan, 3.0], [0.2, 0.5, 0.8], [7, 8, 9], name="bg_std", rho=0.5, selected=2)
    assert tuple(t.name for t in fig.data) == figures.DESCRIPTOR_TRACES
    pts = trace(fig, "markers")
    assert list(pts.x) == [1.0, 3.0] and list(pts.customdata) == [7, 9]  # NaN descriptors are not drawn
    assert fig.layout.title.text == "bg_std vs validation Dice (ρ = +0.50)"
    assert list(trace(fig, "selected").x) == [3.0]
    assert "n/a" in figures.descriptor_figure([], [], rho=None).layout.title.text


def test_detail_figure_draws_an_evidence_map_beside_the_prediction():
    gap = np.linspace(-2.0, 1.0, IMAGE.shape[0] * IMAGE.shape[1]).reshape(IMAGE.shape[:2])
    fig = figures.detail_figure(IMAGE, IMAGE[..., 0] > 0, gap > 0, evidence=gap, evidence_title="logit gap")
    heat = trace(fig, "evidence")
    assert np.allclose(np.asarray(heat.z, dtype=float), gap) and heat.zmid == 0 and heat.colorscale[0][1] != ""
    assert heat.xaxis == trace(fig, "evidence image").xaxis == "x2"  # the second panel, over the greyed image
    assert "logit gap" in [a.text for a in fig.layout.annotations]
    assert heat.colorbar.x <= fig.layout.xaxis2.domain[1] + 0.01  # its colour bar beside its own panel
    saliency = figures.detail_figure(IMAGE, IMAGE[..., 0] > 0, gap > 0, evidence=(gap + 2) / 3)
    assert trace(saliency, "evidence").zmin == 0 and trace(saliency, "evidence").zmid is None
    none = figures.detail_figure(IMAGE, IMAGE[..., 0] > 0, gap > 0)
    assert trace(none, "evidence").opacity == 0 and [t.name for t in none.data] == list(figures.DETAIL_TRACES)


def test_heatmap_grid_labels_rows_of_readouts():
    res = _result(2, [[0.2, 0.4], [0.6, 0.8]])
    fig = figures.heatmap_grid([res, res], row_labels=["trained", "mean"])
    assert fig.layout.yaxis.title.text.startswith("trained") and fig.layout.yaxis3.title.text.startswith("mean")
