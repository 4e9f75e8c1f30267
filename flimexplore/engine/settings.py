"""The FLIM researcher's knobs: one frozen dataclass, no torch.

:class:`FlimSettings` holds everything that shapes a FLIM encoder of the
study (FIELD_NOTES §1): kernel size, kernels per marker, output channels
(with the libift consensus step when more kernels are learned than
channels), pooling, number of layers, which layer the decision layer reads,
the marker-normalisation ``stdev_factor``, and how each marker's patches
are clustered.  The defaults are the paper's single layer (3x3 kernels, 8
kernels per marker, 16 channels, 3x3 average pooling with stride 2) and the
engine's original clustering, so default results do not change.

Every layer of a multi-layer encoder uses the same settings; layer ``l + 1``
reads the ``channels`` outputs of layer ``l``.
"""

from __future__ import annotations

import json
import numbers
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from flimexplore.errors import ConfigError

__all__ = ["CLUSTERINGS", "CONSENSUS", "POOLS", "FlimSettings"]

POOLS = ("avg", "max")
CONSENSUS = ("kmeans", "pca")
CLUSTERINGS = ("farthest", "kmeans++")

# name -> smallest allowed value
_INTS = {
    "kernel_size": 1,
    "kernels_per_marker": 1,
    "channels": 1,
    "pool_size": 1,
    "pool_stride": 1,
    "layers": 1,
    "restarts": 1,
    "cluster_seed": 0,
}
MAX_LAYERS = 3


