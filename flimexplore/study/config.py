"""The settings of a marker study, as one frozen dataclass that round-trips through JSON."""

from __future__ import annotations

import json
import math
import numbers
import os
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

import numpy as np

from flimexplore.engine.settings import FIELDS as FLIM_FIELDS
from flimexplore.engine.settings import FlimSettings
from flimexplore.errors import ConfigError
from flimexplore.study.readout_table import READOUTS, TRAINED
from flimexplore.study.repeats import REPEAT_OVER

__all__ = ["VARY", "StudyConfig"]

VARY = ("background", "object")
"""Which marker a study varies: the background marker (the paper's study) or the object marker."""

# name -> (smallest allowed value, whether None is allowed)
_INTEGERS = {
    "n_images": (1, True),
    "image": (0, False),
    "splits": (1, False),
    "n_bg": (1, True),
    "radius": (1, True),
    "epochs": (1, False),
    "seed": (0, False),
    "dense_spacing": (1, True),
    "size": (32, True),
    "repeats": (1, False),
}


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
        Number of object markers, each with its own background markers (paper: 5;
        ``--object-markers`` on the command line).  The field keeps its historical
        name; user-facing text says "object markers".  One object marker with its
        background markers is a "split" in ``results.csv`` and file names.
    n_bg : int or None
        Background markers per object marker; None takes the dataset's suggestion.
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
    vary : {"background", "object"}
        Which marker varies within a split.  ``"background"`` (the paper):
        each split fixes one object marker and varies ``n_bg`` background
        markers.  ``"object"``: each split fixes one background marker and
        varies ``n_bg`` object markers (or, with ``dense``, every object
        position on the grid); ``n_bg`` then counts object markers.
    object_label : tuple of int or None
        Mask values that are object, for folder datasets (``(0, 128)``: the
        optic disc of REFUGE masks); None: non-zero for binary masks (see
        :func:`flimexplore.data.load_folder`).
    markers_per_model : tuple of int
        ``(K, M)``: every sampled model learns from K object and M background
        disks, drawn with the paper's rules (``(1, 1)``, the paper's study).
    markers : str or None
        The user's markers of the marked image, scored as one extra model: a
        ``<stem>-seeds.txt`` file or a folder holding one; None takes the
        dataset folder's ``markers/`` (if it has one for the marked image).
    size : int or None
        Side of a synthetic preset's images (32 to 512, paper-sized: 400);
        None draws the default 128x128 images.  Only for the presets.
    repeats : int
        Fits of every model with its random choices re-drawn (``--repeats``,
        :mod:`flimexplore.study.repeats`); a marker's Dice is then the mean
        over its fits with a 95 % interval.  1 (the default) is the paper's
        single fit, with the same numbers as before repeats existed.
    repeat_over : {"both", "decision", "clustering"}
        Which random choices a repeat re-draws: the decision layer's
        initialisation, the k-means++ starts (``clustering="kmeans++"`` only;
        the default farthest-point clustering has no random choice), or both.
    decoders : tuple of str
        How the models are read out (``--decoders``): ``"trained"``, the
        decision layer every study trains (always included), and any of the
        training-free LIDS adaptive decoders ``"vanilla"``, ``"probability"``,
        ``"mean"``, ``"labeled"`` (:mod:`flimexplore.engine.decoders`), which
        read each model's FLIM features (fit 0's encoder) and are binarised
        the LIDS way (uint8 levels, Otsu, strictly above).  A comma-separated
        string is accepted; the order is always that of
        :data:`~flimexplore.study.readout_table.READOUTS`.  With decoders,
        ``results.csv`` has one row per (model, readout) and a ``decoder`` column.
    attention : bool
        Score where each readout's evidence lies on the validation images
        (``--attention``: ``pointing`` and ``mass_in_object`` columns).  Any
        decoder implies it: the pass that reads the decoders scores their
        attention at almost no extra cost.
    kernel_size, kernels_per_marker, channels, pool, pool_size, pool_stride, layers, decision_layer, \
