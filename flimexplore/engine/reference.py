"""The plain reference path: one FLIM model at a time, written as the paper reads.

Each model is built with ordinary ``torch.nn`` modules: normalise the marked
image with its markers' statistics, take 3x3 patches with ``unfold``,
cluster them, load the kernels into a frozen ``Conv2d`` + ``ReLU`` +
``AvgPool2d`` block (or, for other :class:`FlimSettings`, ``k x k`` kernels,
``MaxPool2d``, and layers 2-3 learned the same way on the previous layers'
output with pooling stride 1), interpolate the features to image size, and train a
``BatchNorm2d`` + 1x1 ``Conv2d`` decision layer with Adam, scoring the
validation set after every epoch.  Nothing is shared between models or folded
into fewer operations; it serves as the ground truth that the
batched engine (:mod:`flimexplore.engine.batched`) must reproduce.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from flimexplore.engine.colour import lab_norm
from flimexplore.engine.decision import BN_EPS, decision_loss
from flimexplore.engine.flim import estimate_kernels
from flimexplore.engine.scores import metrics_from_counts
from flimexplore.engine.settings import FlimSettings
from flimexplore.markers import marker_pixels

__all__ = ["ReferenceResult", "run_reference"]


@dataclass(frozen=True)
class ReferenceResult:
    """Scores of one model from the reference path.

    Attributes
    ----------
    val_dice : ndarray of shape (E,)
        Mean validation Dice after each epoch.
    best_epoch : int
        1-based epoch with the highest validation Dice (first on ties).
    val_counts, test_counts : ndarray of shape (N, 4)
        Confusion counts at the best epoch.
    """

    val_dice: NDArray[np.float64]
    best_epoch: int
    val_counts: NDArray[np.int64]
    test_counts: NDArray[np.int64]


def _tensor(rgb: NDArray[np.floating]) -> torch.Tensor:
    return torch.from_numpy(lab_norm(rgb).transpose(2, 0, 1).copy())


class _Decision(nn.Module):
    def __init__(self, seed: int, channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=BN_EPS, momentum=None)
        self.conv = nn.Conv2d(channels, 2, 1)
        nn.init.xavier_uniform_(self.conv.weight, generator=torch.Generator().manual_seed(seed))
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.bn(x))


def _object(logits: torch.Tensor) -> torch.Tensor:
    return logits[1] > logits[0]


def _counts(pred: torch.Tensor, truth: torch.Tensor) -> list[int]:
    tp = int((pred & truth).sum())
    fp = int((pred & ~truth).sum())
    fn = int((~pred & truth).sum())
    return [tp, fp, fn, pred.numel() - tp - fp - fn]


class _Layer(nn.Module):
    """Marker-based normalisation, frozen convolution, ReLU and pooling: one FLIM layer."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, kernels: torch.Tensor, settings: FlimSettings) -> None:
        super().__init__()
        self.register_buffer("mean", mean[:, None, None])
        self.register_buffer("std", std[:, None, None])
        k = kernels.shape[-1]
        self.conv = nn.Conv2d(kernels.shape[1], kernels.shape[0], k, padding=k // 2, bias=False).requires_grad_(False)
        self.conv.weight.copy_(kernels)
        self.relu = nn.ReLU()
        self.size = settings.pool_size
        self.kind = settings.pool
        self.pool = self.pooling(settings.pool_stride)

    def pooling(self, stride: int) -> nn.Module:
        if self.kind == "max":
            return nn.MaxPool2d(self.size, stride=stride, padding=self.size // 2)
        return nn.AvgPool2d(self.size, stride=stride, padding=self.size // 2, count_include_pad=True)

    def forward(self, x: torch.Tensor, stride: int | None = None) -> torch.Tensor:
        pool = self.pool if stride is None else self.pooling(stride)
        return pool(self.relu(self.conv((x - self.mean) / self.std)))


def _learn_layer(x: torch.Tensor, obj_px: NDArray, bg_px: NDArray, settings: FlimSettings) -> _Layer:
    """One layer from its input ``x (1, C, H, W)`` and the marker pixels, step by step."""
    _, c, h, w = x.shape
    marked = torch.cat([x[0][:, obj_px[:, 0], obj_px[:, 1]], x[0][:, bg_px[:, 0], bg_px[:, 1]]], 1)
    mean = marked.mean(dim=1)
    std = marked.std(dim=1, unbiased=False) + settings.stdev_factor
    norm = (x[0] - mean[:, None, None]) / std[:, None, None]
    k = settings.kernel_size
    patches = F.unfold(norm[None], k, padding=k // 2)[0].T.reshape(h, w, -1)
    kernels, _ = estimate_kernels(
        patches[obj_px[:, 0], obj_px[:, 1]][None], patches[bg_px[:, 0], bg_px[:, 1]][None], settings=settings
    )
    return _Layer(mean, std, kernels[0].reshape(-1, c, k, k), settings)


def run_reference(
    marked_image: NDArray[np.floating],
    marked_mask: NDArray[np.bool_],
    obj_centre: NDArray[np.integer],
    bg_centre: NDArray[np.integer],
    radius: int,
    seed: int,
    val: tuple[Sequence[NDArray], Sequence[NDArray]],
    test: tuple[Sequence[NDArray], Sequence[NDArray]],
    epochs: int = 20,
    lr: float = 0.1,
    settings: FlimSettings | None = None,
) -> ReferenceResult:
    """Train and score one (object, background) marker pair, step by step.

    Parameters
    ----------
    marked_image : ndarray of shape (H, W, 3), float in [0, 1]
    marked_mask : ndarray of shape (H, W), bool
    obj_centre, bg_centre : ndarray of shape (2,), int
    radius : int
    seed : int
        Seed of the decision layer's Xavier initialisation.
    val, test : tuple of (images, masks)
    epochs, lr : int, float
    settings : FlimSettings, optional
        FLIM encoder settings (default: the paper's single layer).

    Returns
    -------
    ReferenceResult
    """
    settings = settings or FlimSettings()
    image = _tensor(marked_image)
    h, w = image.shape[1:]
    obj_px = marker_pixels(obj_centre, radius, (h, w))
    bg_px = marker_pixels(bg_centre, radius, (h, w))
    # Layer l + 1 learns from the output of layers 1..l with pooling stride 1 (libift).
    layers: list[_Layer] = []
    x = image[None]
    with torch.no_grad():
        for _ in range(settings.layers):
            if layers:
                x = layers[-1](x, stride=1)
            layers.append(_learn_layer(x, obj_px, bg_px, settings))
    block = nn.Sequential(*layers[: settings.read_layer])

    def features(rgb: NDArray) -> torch.Tensor:
        x = _tensor(rgb)
        f = block(x[None])
        return F.interpolate(f, size=x.shape[1:], mode="bilinear", align_corners=False)

    # The block is frozen: encode each validation and test image once.
    with torch.no_grad():
        val_set = [(features(im), torch.from_numpy(np.asarray(m, bool))) for im, m in zip(*val, strict=True)]
        test_set = [(features(im), torch.from_numpy(np.asarray(m, bool))) for im, m in zip(*test, strict=True)]

    def score(head: nn.Module, encoded: list[tuple[torch.Tensor, torch.Tensor]]) -> np.ndarray:
        head.eval()
        with torch.no_grad():
            # argmax over the two classes; ties go to background, as argmax does.
            rows = [_counts(_object(head(f)[0]), m) for f, m in encoded]
        return np.asarray(rows, dtype=np.int64).reshape(-1, 4)

    x = features(marked_image)
    y = torch.from_numpy(np.asarray(marked_mask, bool))
    head = _Decision(seed, x.shape[1])
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    val_dice, best, best_state = [], -1.0, None
    for _ in range(epochs):
        head.train()
        opt.zero_grad()
        with torch.enable_grad():
            loss = decision_loss(head(x), y).sum()
            loss.backward()
        opt.step()
        d = float(metrics_from_counts(score(head, val_set))["dice"].mean())
        val_dice.append(d)
        if d > best:
            best, best_state = d, copy.deepcopy(head.state_dict())
    head.load_state_dict(best_state)
    return ReferenceResult(
        val_dice=np.asarray(val_dice),
        best_epoch=int(np.argmax(val_dice)) + 1,
        val_counts=score(head, val_set),
        test_counts=score(head, test_set),
    )
