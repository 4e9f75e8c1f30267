"""What a stored model of a study holds and shows: engine tensors back from its arrays, its features, its patches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from flimexplore.engine.batched import (
    model_pixels,
    prepare_images,
)
from flimexplore.engine.decision import BatchNormStats, DecisionParams
from flimexplore.engine.flim import FlimBank, FlimLayer
from flimexplore.engine.settings import FlimSettings
from flimexplore.study.pair_scores import LAYER_KEYS

__all__ = ["model_features", "model_patches", "unpack_models"]


def unpack_models(
    models: Sequence[dict[str, NDArray]], device: torch.device, settings: FlimSettings | None = None
) -> tuple[FlimBank, DecisionParams, BatchNormStats]:
    """Stack stored per-model arrays back into engine tensors."""
    def s(key: str) -> torch.Tensor:
        return torch.as_tensor(np.stack([m[key] for m in models]), device=device)

    settings = settings or FlimSettings()
    deeper = tuple(FlimLayer(*(s(f"{k}{n}") for k in LAYER_KEYS)) for n in range(2, settings.layers + 1))
    bank = FlimBank(s("kernels"), s("norm_mean"), s("norm_std"), s("kernel_labels"), deeper=deeper, settings=settings)
    params = DecisionParams(s("gamma"), s("beta"), s("weight"), s("bias"))
    return bank, params, BatchNormStats(s("bn_mean"), s("bn_var"), s("bn_running_var"))


def model_features(
    ctx: Any, arrays: dict[str, NDArray], images: Sequence[NDArray[np.floating]]
) -> NDArray[np.float32]:
    """FLIM features of one stored model, interpolated to image size.

    Parameters
    ----------
    ctx : StudyContext
    arrays : dict
        One model's parameters.
    images : sequence of ndarray of shape (H, W, 3)
        Images of one shape.

    Returns
    -------
    features : ndarray of shape (N, K, H, W), float32
        ``K`` channels of the layer the decision layer reads (paper: 16).
    """
    from flimexplore.engine.decision import upsample
    from flimexplore.engine.flim import encode

    bank, _, _ = unpack_models([arrays], ctx.device, ctx.config.flim())
    group = prepare_images(list(images), [np.zeros(im.shape[:2], bool) for im in images], ctx.device)[0]
    feats = encode(group.images, bank)[:, 0]
    return upsample(feats, tuple(group.images.shape[-2:])).cpu().numpy()


def model_patches(ctx: Any, arrays: dict[str, NDArray], obj: NDArray, bg: NDArray) -> tuple[NDArray, NDArray]:
    """The normalised patches one model learned its first-layer kernels from.

    Returns
    -------
    patches : ndarray of shape (Ko + Kb, 3 k^2), float32
        ``k x k`` windows (paper: 3x3, so 27 values).
    labels : ndarray of shape (Ko + Kb,), int64
        1 under the object marker, 0 under the background marker.
    """
    from flimexplore.engine.flim import sample_patches

    r, shape = ctx.config.radius, ctx.mask.shape
    mean = torch.as_tensor(arrays["norm_mean"][None], device=ctx.device)
    std = torch.as_tensor(arrays["norm_std"][None], device=ctx.device)
    k = ctx.config.kernel_size
    po = sample_patches(ctx.marked.images[0], model_pixels(np.asarray(obj)[None], r, shape, ctx.device), mean, std, k)[0]
    pb = sample_patches(ctx.marked.images[0], model_pixels(np.asarray(bg)[None], r, shape, ctx.device), mean, std, k)[0]
    labels = np.r_[np.ones(len(po), np.int64), np.zeros(len(pb), np.int64)]
    return torch.cat([po, pb]).cpu().numpy(), labels
