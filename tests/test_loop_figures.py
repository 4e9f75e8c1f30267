"""The loop's figures: curve.png holds its title and legend; the Plotly curves keep their trace order."""

import numpy as np

from flimexplore.figures.heatmap_png import png_bytes
from flimexplore.figures.loop import loop_curves_figure
from flimexplore.figures.loop_png import MIN_WIDTH_PX, curve_figure

LINES = {
    "random": ([2, 3, 4], [0.5, 0.6, 0.7], [0.4, 0.5, 0.6], [0.6, 0.7, 0.8]),
    "advised": ([2, 3, 4], [0.5, 0.7, 0.8], None, None),
    "error": ([2, 3, 4], [0.5, 0.75, 0.85], [0.45, 0.7, 0.8], [0.55, 0.8, 0.9]),
}


def test_curve_png_is_wide_and_never_cuts_its_title_or_legend():
    import imageio.v3 as iio
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    title = "a-rather-long-dataset-name, marked image 0 (" + "x" * 60 + "): validation Dice as a robot user adds markers"
    fig = curve_figure(LINES, (0.8, 0.85, 0.9), title)
    png = iio.imread(png_bytes(fig))
    assert png.shape[1] >= max(512, MIN_WIDTH_PX)
    renderer = FigureCanvasAgg(fig).get_renderer()
    width, height = fig.get_figwidth() * fig.dpi, fig.get_figheight() * fig.dpi
    for part in (fig._suptitle, fig.legends[0]):
        box = part.get_window_extent(renderer)
        assert box.x0 >= 0 and box.x1 <= width and box.y0 >= 0 and box.y1 <= height, (part, box)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["random", "advised", "error"]
    assert len(fig.axes[0].collections) == 2  # the two bands (advised has none)


def test_plotly_curves_have_a_band_and_a_line_per_policy():
    fig = loop_curves_figure(LINES, (0.8,), title="t")
    assert [t.name for t in fig.data] == ["random 95 % CI", "random", "advised 95 % CI", "advised", "error 95 % CI", "error"]
    assert len(fig.data[2].x) == 0 and np.allclose(fig.data[5].y, [0.5, 0.75, 0.85])
