"""FLIM features of image sets under many models, streamed in bounded chunks.

The readouts other than the trained decision layer (the adaptive decoders,
attention scores) need each model's features of each image at full image
resolution for a moment.  :func:`stream_features` encodes the images of a
set chunk by chunk for a group of models at a time, sized so that the
caller's full-resolution working memory of one chunk stays about
``memory_mb``, and hands each chunk over before the next is encoded (the
same bound as :func:`flimexplore.engine.batched.score_models`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from flimexplore.engine.batched import DEFAULT_MEMORY_MB, ImageGroup
from flimexplore.engine.flim import FlimBank, encode

__all__ = ["FeatureChunk", "stream_features"]


@dataclass(frozen=True, eq=False)
class FeatureChunk:
    """Features of a few images under a group of models.

    Attributes
    ----------
    models : slice
        Positions of the models in the bank.
    index : tuple of int
        Positions of the images in the caller's list (the groups' ``index``).
    features : Tensor of shape (n, b, K, h, w), float32
        :func:`flimexplore.engine.flim.encode` of the images under the models.
    masks : Tensor of shape (n, H, W), bool
        Ground truth of the images.
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
) -> Iterator[FeatureChunk]:
    """Encode every image of ``groups`` under every model of ``bank``, chunk by chunk.

    Parameters
    ----------
    bank : FlimBank of ``B`` models
    groups : sequence of ImageGroup
    bytes_per_pixel : int
        Working memory the caller needs per model and image pixel while it
        reads one chunk; models are grouped and images chunked so that a
        chunk needs about ``memory_mb`` (at least one model and one image).
    memory_mb : float, optional
    progress : callable, optional
        Called as ``progress(done, total)`` once before the first chunk and
        after the caller is done with each chunk, in image passes (one image
        read by one group of models); ``total`` is fixed.

    Yields
    ------
    FeatureChunk
    """
    b = len(bank)
    budget = int(memory_mb * 2**20)
    plan = []
    for g in groups:
        h, w = tuple(g.masks.shape[1:])
        per = max(1, bytes_per_pixel * h * w)
        step = max(1, min(b, budget // per))
        chunk = max(1, min(len(g.index), budget // (per * step)))
        plan.append((g, step, chunk))
    total = sum(len(g.index) * -(-b // step) for g, step, _ in plan)
    done = 0
    if progress is not None:
        progress(0, total)
    for g, step, chunk in plan:
        for lo in range(0, b, step):
            models = slice(lo, min(b, lo + step))
            sub = bank.select(models)
            for first in range(0, len(g.index), chunk):
                images = slice(first, first + chunk)
                yield FeatureChunk(models, g.index[images], encode(g.images[images], sub), g.masks[images])
                done += len(g.index[images])
                if progress is not None:
                    progress(done, total)
