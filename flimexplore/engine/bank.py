"""What a learned FLIM encoder is: the layers of ``B`` models (kernels, marker normalisation, kernel classes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from flimexplore.engine.settings import FlimSettings

__all__ = ["DEFAULT_SETTINGS", "KERNEL_SIZE", "N_KERNELS", "STDEV_FACTOR", "FlimBank", "FlimLayer", "Images", "Pixels"]

KERNEL_SIZE = 3
N_KERNELS = 16
STDEV_FACTOR = 0.01


DEFAULT_SETTINGS = FlimSettings()

Images = torch.Tensor | Sequence[torch.Tensor]
"""One marked image ``(C, H, W)`` (or per-model inputs ``(B, C, H, W)``), or a list of them, one per marked image."""
Pixels = torch.Tensor | Sequence[torch.Tensor]
"""Marker pixels ``(B, K, 2)`` of one image, or a list of them aligned with a list of images (``K`` may be 0)."""


@dataclass(frozen=True, eq=False)
class FlimLayer:
    """One learned FLIM layer of ``B`` models.

    Attributes
    ----------
    kernels : Tensor of shape (B, K, C, k, k), float32
        Unit-norm (or zero) kernels, acting on the marker-normalised input.
    mean, std : Tensor of shape (B, C), float32
        Marker-based normalisation of the layer input (``std`` includes ``stdev_factor``).
    kernel_labels : Tensor of shape (B, K), int64
        Marker each kernel came from: 1 object, 0 background, -1 none (PCA consensus).
    """

    kernels: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    kernel_labels: torch.Tensor

    def astuple(self) -> tuple[torch.Tensor, ...]:
        return (self.kernels, self.mean, self.std, self.kernel_labels)


@dataclass(frozen=True, eq=False)
class FlimBank:
    """Learned FLIM encoders of ``B`` models.

    Attributes
    ----------
    kernels : Tensor of shape (B, K, C, k, k), float32
        First-layer unit-norm kernels, acting on the marker-normalised image
        (paper: ``(B, 16, 3, 3, 3)``).
    mean, std : Tensor of shape (B, C), float32
        Marker-based normalisation of each model (``std`` includes the 0.01).
    kernel_labels : Tensor of shape (B, K), int64
        Marker each kernel came from: 1 object, 0 background.
    deeper : tuple of FlimLayer
        Layers 2.. (empty for the paper's single layer).
    settings : FlimSettings
        Pooling, layers and the decision layer's input (the default is the paper's block).
    """

    kernels: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    kernel_labels: torch.Tensor
    deeper: tuple[FlimLayer, ...] = ()
    settings: FlimSettings = field(default=DEFAULT_SETTINGS)

    def __len__(self) -> int:
        return self.kernels.shape[0]

    @property
    def layers(self) -> tuple[FlimLayer, ...]:
        """Every layer, the first one included."""
        return (FlimLayer(self.kernels, self.mean, self.std, self.kernel_labels), *self.deeper)

    @property
    def n_channels(self) -> int:
        """Channels of the features the decision layer reads."""
        return self.layers[self.settings.read_layer - 1].kernels.shape[1]

    def _map(self, fn) -> FlimBank:  # noqa: ANN001
        first = (fn(t) for t in (self.kernels, self.mean, self.std, self.kernel_labels))
        deeper = tuple(FlimLayer(*(fn(t) for t in layer.astuple())) for layer in self.deeper)
        return FlimBank(*first, deeper=deeper, settings=self.settings)

    def to(self, device: torch.device | str) -> FlimBank:
        """Return the same bank on another device."""
        return self._map(lambda t: t.to(device))

    def select(self, index: slice | torch.Tensor | list[int]) -> FlimBank:
        """Return the bank of a subset of models."""
        return self._map(lambda t: t[index])