@dataclass(frozen=True)
class FlimSettings:
    """Settings of the FLIM encoder of every model of a study.

    Parameters
    ----------
    kernel_size : int
        Odd side of the square kernels (paper: 3).
    kernels_per_marker : int
        k-means clusters per marker (paper: 8, i.e. 16 per model).
    channels : int
        Output channels of each layer (paper: 16).  When the two markers give
        more kernels than this, the consensus step reduces them; when fewer,
        the layer has ``2 * kernels_per_marker`` channels.
    pool : {"avg", "max"}
        Pooling after the ReLU; average pooling counts the zero padding, max
        pooling ignores what lies outside the image (libift).
    pool_size : int
        Odd pooling window side (paper: 3).
    pool_stride : int
        Pooling stride (paper: 2).
    layers : int
        FLIM layers, 1 to 3, all learned from the same markers.
    decision_layer : int or None
        Layer (1-based) whose features the decision layer reads; None is the last.
    consensus : {"kmeans", "pca"}
        How more kernels than ``channels`` are reduced: libift's cosine
        k-means prototypes (real kernels) or PCA of the z-scored kernel set.
    stdev_factor : float
        Added to the marker-based standard deviation (libift: 0.01).
    clustering : {"farthest", "kmeans++"}
        k-means initialisation of each marker's patches: the engine's original
        deterministic farthest-point start (one run), or seeded k-means++
        with ``restarts`` runs keeping the lowest inertia.
    restarts : int
        k-means++ runs per marker (ignored by ``farthest``).
    min_cluster_fraction : float
        libift drops clusters with fewer than ``max(fraction * patches, 1)``
        members (libift: 0.05); a dropped cluster becomes a zero kernel (a
        channel that is always 0).  0 keeps every cluster.
    cluster_seed : int
        Seed of k-means++ (the same random numbers for every model, so that a
        model's kernels never depend on the other models of its batch).
    """

    kernel_size: int = 3
    kernels_per_marker: int = 8
    channels: int = 16
    pool: str = "avg"
    pool_size: int = 3
    pool_stride: int = 2
    layers: int = 1
    decision_layer: int | None = None
    consensus: str = "kmeans"
    stdev_factor: float = 0.01
    clustering: str = "farthest"
    restarts: int = 1
    min_cluster_fraction: float = 0.0
    cluster_seed: int = 42

    def __post_init__(self) -> None:
        for name in (*_INTS, "decision_layer"):
            value = getattr(self, name)
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                object.__setattr__(self, name, int(value))
        for name in ("stdev_factor", "min_cluster_fraction"):
            value = getattr(self, name)
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                object.__setattr__(self, name, float(value))

    # -- derived sizes ------------------------------------------------------------------------

    @property
    def n_kernels(self) -> int:
        """Output channels of every layer: ``min(channels, 2 * kernels_per_marker)``."""
        return min(self.channels, 2 * self.kernels_per_marker)

    @property
    def read_layer(self) -> int:
        """The 1-based layer the decision layer reads."""
        return self.layers if self.decision_layer is None else self.decision_layer

    @property
    def is_paper_block(self) -> bool:
        """One 3x3 layer, 3x3 average pooling with stride 2: the engine's fast banded encoding applies."""
        return (
            self.read_layer == 1
            and self.kernel_size == 3
            and self.pool == "avg"
            and self.pool_size == 3
            and self.pool_stride == 2
        )

    def scale(self) -> int:
        """How much smaller (per side, rounded up) the decision layer's features are than the image."""
        return self.pool_stride ** self.read_layer

    def summary(self) -> str:
        """One line a reader can check at a glance.

        Examples
        --------
        >>> FlimSettings().summary()
        '1 layer: 3x3 kernels, 8 per marker, 16 channels, avg pool 3/2 (paper)'
        >>> FlimSettings(layers=2, decision_layer=1, pool="max").summary()
        '2 layers (decision reads 1): 3x3 kernels, 8 per marker, 16 channels, max pool 3/2'
        """
        layers = f"{self.layers} layer{'s' if self.layers > 1 else ''}"
        if self.decision_layer is not None and self.decision_layer != self.layers:
            layers += f" (decision reads {self.decision_layer})"
        k = self.kernel_size
        text = (f"{layers}: {k}x{k} kernels, {self.kernels_per_marker} per marker, {self.channels} channels, "
                f"{self.pool} pool {self.pool_size}/{self.pool_stride}")
        extra = []
        if self.clustering != "farthest":
            extra.append(f"{self.clustering} x{self.restarts}")
        if self.min_cluster_fraction:
            extra.append(f"drop clusters < {self.min_cluster_fraction:g}")
        if self.consensus != "kmeans" and 2 * self.kernels_per_marker > self.channels:
            extra.append(f"{self.consensus} consensus")
        if extra:
            text += ", " + ", ".join(extra)
        return text + (" (paper)" if self == FlimSettings() else "")

    # -- checks and JSON ----------------------------------------------------------------------

    def problems(self) -> dict[str, str]:
        """What is wrong, as ``field -> what it must be`` (empty when valid)."""
        out = {}
        for name, lowest in _INTS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                out[name] = f"must be an integer >= {lowest}, got {value!r}"
        for name in ("kernel_size", "pool_size"):
            value = getattr(self, name)
            if name not in out and value % 2 == 0:
                out[name] = f"must be odd (a centred window), got {value}"
        if "layers" not in out and self.layers > MAX_LAYERS:
            out["layers"] = f"must be 1 to {MAX_LAYERS}, got {self.layers}"
        d = self.decision_layer
        if d is not None and (isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= max(1, self.layers)):
            out["decision_layer"] = f"must be None or a layer 1..{self.layers}, got {d!r}"
        for name, allowed in (("pool", POOLS), ("consensus", CONSENSUS), ("clustering", CLUSTERINGS)):
            if getattr(self, name) not in allowed:
                out[name] = f"must be one of {', '.join(allowed)}, got {getattr(self, name)!r}"
        if not isinstance(self.stdev_factor, float) or not self.stdev_factor > 0:
            out["stdev_factor"] = f"must be a number > 0, got {self.stdev_factor!r}"
        f = self.min_cluster_fraction
        if not isinstance(f, float) or not 0.0 <= f < 1.0:
            out["min_cluster_fraction"] = f"must be a number in [0, 1), got {f!r}"
        return out

    def validate(self) -> FlimSettings:
        """Raise :class:`ConfigError` naming every wrong setting; return ``self``."""
        bad = self.problems()
        if bad:
            raise ConfigError("invalid FLIM settings: " + "; ".join(f"{k} {v}" for k, v in bad.items()))
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FlimSettings:
        """Build from :meth:`to_dict` output; unknown keys are an error."""
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown FLIM settings: {sorted(unknown)}")
        return cls(**data)

    def replace(self, **changes: Any) -> FlimSettings:
        return replace(self, **changes)


FIELDS = tuple(f.name for f in fields(FlimSettings))
