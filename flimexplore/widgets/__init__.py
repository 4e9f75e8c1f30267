"""The interactive explorer: ipywidgets + Plotly ``FigureWidget`` views around one state object.

- :class:`Explorer` / :func:`explore`: the whole app (controls, heatmap, Dice
  distribution, model detail), the only place where UI events trigger compute.
- :class:`ExplorerState`: the single source of truth the views observe.
- :func:`model_detail`, :func:`pick_models`, :func:`score_pair`: what the
  explorer computes about one model or one marker pair; notebooks use them too.
- :func:`simulate_click`: click a live figure from Python through the browser's code path.

Names load lazily: ``import flimexplore.widgets`` alone imports neither torch nor Plotly.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "CLICK_MODES": "flimexplore.widgets.state",
    "ExplorerState": "flimexplore.widgets.state",
    "Explorer": "flimexplore.widgets.app",
    "explore": "flimexplore.widgets.app",
    "ModelDetail": "flimexplore.widgets.inspect",
    "PairScore": "flimexplore.widgets.inspect",
    "model_detail": "flimexplore.widgets.inspect",
    "pick_models": "flimexplore.widgets.inspect",
    "pair_detail": "flimexplore.widgets.inspect",
    "USER_MODEL": "flimexplore.widgets.state",
    "score_pair": "flimexplore.widgets.inspect",
    "pair_markers": "flimexplore.widgets.inspect",
    "pair_from_markers": "flimexplore.widgets.inspect",
    "simulate_click": "flimexplore.widgets._live",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'flimexplore.widgets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
