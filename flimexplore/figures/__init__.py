"""Pure figure builders: arrays and tables in, a figure out (Plotly for interactive views).

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
- :func:`descriptor_figure`: a marker descriptor against validation Dice, rho in the title.
- :func:`table_figure`: a small formatted table (notebooks show tables, not raw dicts).
- :func:`loop_curves_figure`: validation Dice against markers drawn, one line (and band) per policy.

Names load lazily, so a module that needs only one builder does not import Plotly.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "BACKGROUND": "flimexplore.figures._common",
    "HEAT": "flimexplore.figures._common",
    "OBJECT": "flimexplore.figures._common",
    "SELECTED": "flimexplore.figures._common",
    "overlay": "flimexplore.figures._common",
    "DESCRIPTOR_TRACES": "flimexplore.figures.descriptor",
    "descriptor_figure": "flimexplore.figures.descriptor",
    "DETAIL_TRACES": "flimexplore.figures.detail",
    "detail_figure": "flimexplore.figures.detail",
    "marker_story_figure": "flimexplore.figures.detail",
    "markers_figure": "flimexplore.figures.detail",
    "projection_traces": "flimexplore.figures.detail",
    "DISTRIBUTION_TRACES": "flimexplore.figures.distribution",
    "distribution_figure": "flimexplore.figures.distribution",
    "jitter": "flimexplore.figures.distribution",
    "table_figure": "flimexplore.figures.table",
    "loop_curves_figure": "flimexplore.figures.loop",
    "HEATMAP_TRACES": "flimexplore.figures.heatmap",
    "heatmap_figure": "flimexplore.figures.heatmap",
    "heatmap_grid": "flimexplore.figures.heatmap",
    "study_heatmap": "flimexplore.figures.heatmap",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'flimexplore.figures' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
