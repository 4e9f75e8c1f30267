"""flimexplore: where should markers go when training FLIM networks?

Compute (NumPy/torch, importable from scripts and the command line), one subpackage per layer:

- :mod:`flimexplore.data` — bundled synthetic presets, the real nuclei tiles, folder datasets, LIDS seeds files.
- :mod:`flimexplore.markers` — the paper's marker over-sampling.
- :mod:`flimexplore.engine` — the FLIM block, the decision layer, the batched and reference paths, scores.
- :mod:`flimexplore.study` — settings, prepared data, running a study with progress and resumable results.
- :mod:`flimexplore.analysis` — what the scores mean: projections, descriptors, marker advice.
- :mod:`flimexplore.loop` — the annotation loop: robot users add markers one at a time; markers needed (NoC).

Presentation (Plotly, ipywidgets): :mod:`flimexplore.figures` and :mod:`flimexplore.widgets`.

Importing the package is cheap: torch, Plotly and ipywidgets load only when a
submodule that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "StudyConfig": "flimexplore.study.config",
    "StudyResult": "flimexplore.study.run",
    "Progress": "flimexplore.study.run",
    "StopStudy": "flimexplore.study.run",
    "run_study": "flimexplore.study.run",
    "run_study_all": "flimexplore.study.run",
    "StudyContext": "flimexplore.study.context",
    "analyse": "flimexplore.analysis.analyse",
    "score_pairs": "flimexplore.study.score",
    "score_pairs_all": "flimexplore.study.score",
    "score_seeds": "flimexplore.study.score_seeds",
    "score_seeds_all": "flimexplore.study.score_seeds",
    "LoopConfig": "flimexplore.loop.config",
    "simulate": "flimexplore.loop.run",
    "simulate_all": "flimexplore.loop.run",
    "advise": "flimexplore.analysis.advice",
    "Advice": "flimexplore.analysis.advice",
    "AdviceSettings": "flimexplore.analysis.advice",
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