consensus, stdev_factor, clustering, restarts, min_cluster_fraction, cluster_seed
        The FLIM encoder (:class:`~flimexplore.engine.settings.FlimSettings`;
        defaults: the paper's single 3x3 layer with 8 kernels per marker, 16
        channels, 3x3 average pooling with stride 2).  :meth:`flim` returns them.

    Notes
    -----
    Construction only normalises types (a path becomes a ``str``, NumPy
    integers become ``int``) so that the settings always serialise to JSON;
    :meth:`validate` checks the ranges.  The study runner and
    :class:`~flimexplore.study.context.StudyContext` call it before any work.
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
    vary: Literal["background", "object"] = "background"
    object_label: tuple[int, ...] | None = None
    markers_per_model: tuple[int, int] = (1, 1)
    markers: str | None = None
    size: int | None = None
    repeats: int = 1
    repeat_over: str = "both"
    decoders: tuple[str, ...] = (TRAINED,)
    attention: bool = False
    # the FLIM encoder: flat here (CLI flags, config.json), defaults from the one place that defines them
    kernel_size: int = FlimSettings.kernel_size
    kernels_per_marker: int = FlimSettings.kernels_per_marker
    channels: int = FlimSettings.channels
    pool: str = FlimSettings.pool
    pool_size: int = FlimSettings.pool_size
    pool_stride: int = FlimSettings.pool_stride
    layers: int = FlimSettings.layers
    decision_layer: int | None = FlimSettings.decision_layer
    consensus: str = FlimSettings.consensus
    stdev_factor: float = FlimSettings.stdev_factor
    clustering: str = FlimSettings.clustering
    restarts: int = FlimSettings.restarts
    min_cluster_fraction: float = FlimSettings.min_cluster_fraction
    cluster_seed: int = FlimSettings.cluster_seed

    def __post_init__(self) -> None:
        if isinstance(self.dataset, os.PathLike):
            object.__setattr__(self, "dataset", os.fspath(self.dataset))
        if isinstance(self.markers, os.PathLike):
            object.__setattr__(self, "markers", os.fspath(self.markers))
        if isinstance(self.decoders, str):
            object.__setattr__(self, "decoders", tuple(d.strip() for d in self.decoders.split(",")))
        if isinstance(self.decoders, list | tuple) and all(d in READOUTS for d in self.decoders):
            object.__setattr__(self, "decoders", tuple(sorted(self.decoders, key=READOUTS.index)))
        if isinstance(self.attention, np.bool_):
            object.__setattr__(self, "attention", bool(self.attention))
        for name in ("object_label", "markers_per_model"):
            value = getattr(self, name)
            if isinstance(value, list | tuple | np.ndarray):
                items = [int(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool) else v for v in value]
                object.__setattr__(self, name, tuple(items))
        for name in _INTEGERS:
            value = getattr(self, name)
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                object.__setattr__(self, name, int(value))
        if isinstance(self.lr, numbers.Real) and not isinstance(self.lr, bool):
            object.__setattr__(self, "lr", float(self.lr))
        if isinstance(self.dense, np.bool_):
            object.__setattr__(self, "dense", bool(self.dense))
        flim = self.flim()  # FlimSettings normalises its own types
        for name in FLIM_FIELDS:
            object.__setattr__(self, name, getattr(flim, name))

    def flim(self) -> FlimSettings:
        """The FLIM encoder settings of the study."""
        return FlimSettings(**{name: getattr(self, name) for name in FLIM_FIELDS})

    def with_flim(self, settings: FlimSettings) -> StudyConfig:
        """A copy with the FLIM encoder settings replaced."""
        return replace(self, **settings.to_dict())

    def validate(self) -> StudyConfig:
        """Check the type and range of every setting.

        Returns
        -------
        StudyConfig
            ``self``, so that calls can be chained.

        Raises
        ------
        ConfigError
            Naming every wrong setting (with its command-line flag) and what
            it must be.

        Examples
        --------
        >>> StudyConfig(epochs=0).validate()
        Traceback (most recent call last):
        ...
        flimexplore.errors.ConfigError: invalid study settings: epochs (--epochs) must be an integer >= 1, got 0
        """
        problems = []
        if not isinstance(self.dataset, str) or not self.dataset.strip():
            problems.append(f"dataset (--dataset) must be a preset name or a folder path, got {self.dataset!r}")
        for name, (lowest, optional) in _INTEGERS.items():
            value = getattr(self, name)
            if value is None and optional:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                what = f"{'None or ' if optional else ''}an integer >= {lowest}"
                problems.append(f"{name} ({_flag(name)}) must be {what}, got {value!r}")
        if not isinstance(self.lr, float) or not math.isfinite(self.lr) or self.lr <= 0:
            problems.append(f"lr (--lr) must be a finite number > 0, got {self.lr!r}")
        if not isinstance(self.dense, bool):
            problems.append(f"dense (--dense) must be True or False, got {self.dense!r}")
        if self.vary not in VARY:
            problems.append(f"vary (--vary) must be 'background' or 'object', got {self.vary!r}")
        label = self.object_label
        if label is not None and (
            not isinstance(label, tuple) or not label or not all(_whole(v, 0) for v in label)
        ):
            problems.append(f"object_label (--object-label) must be None or integers >= 0 like (0, 128), got {label!r}")
        per = self.markers_per_model
        if not isinstance(per, tuple) or len(per) != 2 or not all(_whole(v, 1) for v in per):
            problems.append(f"markers_per_model (--markers-per-model) must be two integers >= 1 (K, M), got {per!r}")
        elif self.dense and per != (1, 1):
            problems.append(f"markers_per_model (--markers-per-model) must be 1,1 with dense (--dense), got {per!r}")
        elif self.vary == "object" and per != (1, 1):
            problems.append(f"markers_per_model (--markers-per-model) must be 1,1 with vary (--vary) object, got {per!r}")
        if self.repeat_over not in REPEAT_OVER:
            problems.append(f"repeat_over (--repeat-over) must be one of {', '.join(REPEAT_OVER)}, got {self.repeat_over!r}")
        elif self.repeat_over == "clustering" and self.clustering != "kmeans++":
            problems.append(
                "repeat_over (--repeat-over) 'clustering' needs clustering (--clustering) kmeans++: the "
                f"{self.clustering!r} clustering has no random choice to re-draw; use --repeat-over decision or both"
            )
        problems += _readout_problems(self.decoders, self.attention)
        if self.markers is not None and (not isinstance(self.markers, str) or not self.markers.strip()):
            problems.append(f"markers (--markers) must be None or a seeds file or folder path, got {self.markers!r}")
        for name, what in self.flim().problems().items():
            problems.append(f"{name} ({_flag(name)}) {what}")
        if problems:
            raise ConfigError("invalid study settings: " + "; ".join(problems))
        return self

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dictionary (tuples as lists, as JSON gives them back)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def to_json(self) -> str:
        """The settings as a JSON document."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyConfig:
        """Build from :meth:`to_dict` output; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown study settings: {sorted(unknown)}")
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


def _readout_problems(decoders: Any, attention: Any) -> list[str]:
    """What is wrong with the readout settings (one phrase each)."""
    problems = []
    known = ", ".join(READOUTS)
    if not isinstance(decoders, tuple) or not decoders or not all(isinstance(d, str) for d in decoders):
        problems.append(f"decoders (--decoders) must be comma-separated names from {known}, got {decoders!r}")
    elif unknown := [d for d in decoders if d not in READOUTS]:
        problems.append(f"decoders (--decoders) must be among {known}, got {', '.join(map(repr, unknown))}")
    elif len(set(decoders)) != len(decoders):
        problems.append(f"decoders (--decoders) must name each decoder once, got {','.join(decoders)}")
    elif TRAINED not in decoders:
        problems.append(
            f"decoders (--decoders) must include {TRAINED!r} (every study trains its decision layer; the "
            f"other decoders read the same models), got {','.join(decoders)}; try --decoders {TRAINED},{','.join(decoders)}"
        )
    if not isinstance(attention, bool):
        problems.append(f"attention (--attention) must be True or False, got {attention!r}")
    return problems


def _whole(value: Any, lowest: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= lowest


def _flag(name: str) -> str:
    return "--object-markers" if name == "splits" else "--" + name.replace("_", "-")
