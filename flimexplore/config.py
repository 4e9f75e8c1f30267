"""The settings of a marker study, as one frozen dataclass that round-trips through JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

__all__ = ["StudyConfig"]


@dataclass(frozen=True)
class StudyConfig:
    """Settings of one marker study (paper Sec. III and IV).

    Parameters
    ----------
    dataset : str
        Preset name (``fish``, ``eggs``, ``fundus``, ``nuclei``) or folder path.
    n_images : int or None
        Use only the first ``n_images`` images of the dataset (None: all).
    image : int
        Which of the split's marked images to study (0-based, paper: 3 per dataset).
    splits : int
        Number of object markers, each with its own background markers (paper: 5).
    n_bg : int or None
        Background markers per split; None takes the dataset's suggestion.
    radius : int or None
        Marker radius in pixels; None takes the dataset's suggestion.
    epochs : int
        Decision-layer epochs (paper: 20).
    lr : float
        Adam learning rate (paper: 0.1).
    seed : int
        Seeds the data split, the markers and every model's initialisation.
    dense : bool
        Instead of ``n_bg`` random background markers, evaluate every
        admissible background position on a grid of spacing ``dense_spacing``.
    dense_spacing : int or None
        Grid spacing of dense maps; None means the marker radius.
    """

    dataset: str = "fish"
    n_images: int | None = None
    image: int = 0
    splits: int = 5
    n_bg: int | None = None
    radius: int | None = None
    epochs: int = 20
    lr: float = 0.1
    seed: int = 0
    dense: bool = False
    dense_spacing: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dictionary."""
        return asdict(self)

    def to_json(self) -> str:
        """The settings as a JSON document."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyConfig:
        """Build from :meth:`to_dict` output; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown study settings: {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> StudyConfig:
        """Build from :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))

    def replace(self, **changes: Any) -> StudyConfig:
        """A copy with some settings changed."""
        return replace(self, **changes)

    def differences(self, other: StudyConfig) -> dict[str, tuple[Any, Any]]:
        """Settings that differ, as ``name -> (self value, other value)``."""
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if a[k] != b[k]}
