"""The study's PNG figures: readable alone (size, colour bar, title, glyphs, scale)."""

import io

import imageio.v3 as iio
import numpy as np
import pytest
from matplotlib.colors import to_rgb

from flimexplore.colormap import heat_colors
from flimexplore.figures import heatmap_png as hp

H = W = 64
OBJ = np.array([40, 20])
BG = np.array([[10, 10], [10, 50], [50, 50], [30, 40], [20, 30]])
DICE = np.array([0.62, 0.80, 0.35, 0.79, 0.60])


def _rgb(vrange):
    rgb = np.full((H, W, 3), 90, np.uint8)
    for (r, c), d in zip(BG, DICE, strict=True):
        rgb[r - 2 : r + 3, c - 2 : c + 3] = heat_colors(np.array([d]), *vrange)[0]
    return rgb


def _split(scale="fixed"):
    vrange = hp.colour_range(DICE, scale)
    return hp.heatmap_split_figure(
        _rgb(vrange), OBJ, BG, DICE, 2, vrange=vrange, scale=scale, dataset="fish", image_name="fish_007", split=1
    )


def _png(fig):
    return iio.imread(io.BytesIO(hp.png_bytes(fig)), extension=".png")[..., :3]


def test_colour_range_modes():
    assert hp.colour_range(DICE) == (0.0, 1.0)
    assert hp.colour_range(DICE, "study") == (0.35, 0.80)
    lo, hi = hp.colour_range([0.5, 0.5, 0.503], "study")  # nearly equal values still get a bar
    assert hi - lo == pytest.approx(0.01) and lo < 0.5 and hi > 0.503
    with pytest.raises(ValueError, match="scale"):
        hp.colour_range(DICE, "auto")


def test_split_figure_is_big_with_crisp_pixels_and_a_labelled_colour_bar():
    fig = _split()
    k = fig.flimexplore["scale_factor"]
    assert k == 8 and max(H, W) * k >= hp.MIN_SIDE_PX
    png = _png(fig)
    assert max(png.shape[:2]) >= hp.MIN_SIDE_PX + 100
    bar = fig.flimexplore["colorbar"]
    assert (bar.norm.vmin, bar.norm.vmax) == (0.0, 1.0)
    assert bar.ax.get_ylabel() == "validation Dice (fixed scale 0-1)"
    assert [t.get_text() for t in bar.ax.get_yticklabels()] == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    title = fig._suptitle.get_text()
    for part in ("fish", "fish_007", "object marker 1", "(row 40, col 20)", "5 models", "Dice 0.350-0.800"):
        assert part in title
    # the heatmap is drawn 1:1 on screen pixels: one image pixel is a k x k block of one colour
    top, left = 74, 24  # the figure's margins in px
    r, c = BG[2]
    block = png[top + r * k : top + (r + 1) * k, left + c * k : left + (c + 1) * k]
    assert (block == block[0, 0]).all()
    assert tuple(block[0, 0]) == tuple(heat_colors(np.array([0.35]), 0.0, 1.0)[0])


def test_object_marker_is_the_explorers_magenta_star_unlike_any_dice_colour():
    from flimexplore.figures._common import OBJECT

    fig = _split()
    ax = fig.axes[0]
    stars = [ln for ln in ax.lines if ln.get_marker() == "*"]
    assert len(stars) == 1
    face = np.array(to_rgb(stars[0].get_markerfacecolor()))
    assert tuple(face) == to_rgb(OBJECT) and to_rgb(stars[0].get_markeredgecolor()) == (1.0, 1.0, 1.0)
    heat = heat_colors(np.linspace(0, 1, 101), 0.0, 1.0) / 255.0
    assert np.abs(heat - face).sum(axis=1).min() > 0.5  # far from every colour of the Dice scale, red included
    png = _png(fig)
    k = fig.flimexplore["scale_factor"]
    centre = png[74 + OBJ[0] * k + k // 2, 24 + OBJ[1] * k + k // 2]
    assert tuple(centre) == tuple(round(255 * v) for v in to_rgb(OBJECT))
    labels = [t.get_text() for t in fig.flimexplore["legend"].get_texts()]
    assert labels[:2] == ["object marker", f"best {hp.TOP} background markers"]


def test_best_markers_are_ringed_in_green():
    fig = _split()
    rings = [p for p in fig.axes[0].patches if to_rgb(p.get_edgecolor()) == to_rgb(hp.TOP_EDGE)]
    k = fig.flimexplore["scale_factor"]
    centres = sorted(((p.center[1] + 0.5) / k - 0.5, (p.center[0] + 0.5) / k - 0.5) for p in rings)
    assert centres == sorted([(10.0, 50.0), (30.0, 40.0), (10.0, 10.0)])  # Dice 0.80, 0.79, 0.62


def test_study_scale_gives_another_colour_bar():
    fixed, study = _split("fixed").flimexplore["colorbar"], _split("study").flimexplore["colorbar"]
    assert (study.norm.vmin, study.norm.vmax) == (0.35, 0.80) != (fixed.norm.vmin, fixed.norm.vmax)
    assert study.ax.get_ylabel() == "validation Dice (study min-max 0.350-0.800)"
    assert [t.get_text() for t in study.ax.get_yticklabels()][::4] == ["0.350", "0.800"]


def test_overview_puts_every_object_marker_side_by_side():
    vrange = hp.colour_range(DICE, "fixed")
    fig = hp.overview_figure(
        [_rgb(vrange)] * 3, [OBJ, OBJ + 1, OBJ - 1], [BG] * 3, [DICE, DICE * 0.5, DICE], 2,
        vrange=vrange, dataset="eggs", image_name="egg_3",
    )
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title().splitlines()[0] for ax in panels] == [
        "object marker 0 (40, 20)", "object marker 1 (41, 21)", "object marker 2 (39, 19)"
    ]
    assert panels[1].get_title().splitlines()[1] == "Dice 0.175-0.400"
    assert len(fig.axes) == 4  # three panels and one shared colour bar
    assert "15 models, Dice 0.175-0.800" in fig._suptitle.get_text() and "3 object markers" in fig._suptitle.get_text()
    assert _png(fig).shape[1] >= 3 * hp.OVERVIEW_SIDE_PX
    with pytest.raises(ValueError, match="one image"):
        hp.overview_figure([], [], [], [], 2, vrange=vrange)


