"""The settings of a simulated annotation loop, as one frozen dataclass that round-trips through JSON."""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, field, replace
from typing import Any

from flimexplore.errors import ConfigError
from flimexplore.study.config import StudyConfig

__all__ = ["CANDIDATES", "POLICIES", "TARGETS", "LoopConfig"]

POLICIES = ("random", "advised", "error")
"""The robot users (:mod:`flimexplore.loop.policies`)."""
CANDIDATES = 8
"""Candidates the advised policy probes per marker by default (:mod:`flimexplore.loop.advised`)."""

TARGETS = (0.80, 0.85, 0.90)
"""Validation Dice levels whose markers-needed count ``noc.csv`` reports (RITM's NoC@80/85/90)."""


@dataclass(frozen=True)
class LoopConfig:
    """Settings of ``flimexplore simulate``: a robot user adds markers one at a time, refitting after each.

    Parameters
    ----------
    study : StudyConfig
        The data and the model: ``dataset``, ``n_images``, ``size``,
        ``image`` (the first marked image), ``seed`` (split, start markers,
        model seeds), ``radius`` (every marker is a disk of this radius; None
        takes the dataset's), ``epochs``, ``lr``, ``object_label`` and the FLIM
        settings.  Its ``splits``, ``n_bg``, ``dense`` and ``repeats`` play no part.
    policies : tuple of str
        Which robot users run (``random``, ``advised``, ``error``).
    max_markers : int
        Markers at the end of a run, the two starting ones included (``K``; at least 2).
    repeats : int
        Runs per policy; repeat ``r`` re-draws the random policy's positions
        and the models' seeds (:func:`flimexplore.loop.fit.fit_settings`).
    targets : tuple of float
        Validation Dice levels for the markers-needed table (``noc.csv``).
    next_image_after : int or None
        Move to the next marked image after this many markers on one image
        (the two starting markers count; at least 2); None keeps every marker
        on ``study.image``.  The images are visited in the split's order,
        starting at ``study.image`` and wrapping around.
    candidates : int
        Candidates the advised policy probes per marker (0: its prior alone).
    """

    study: StudyConfig = field(default_factory=StudyConfig)
    policies: tuple[str, ...] = POLICIES
    max_markers: int = 10
    repeats: int = 3
    targets: tuple[float, ...] = TARGETS
    next_image_after: int | None = None
    candidates: int = CANDIDATES

    def __post_init__(self) -> None:
        if isinstance(self.policies, str):
            object.__setattr__(self, "policies", tuple(p.strip() for p in self.policies.split(",") if p.strip()))
        else:
            object.__setattr__(self, "policies", tuple(self.policies))
        if isinstance(self.targets, str):
            try:
                object.__setattr__(self, "targets", tuple(float(t) for t in self.targets.split(",") if t.strip()))
            except ValueError:
                pass  # validate() names it
        elif isinstance(self.targets, list | tuple):
            object.__setattr__(self, "targets", tuple(float(t) if isinstance(t, numbers.Real) else t for t in self.targets))
        for name in ("max_markers", "repeats", "next_image_after", "candidates"):
            value = getattr(self, name)
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                object.__setattr__(self, name, int(value))

    def validate(self) -> LoopConfig:
        """Check every setting; returns ``self``.

        Raises
        ------
        ConfigError
            Naming every wrong setting with its command-line flag.

        Examples
        --------
        >>> LoopConfig(max_markers=1).validate()
        Traceback (most recent call last):
        ...
        flimexplore.errors.ConfigError: invalid simulate settings: max_markers (--max-markers) must be an integer >= 2, got 1
        """
        problems = []
        bad = [p for p in self.policies if p not in POLICIES]
        if not self.policies or bad or len(set(self.policies)) != len(self.policies):
            problems.append(f"policies (--policies) must be distinct names among {','.join(POLICIES)}, got {','.join(self.policies)!r}")
        for name, lowest in (("max_markers", 2), ("repeats", 1), ("candidates", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                problems.append(f"{name} ({_flag(name)}) must be an integer >= {lowest}, got {value!r}")
        n = self.next_image_after
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 2):
            problems.append(f"next_image_after (--next-image-after) must be None or an integer >= 2 (the two starting "
                            f"markers share an image), got {n!r}")
        t = self.targets
        if not isinstance(t, tuple) or not t or not all(isinstance(v, float) and math.isfinite(v) and 0 < v <= 1 for v in t):
            problems.append(f"targets (--targets) must be Dice levels in (0, 1] like 0.80,0.85,0.90, got {t!r}")
        if problems:
            raise ConfigError("invalid simulate settings: " + "; ".join(problems))
        self.study.validate()
        return self

    def shared(self) -> dict[str, Any]:
        """What every run of a results folder shares (a folder resumes only with the same): all but the
        policies, repeats and targets, which only choose runs or summarise them."""
        return {"study": self.study.to_dict(), "max_markers": self.max_markers,
                "next_image_after": self.next_image_after, "candidates": self.candidates}

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dictionary (tuples as lists)."""
        return self.shared() | {"policies": list(self.policies), "repeats": self.repeats, "targets": list(self.targets)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoopConfig:
        """Build from :meth:`to_dict` output."""
        data = dict(data)
        study = StudyConfig.from_dict(data.pop("study", {}))
        known = {"policies", "max_markers", "repeats", "targets", "next_image_after", "candidates"}
        if set(data) - known:
            raise ConfigError(f"unknown simulate settings: {sorted(set(data) - known)}")
        return cls(study=study, **data)

    def replace(self, **changes: Any) -> LoopConfig:
        return replace(self, **changes)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")
