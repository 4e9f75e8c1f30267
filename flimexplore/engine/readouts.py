"""Every readout of a bank of models in one encoding pass: confusion counts and attention scores.

A *readout* turns a model's FLIM features into an object mask: the trained
decision layer (``head``: its exact logit gap, object where it is positive)
or one of the training-free adaptive decoders
(:mod:`flimexplore.engine.decoders`: a saliency map cut the LIDS way by
:func:`~flimexplore.engine.otsu.binarise`).
:func:`~flimexplore.engine.decoders.score_decoders` and
:func:`~flimexplore.engine.attention.attention_scores` each encode the
images themselves; :func:`score_readouts` encodes them once
(:func:`~flimexplore.engine.streaming.stream_features`) and, for every block
of features, makes each readout's map once and takes from it both its
confusion counts and, optionally, its attention scores.  The numbers are
those of the two functions (tested).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from flimexplore.engine.attention import HEAD, head_evidence, mass_in_object, pointing
from flimexplore.engine.batched import DEFAULT_MEMORY_MB, ImageGroup
from flimexplore.engine.decoders import (
    ADJACENCY_RADIUS,
    DECODERS,
    Decoder,
    decoder_labels,
    decoding_bytes,
    saliency,
)
from flimexplore.engine.flim import FlimBank
from flimexplore.engine.otsu import count_binarised
from flimexplore.engine.streaming import stream_features

__all__ = ["ReadoutScores", "count_positive", "score_readouts"]


@dataclass(frozen=True, eq=False)
class ReadoutScores:
    """What :func:`score_readouts` measured of ``B`` models on ``N`` images, for ``R`` readouts.

    Attributes
    ----------
    readouts : tuple of str
        ``"head"`` then the decoders, in order.
    counts : Tensor of shape (B, R, N, 4), int64
        ``(TP, FP, FN, TN)`` of each readout's object mask.
    pointing, mass_in_object : Tensor of shape (B, R, N), float64, or None
        Attention scores (:mod:`flimexplore.engine.attention`; NaN on images
        without object); None when not asked for.
    """

    readouts: tuple[str, ...]
    counts: torch.Tensor
    pointing: torch.Tensor | None
    mass_in_object: torch.Tensor | None


def count_positive(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Confusion counts of ``maps > 0`` against ground truth (the trained head's object mask).

    Parameters
    ----------
    maps : Tensor of shape (N, B, H, W)
    masks : Tensor of shape (N, H, W), bool

    Returns
    -------
    counts : Tensor of shape (B, N, 4), int64
        ``(TP, FP, FN, TN)``.

    Examples
    --------
    >>> maps = torch.tensor([[[[1.0, -1.0], [2.0, 0.0]]]])
    >>> count_positive(maps, torch.tensor([[[True, True], [False, False]]])).tolist()
    [[[1, 1, 1, 1]]]
    """
    n, b, h, w = maps.shape
    pred = (maps > 0).reshape(n, b, h * w)
    truth = masks.reshape(n, 1, h * w)
    tp = (pred & truth).sum(dim=-1)
    pos = pred.sum(dim=-1)
    n_obj = truth.sum(dim=-1)
    fp, fn = pos - tp, n_obj - tp
    tn = h * w - tp - fp - fn
    return torch.stack([tp, fp, fn, tn], dim=-1).transpose(0, 1).long()


def score_readouts(
    bank: FlimBank,
    groups: Sequence[ImageGroup],
    a: torch.Tensor,
    c: torch.Tensor,
    decoders: Sequence[Decoder] = DECODERS,
    *,
    attention: bool = True,
    tolerance: float = 0.0,
    memory_mb: float = DEFAULT_MEMORY_MB,
    progress: Callable[[int, int], None] | None = None,
    radius: float = ADJACENCY_RADIUS,
    align_corners: bool = True,
) -> ReadoutScores:
    """Confusion counts (and attention scores) of every model's trained head and adaptive decoders.

    Parameters
    ----------
    bank : FlimBank of ``B`` models
    groups : sequence of ImageGroup
    a : Tensor of shape (B, C)
    c : Tensor of shape (B,)
        The folded head of one epoch per model
        (:func:`~flimexplore.engine.decision.head_gap` at that epoch).
    decoders : sequence of str, optional
        Decoders read after the head (default all four; may be empty).
    attention : bool, optional
        Also score where each readout's evidence lies (pointing, mass in object).
    tolerance : float, optional
        Of :func:`~flimexplore.engine.attention.pointing`.
    memory_mb, progress : optional
        As :func:`~flimexplore.engine.decoders.score_decoders`.
    radius, align_corners : optional
        Of the decoders (:func:`~flimexplore.engine.decoders.saliency`).

    Returns
    -------
    ReadoutScores
        Readouts ``("head", *decoders)``; on the CPU, images in the order of
        the groups' ``index``.  The head's counts are those of
        :func:`~flimexplore.engine.batched.predict_gap` ``> 0``; a decoder's
        those of :func:`~flimexplore.engine.decoders.score_decoders`.
    """
    for d in decoders:
        if d not in DECODERS:
            raise ValueError(f"unknown decoder {d!r}; use one of {', '.join(DECODERS)}")
    readouts = (HEAD, *decoders)
    labels = decoder_labels(bank)
    n_total = sum(len(g.index) for g in groups)
    counts = torch.zeros(len(bank), len(readouts), n_total, 4, dtype=torch.int64)
    hits = torch.full((len(bank), len(readouts), n_total), torch.nan, dtype=torch.float64) if attention else None
    mass = torch.full_like(hits, torch.nan) if hits is not None else None
    for block in stream_features(bank, groups, decoding_bytes(bank.n_channels), memory_mb, progress):
        size = tuple(block.masks.shape[1:])
        index = list(block.index)
        for j, r in enumerate(readouts):
            if r == HEAD:
                maps = head_evidence(block.features, a[block.models], c[block.models], size)
                counts[block.models, j, index] = count_positive(maps, block.masks).cpu()
            else:
                maps = saliency(block.features, labels[block.models], size, r, radius, align_corners)
                counts[block.models, j, index] = count_binarised(maps, block.masks).cpu()
            if hits is not None and mass is not None:
                hits[block.models, j, index] = pointing(maps, block.masks, tolerance).cpu()
                mass[block.models, j, index] = mass_in_object(maps, block.masks).cpu()
            del maps
    return ReadoutScores(readouts, counts, hits, mass)
