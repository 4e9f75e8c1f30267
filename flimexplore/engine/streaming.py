"""FLIM features of image sets under many models, streamed in bounded blocks.

The readouts other than the trained decision layer (the adaptive decoders,
attention scores) need each model's features of each image at full image
resolution for a moment.  :func:`stream_features` encodes the images of a
set chunk by chunk for a group of models at a time (the encoded chunk
bounded by ``memory_mb``, as :func:`flimexplore.engine.batched.score_models`
bounds its working memory) and hands the features over one image and a few
models at a time, so that the caller's full-resolution work on a block stays
about cache-sized (``block_bytes``) and nothing piles up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from flimexplore.engine.batched import DEFAULT_MEMORY_MB, ImageGroup
from flimexplore.engine.flim import FlimBank, encode

__all__ = ["BLOCK_BYTES", "FeatureBlock", "stream_features"]

BLOCK_BYTES = 32 * 2**20


@dataclass(frozen=True, eq=False)
class FeatureBlock:
    """Features of one image under a block of models.

    Attributes
    ----------
    models : slice
        Positions of the models in the bank.
    index : tuple of int
        Position of the image in the caller's list (the groups' ``index``), one entry.
    features : Tensor of shape (1, b, K, h, w), float32
        :func:`flimexplore.engine.flim.encode` of the image under the models.
    masks : Tensor of shape (1, H, W), bool
        Ground truth of the image.
    """

    models: slice
    index: tuple[int, ...]
    features: torch.Tensor
    masks: torch.Tensor


def stream_features(
    bank: FlimBank,
    groups: Sequence[ImageGroup],
    bytes_per_pixel: int,
    memory_mb: float = DEFAULT_MEMORY_MB,
    progress: Callable[[int, int], None] | None = None,
    block_bytes: int | None = None,
) -> Iterator[FeatureBlock]:
    """Encode every image of ``groups`` under every model of ``bank``, block by block.

    Parameters
    ----------
    bank : FlimBank of ``B`` models
    groups : sequence of ImageGroup
    bytes_per_pixel : int
        Working memory the caller needs per model and image pixel while it
        works on a block; a block holds as many models as fit ``block_bytes``
        (at least one).
    memory_mb : float, optional
        Bound of one encoded chunk (images of a group of models), counted
        generously as ``bytes_per_pixel`` per model and image pixel.
    progress : callable, optional
        Called as ``progress(done, total)`` once before the first block and
        after each chunk, in image passes (one image read by one group of
        models); ``total`` is fixed.
    block_bytes : int, optional
        Default ``BLOCK_BYTES`` on the CPU (cache-sized work); on a GPU the
        whole encoded chunk's models form one block (fewer, larger kernels).

    Yields
    ------
    FeatureBlock
        Images in the groups' order, models in blocks within each image.
    """
    b = len(bank)
    budget = int(memory_mb * 2**20)
    if block_bytes is None:
        block_bytes = BLOCK_BYTES if bank.kernels.device.type == "cpu" else budget
    plan = []
    for g in groups:
        h, w = tuple(g.masks.shape[1:])
        per = max(1, bytes_per_pixel * h * w)
        step = max(1, min(b, budget // per))
        chunk = max(1, min(len(g.index), budget // (per * step)))
        plan.append((g, step, chunk, max(1, block_bytes // per)))
    total = sum(len(g.index) * -(-b // step) for g, step, _, _ in plan)
    done = 0
    if progress is not None:
        progress(0, total)
    for g, step, chunk, block in plan:
        for lo in range(0, b, step):
            hi = min(b, lo + step)
            sub = bank.select(slice(lo, hi))
            for first in range(0, len(g.index), chunk):
                images = slice(first, first + chunk)
                feats, masks = encode(g.images[images], sub), g.masks[images]
                for i, index in enumerate(g.index[images]):
                    for m in range(lo, hi, block):
                        top = min(hi, m + block)
                        yield FeatureBlock(slice(m, top), (index,), feats[i : i + 1, m - lo : top - lo], masks[i : i + 1])
                done += len(g.index[images])
                if progress is not None:
                    progress(done, total)
