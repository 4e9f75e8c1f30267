"""Where a model's object evidence lies, scored against the object mask (FIELD_NOTES section 9).

The *evidence map* of a readout at image resolution:

* the trained decision layer (``head``): its exact per-pixel logit gap
  ``a . upsample(features) + c``, a class-activation map without
  approximation.  Bilinear upsampling is linear with weights summing to 1,
  so it equals the upsampled gap of the pooled features
  (:func:`head_evidence`), which is what
  :func:`flimexplore.engine.batched.predict_gap` returns;
* an adaptive decoder: its saliency map in [0, 1]
  (:func:`flimexplore.engine.decoders.saliency`), before the uint8 cut.

Two scores per (model, image), as float64:

``pointing``
    1 if the map's maximum lies inside the object mask (or within
    ``tolerance`` pixels of it, Euclidean; TorchRay's pointing game uses
    15), else 0.  Ties: the first maximum in raster order.  A constant map
    (all-zero saliency, say) points nowhere: 0.
``mass_in_object``
    The share of the positive evidence inside the object:
    ``sum(max(map, 0) * mask) / sum(max(map, 0))``; 0 when the map has no
    positive evidence at all.

Both are NaN on an image without object pixels (nothing to point at);
average them with ``nanmean``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from flimexplore.engine.batched import DEFAULT_MEMORY_MB, ImageGroup
from flimexplore.engine.decision import upsample
from flimexplore.engine.decoders import (
    ADJACENCY_RADIUS,
    DECODERS,
    Decoder,
    adjacency,
    decoder_labels,
    decoding_bytes,
    saliency,
)
from flimexplore.engine.flim import FlimBank
from flimexplore.engine.streaming import stream_features

__all__ = ["HEAD", "AttentionScores", "attention_scores", "head_evidence", "mass_in_object", "pointing"]

HEAD = "head"


@dataclass(frozen=True, eq=False)
class AttentionScores:
    """Attention scores of ``B`` models on ``N`` images, for ``R`` readouts.

    Attributes
    ----------
    readouts : tuple of str
        ``"head"`` (the trained decision layer) then the decoders, in order.
    pointing, mass_in_object : Tensor of shape (B, R, N), float64
        NaN on images without object.
    """

    readouts: tuple[str, ...]
    pointing: torch.Tensor
    mass_in_object: torch.Tensor


def head_evidence(features: torch.Tensor, a: torch.Tensor, c: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Per-pixel logit gap of trained decision layers (an exact CAM).

    Parameters
    ----------
    features : Tensor of shape (N, B, K, h, w)
    a : Tensor of shape (B, K)
    c : Tensor of shape (B,)
        One folded head per model (:func:`flimexplore.engine.decision.head_gap` at one epoch).
    size : tuple of int
        Image size ``(H, W)``.

    Returns
    -------
    gap : Tensor of shape (N, B, H, W)
        Positive where a model predicts object.
    """
    n, b, k, h, w = features.shape
    gap = torch.matmul(a[:, None, :], features.reshape(n, b, k, h * w)).reshape(n, b, h, w) + c[None, :, None, None]
    return upsample(gap[:, :, None], size)[:, :, 0]


def _near(masks: torch.Tensor, tolerance: float) -> torch.Tensor:
    """Pixels within ``tolerance`` (Euclidean) of an object pixel."""
    if tolerance <= 0:
        return masks
    disk = adjacency(tolerance).to(device=masks.device, dtype=torch.float32)
    r = disk.shape[0] // 2
    return F.conv2d(masks[:, None].float(), disk[None, None], padding=r)[:, 0] > 0