def test_builders_never_import_pyplot():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np; from flimexplore.figures import heatmap_png as hp; "
        "fig = hp.heatmap_split_figure(np.zeros((8, 8, 3), np.uint8), [4, 4], [[1, 1]], [0.5], 1, vrange=(0.0, 1.0)); "
        "hp.png_bytes(fig); print('matplotlib.pyplot' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_figure_is_at_least_512_px_and_holds_its_title_and_legend():
    """A one-object-marker overview was 390 px wide with its title and legend cut off (issue 20)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    vrange = hp.colour_range(DICE, "fixed")
    small = np.full((20, 20, 3), 90, np.uint8)
    figs = [
        hp.overview_figure([_rgb(vrange)], [OBJ], [BG], [DICE], 2, vrange=vrange, dataset="fish", image_name="fish_019"),
        hp.overview_figure([small], [[10, 10]], [[[3, 3]]], [[0.5]], 1, vrange=vrange, dataset="a-long-dataset-name",
                           image_name="an-image-with-a-rather-long-file-name.png"),
        hp.heatmap_split_figure(small, [10, 10], [[3, 3]], [0.5], 1, vrange=vrange, dataset="d" * 40, image_name="i" * 40),
    ]
    for fig in figs:
        png = _png(fig)
        assert max(png.shape[:2]) >= hp.MIN_SIDE_PX
        renderer = FigureCanvasAgg(fig).get_renderer()
        width = fig.get_figwidth() * fig.dpi
        for part in (fig._suptitle, fig.flimexplore["legend"]):
            box = part.get_window_extent(renderer)
            assert box.x0 >= 0 and box.x1 <= width, (part, box, width)


def test_repeated_fits_add_an_uncertainty_panel_tie_rings_and_a_verdict():
    vrange = hp.colour_range(DICE, "fixed")
    widths = np.full((H, W, 3), 200, np.uint8)
    tied = np.array([False, True, False, True, False])
    verdict = "position explains 63 % of the Dice variance (95 % CI 41-78 %); 2 of 5 background markers tie with the best"
    fig = hp.heatmap_split_figure(
        _rgb(vrange), OBJ, BG, DICE, 2, vrange=vrange, dataset="fish", image_name="fish_007", split=1,
        width_rgb=widths, width_range=(0.0, 0.2), tied=tied, verdict=verdict,
    )
    assert verdict in fig._suptitle.get_text()
    rings = [p for p in fig.axes[0].patches if to_rgb(p.get_edgecolor()) == to_rgb(hp.TOP_EDGE)]
    k = fig.flimexplore["scale_factor"]
    centres = sorted(((p.center[1] + 0.5) / k - 0.5, (p.center[0] + 0.5) / k - 0.5) for p in rings)
    assert centres == sorted([(10.0, 50.0), (30.0, 40.0)])  # exactly the tied markers, not the top 3
    bar = fig.flimexplore["width_colorbar"]
    assert (bar.norm.vmin, bar.norm.vmax) == (0.0, 0.2) and "95 % interval" in bar.ax.get_ylabel()
    labels = [t.get_text() for t in fig.flimexplore["legend"].get_texts()]
    assert any("tied with the best" in t for t in labels)
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["uncertainty of each marker"]
