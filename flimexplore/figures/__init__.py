"""Pure Plotly builders: arrays and tables in, ``go.Figure`` out.

Nothing here holds state or computes: no engine call, no torch.  The
explorer (:mod:`flimexplore.widgets`) and the notebooks build every figure
with these functions; the explorer copies a freshly built figure into its
live ``FigureWidget`` (the trace order of each builder never changes).

- :func:`heatmap_figure`: one marked image with Dice-coloured background markers (paper Fig. 5).
- :func:`study_heatmap`: the same for one split of a finished study.
- :func:`heatmap_grid`: images x object markers (paper Fig. 6-8).
- :func:`distribution_figure`: the Dice of every marker, selected one highlighted.
- :func:`detail_figure`: prediction vs ground truth and the two t-SNE projections of one model.
- :func:`marker_story_figure`: markers, patch and feature projections of several models (paper Fig. 4).
- :func:`markers_figure`: a marked image with its markers.
"""

from flimexplore.figures._common import BACKGROUND, HEAT, OBJECT, SELECTED, overlay
from flimexplore.figures.detail import (
    DETAIL_TRACES,
    detail_figure,
    marker_story_figure,
    markers_figure,
    projection_traces,
)
from flimexplore.figures.distribution import DISTRIBUTION_TRACES, distribution_figure, jitter
from flimexplore.figures.heatmap import HEATMAP_TRACES, heatmap_figure, heatmap_grid, study_heatmap

__all__ = [
    "BACKGROUND",
    "DETAIL_TRACES",
    "DISTRIBUTION_TRACES",
    "HEAT",
    "HEATMAP_TRACES",
    "OBJECT",
    "SELECTED",
    "detail_figure",
    "distribution_figure",
    "heatmap_figure",
    "heatmap_grid",
    "jitter",
    "marker_story_figure",
    "markers_figure",
    "overlay",
    "projection_traces",
    "study_heatmap",
]