def pointing(maps: torch.Tensor, masks: torch.Tensor, tolerance: float = 0.0) -> torch.Tensor:
    """Pointing game: does each map's maximum lie on the object?

    Parameters
    ----------
    maps : Tensor of shape (N, B, H, W)
        Evidence maps of ``B`` readouts or models of ``N`` images.
    masks : Tensor of shape (N, H, W), bool
    tolerance : float, optional
        Pixels (Euclidean) the maximum may lie outside the object (default 0).

    Returns
    -------
    hits : Tensor of shape (B, N), float64
        1 or 0 (the first maximum in raster order; 0 for a constant map);
        NaN on an image without object.

    Examples
    --------
    >>> maps = torch.tensor([[[[0.0, 2.0], [2.0, 1.0]]]])
    >>> pointing(maps, torch.tensor([[[False, True], [False, False]]])).tolist()
    [[1.0]]
    """
    n, b, h, w = maps.shape
    flat = maps.reshape(n, b, h * w)
    first = flat.argmax(dim=-1)  # first maximum
    constant = flat.amax(dim=-1) == flat.amin(dim=-1)
    target = _near(masks, tolerance).reshape(n, h * w)
    hit = target.gather(1, first).double() * ~constant
    has_object = masks.reshape(n, h * w).any(dim=1)[:, None]
    return torch.where(has_object, hit, torch.full_like(hit, torch.nan)).T


def mass_in_object(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Share of each map's positive evidence that lies on the object.

    Parameters
    ----------
    maps : Tensor of shape (N, B, H, W)
    masks : Tensor of shape (N, H, W), bool

    Returns
    -------
    share : Tensor of shape (B, N), float64
        ``sum(max(map, 0) * mask) / sum(max(map, 0))``; 0 for a map without
        positive values; NaN on an image without object.

    Examples
    --------
    >>> maps = torch.tensor([[[[3.0, -5.0], [1.0, 0.0]]]])
    >>> mass_in_object(maps, torch.tensor([[[True, True], [False, False]]])).tolist()
    [[0.75]]
    """
    n, b, h, w = maps.shape
    positive = maps.reshape(n, b, h * w).clamp(min=0).double()
    truth = masks.reshape(n, h * w)
    inside = torch.einsum("nbp,np->nb", positive, truth.double())
    total = positive.sum(dim=-1)
    share = torch.where(total > 0, inside / torch.where(total > 0, total, torch.ones_like(total)), 0.0)
    return torch.where(truth.any(dim=1)[:, None], share, torch.full_like(share, torch.nan)).T


def attention_scores(
    bank: FlimBank,
    groups: Sequence[ImageGroup],
    a: torch.Tensor,
    c: torch.Tensor,
    decoders: Sequence[Decoder] = DECODERS,
    tolerance: float = 0.0,
    memory_mb: float = DEFAULT_MEMORY_MB,
    progress: Callable[[int, int], None] | None = None,
    radius: float = ADJACENCY_RADIUS,
    align_corners: bool = True,
) -> AttentionScores:
    """Pointing and mass in object of each model's trained head and adaptive decoders.

    Parameters
    ----------
    bank : FlimBank of ``B`` models
    groups : sequence of ImageGroup
    a : Tensor of shape (B, C)
    c : Tensor of shape (B,)
        The folded head of one chosen epoch per model, e.g. the best one:
        ``head_gap(params)`` indexed at that epoch.
    decoders : sequence of str, optional
        Decoders to score after the head (default all four; may be empty).
    tolerance : float, optional
        Of :func:`pointing`.
    memory_mb, progress : optional
        As :func:`flimexplore.engine.decoders.score_decoders`.
    radius, align_corners : optional
        Of the decoders (:func:`flimexplore.engine.decoders.saliency`).

    Returns
    -------
    AttentionScores
        Readouts ``("head", *decoders)``; scores on the CPU, images in the
        order of the groups' ``index``.
    """
    for d in decoders:
        if d not in DECODERS:
            raise ValueError(f"unknown decoder {d!r}; use one of {', '.join(DECODERS)}")
    readouts = (HEAD, *decoders)
    labels = decoder_labels(bank)
    n_total = sum(len(g.index) for g in groups)
    hits = torch.zeros(len(bank), len(readouts), n_total, dtype=torch.float64)
    mass = torch.zeros_like(hits)
    for block in stream_features(bank, groups, decoding_bytes(bank.n_channels), memory_mb, progress):
        size = tuple(block.masks.shape[1:])
        index = list(block.index)
        for j, r in enumerate(readouts):
            if r == HEAD:
                maps = head_evidence(block.features, a[block.models], c[block.models], size)
            else:
                maps = saliency(block.features, labels[block.models], size, r, radius, align_corners)
            hits[block.models, j, index] = pointing(maps, block.masks, tolerance).cpu()
            mass[block.models, j, index] = mass_in_object(maps, block.masks).cpu()
    return AttentionScores(readouts, hits, mass)
