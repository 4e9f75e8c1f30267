import numpy as np

from flimexplore.colormap import heat_colors, plotly_colorscale
from flimexplore.engine.scores import dice, metrics_from_counts
from flimexplore.study.heatmap import paint_heatmap, render_heatmap


def test_metrics_follow_the_definitions():
    s = metrics_from_counts(np.array([6, 2, 4, 88]))
    assert s["dice"] == 12 / 18
    assert s["jaccard"] == 6 / 12
    assert s["sensitivity"] == 6 / 10
    assert s["specificity"] == 88 / 90


def test_empty_conventions():
    s = metrics_from_counts(np.array([[0, 0, 0, 10], [0, 3, 0, 7], [0, 0, 0, 0]]))
    assert s["dice"].tolist() == [1.0, 0.0, 1.0]
    assert s["sensitivity"].tolist() == [1.0, 1.0, 1.0]
    assert s["specificity"].tolist() == [1.0, 0.7, 1.0]
    assert dice(np.zeros(3, bool), np.zeros(3, bool)) == 1.0


def test_heatmap_decay_matches_the_paper():
    layer = paint_heatmap((9, 9), np.array([[4, 4]]), np.array([0.6]), radius=2)
    assert layer.value[4, 4] == 0.6 and layer.value[4, 6] == 0.6
    assert np.isnan(layer.value[0, 0])
    # weight = (2 - d^2 / r^2) / 2: 1 at the centre, 3/4 at d = 1, 1/2 on the rim
    assert layer.weight[4, 4] == 1.0 and layer.weight[4, 5] == 0.875 and layer.weight[4, 6] == 0.5
    assert layer.weight[4, 7] == 0.0


def test_overlapping_disks_average_by_decay():
    layer = paint_heatmap((5, 9), np.array([[2, 3], [2, 5]]), np.array([0.0, 1.0]), radius=2)
    assert layer.value[2, 4] == 0.5  # equidistant
    assert layer.value[2, 3] < 0.5 < layer.value[2, 5]


def test_render_colours_low_blue_high_red_and_object_solid_red():
    layer = paint_heatmap((12, 12), np.array([[3, 3], [8, 8]]), np.array([0.1, 0.9]), radius=1)
    rgb = render_heatmap(np.zeros((12, 12, 3)), layer, obj_centre=np.array([3, 9]), radius=1)
    assert rgb[3, 3, 2] > rgb[3, 3, 0]  # low Dice is blue
    assert rgb[8, 8, 0] > rgb[8, 8, 2]  # high Dice is red
    assert tuple(rgb[3, 9]) == (255, 0, 0)


def test_colormap_ends_and_plotly_scale_agree():
    assert heat_colors(np.array([0.5]), 0.5, 0.5).shape == (1, 3)
    scale = plotly_colorscale()
    assert scale[0][0] == 0.0 and scale[-1][0] == 1.0
