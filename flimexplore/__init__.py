"""flimexplore: where should markers go when training FLIM networks?

Compute (NumPy/torch, importable from scripts and the command line):

- :mod:`flimexplore.data` — bundled synthetic presets, the real nuclei tiles, folder datasets, LIDS seeds files.
- :mod:`flimexplore.markers` — the paper's marker over-sampling.
- :mod:`flimexplore.flim`, :mod:`flimexplore.decision`, :mod:`flimexplore.engine` — the batched FLIM engine.
- :mod:`flimexplore.reference` — the one-model-at-a-time reference path.
- :mod:`flimexplore.evaluation`, :mod:`flimexplore.projections` — scores, heatmaps, t-SNE tables.
- :mod:`flimexplore.study` — running a study with progress and resumable results.

Presentation (Plotly, ipywidgets): :mod:`flimexplore.figures` and :mod:`flimexplore.widgets`.

Importing the package is cheap: torch, Plotly and ipywidgets load only when a
submodule that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "StudyConfig": "flimexplore.config",
    "StudyResult": "flimexplore.study",
    "Progress": "flimexplore.study",
    "StopStudy": "flimexplore.study",
    "run_study": "flimexplore.study",
    "run_study_all": "flimexplore.study",
    "StudyContext": "flimexplore.context",
    "load_dataset": "flimexplore.data",
    "list_datasets": "flimexplore.data",
    "sample_markers": "flimexplore.markers",
    "FlimExploreError": "flimexplore.errors",
    "DatasetError": "flimexplore.errors",
    "MarkerError": "flimexplore.errors",
    "DeviceError": "flimexplore.errors",
    "ResumeError": "flimexplore.errors",
    "ConfigError": "flimexplore.errors",
    "OutputError": "flimexplore.errors",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'flimexplore' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
