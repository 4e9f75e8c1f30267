"""The annotation loop: a robot user adds markers one at a time, and how many markers a quality needs.

- :mod:`~flimexplore.loop.config` — :class:`LoopConfig`, the settings of ``flimexplore simulate``.
- :mod:`~flimexplore.loop.drawn` — the disk markers drawn so far, their pixels and admissible positions.
- :mod:`~flimexplore.loop.view` — :class:`MarkedView`: the marked images and their own masks, all a policy reads.
- :mod:`~flimexplore.loop.fit` — models trained on the marked images alone (the current model, probes).
- :mod:`~flimexplore.loop.policies` — the ``random``, ``advised`` and ``error`` robot users.
- :mod:`~flimexplore.loop.advised` — the advised next marker (candidates, prior, probes).
- :mod:`~flimexplore.loop.clicker` — the error-driven user's click: the largest error region's centre.
- :mod:`~flimexplore.loop.noc` — markers needed to reach a Dice (NoC), curve areas, intervals over repeats.
- :mod:`~flimexplore.loop.run` — :func:`simulate`, the resumable loop generator, and one run.
- :mod:`~flimexplore.loop.store`, :mod:`~flimexplore.loop.report` — the results folder and its files.
- :mod:`~flimexplore.loop.sweep` — loops over several datasets and marked images on an executor (Dask).
- :mod:`~flimexplore.loop.user` — the loop for a person's own markers of any shape (the explorer's "advise next").

Names load lazily: ``import flimexplore.loop`` alone imports neither torch nor matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "LoopConfig": "flimexplore.loop.config",
    "TARGETS": "flimexplore.loop.config",
    "Marker": "flimexplore.loop.drawn",
    "MarkedView": "flimexplore.loop.view",
    "POLICIES": "flimexplore.loop.policies",
    "next_marker": "flimexplore.loop.policies",
    "advise_next": "flimexplore.loop.advised",
    "error_click": "flimexplore.loop.clicker",
    "markers_needed": "flimexplore.loop.noc",
    "curve_area": "flimexplore.loop.noc",
    "LoopContext": "flimexplore.loop.run",
    "LoopResult": "flimexplore.loop.run",
    "run_one": "flimexplore.loop.run",
    "simulate": "flimexplore.loop.run",
    "simulate_all": "flimexplore.loop.run",
    "simulate_sweep": "flimexplore.loop.sweep",
    "simulate_sweep_all": "flimexplore.loop.sweep",
    "suggest_next": "flimexplore.loop.user",
    "add_marker": "flimexplore.loop.user",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'flimexplore.loop' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
