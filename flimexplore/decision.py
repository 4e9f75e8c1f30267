"""The decision layer of the paper (Sec. IV-B), batched over many models.

On top of a frozen FLIM block the paper trains a 1x1 convolution with batch
normalisation on the features interpolated back to image size:

``logits = W @ BN(upsample(features)) + b`` with two classes (background,
object), Xavier-initialised ``W``, zero ``b``, BN affine ``gamma = 1``,
``beta = 0``; Adam with ``lr = 0.1`` for 20 epochs on the marked image's
ground truth only (one image, so one full-batch step per epoch); the loss is
the mean of the cross-entropy and the soft Dice loss of the object
probability.  Batch norm behaves as ``torch.nn.BatchNorm2d(momentum=None)``:
training normalises with the marked image's feature statistics (biased
variance) and evaluation with the accumulated running statistics, which for
frozen features are the same mean and the unbiased variance.

Because bilinear interpolation and the (BN, 1x1 conv) head are both linear,
the *logit gap* ``logit_object - logit_background`` can be computed on the
pooled features and upsampled afterwards: the same numbers, 16 times less
interpolation.  :func:`count_outcomes` uses that to score every epoch of
every model on the validation images in one pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BN_EPS",
    "DICE_SMOOTH",
    "BatchNormStats",
    "DecisionParams",
    "count_outcomes",
    "decision_loss",
    "head_gap",
    "train_decision",
    "upsample",
    "xavier_weights",
]

BN_EPS = 1e-5
DICE_SMOOTH = 1.0


@dataclass(frozen=True, eq=False)
class DecisionParams:
    """Parameters of ``B`` decision layers (optionally one set per epoch).

    Attributes
    ----------
    gamma, beta : Tensor of shape (B, [E,] C)
        Batch-norm affine parameters.
    weight : Tensor of shape (B, [E,] 2, C)
        1x1 convolution weights (row 0 background, row 1 object).
    bias : Tensor of shape (B, [E,] 2)
    """

    gamma: torch.Tensor
    beta: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor

    def at_epoch(self, epoch: torch.Tensor) -> DecisionParams:
        """Pick, for each model, the parameters of its epoch ``epoch[b]`` (0-based)."""
        idx = torch.arange(self.gamma.shape[0], device=self.gamma.device)
        return DecisionParams(*(t[idx, epoch] for t in self.astuple()))

    def astuple(self) -> tuple[torch.Tensor, ...]:
        return (self.gamma, self.beta, self.weight, self.bias)


@dataclass(frozen=True, eq=False)
class BatchNormStats:
    """Feature statistics of the marked image, per model and channel.

    Attributes
    ----------
    mean, var, running_var : Tensor of shape (B, C)
        Mean, biased variance (training) and unbiased variance (evaluation).
    """

    mean: torch.Tensor
    var: torch.Tensor
    running_var: torch.Tensor


def upsample(features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear interpolation of ``(..., C, h, w)`` maps to ``size`` (align_corners=False)."""
    lead = features.shape[:-3]
    flat = features.reshape(-1, *features.shape[-3:])
    out = F.interpolate(flat, size=size, mode="bilinear", align_corners=False)
    return out.reshape(*lead, *out.shape[-3:])


def xavier_weights(seeds: Sequence[int], n_channels: int) -> torch.Tensor:
    """Xavier-uniform 1x1 weights, one seeded generator per model.

    Parameters
    ----------
    seeds : sequence of int
        One seed per model; the same seed gives the same weights.
    n_channels : int
        Input channels of the decision layer.

    Returns
    -------
    weight : Tensor of shape (B, 2, C), float32 on the CPU
    """
    out = []
    for s in seeds:
        w = torch.empty(2, n_channels, 1, 1)
        nn.init.xavier_uniform_(w, generator=torch.Generator().manual_seed(int(s)))
        out.append(w[:, :, 0, 0])
    return torch.stack(out)


def decision_loss(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of cross-entropy and soft Dice loss, per model.

    Parameters
    ----------
    logits : Tensor of shape (B, 2, H, W)
    mask : Tensor of shape (H, W), bool

    Returns
    -------
    loss : Tensor of shape (B,)
    """
    target = mask.long().expand(logits.shape[0], *mask.shape)
    ce = F.cross_entropy(logits, target, reduction="none").mean(dim=(1, 2))
    prob = logits.softmax(dim=1)[:, 1]
    g = mask.to(prob.dtype)
    inter = (prob * g).sum(dim=(1, 2))
    dice = (2 * inter + DICE_SMOOTH) / (prob.sum(dim=(1, 2)) + g.sum() + DICE_SMOOTH)
    return 0.5 * (ce + (1 - dice))


def train_decision(
    pooled: torch.Tensor,
    mask: torch.Tensor,
    seeds: Sequence[int],
    epochs: int = 20,
    lr: float = 0.1,
) -> tuple[DecisionParams, BatchNormStats, torch.Tensor]:
    """Train ``B`` decision layers on the marked image, keeping every epoch.

    Parameters
    ----------
    pooled : Tensor of shape (B, C, h, w)
        Frozen FLIM features of the marked image, one set per model.
    mask : Tensor of shape (H, W), bool
        Ground truth of the marked image.
    seeds : sequence of int
        Seed of each model's Xavier initialisation.
    epochs : int, optional
    lr : float, optional

    Returns
    -------
    params : DecisionParams with shapes (B, E, ...)
        The parameters after each epoch.
    bn : BatchNormStats
    losses : Tensor of shape (B, E)
        Training loss before each epoch's step.
    """
    b, c = pooled.shape[:2]
    feats = upsample(pooled, tuple(mask.shape))  # (B, C, H, W)
    mean = feats.mean(dim=(2, 3))
    var = feats.var(dim=(2, 3), unbiased=False)
    n = mask.numel()
    bn = BatchNormStats(mean, var, var * n / (n - 1))
    z = (feats - mean[..., None, None]) / torch.sqrt(var[..., None, None] + BN_EPS)

    dev, dt = pooled.device, pooled.dtype
    gamma = torch.ones(b, c, device=dev, dtype=dt, requires_grad=True)
    beta = torch.zeros(b, c, device=dev, dtype=dt, requires_grad=True)
    weight = xavier_weights(seeds, c).to(device=dev, dtype=dt).requires_grad_(True)
    bias = torch.zeros(b, 2, device=dev, dtype=dt, requires_grad=True)
    opt = torch.optim.Adam([gamma, beta, weight, bias], lr=lr)
    history: list[tuple[torch.Tensor, ...]] = []
    losses = []
    with torch.enable_grad():
        for _ in range(epochs):
            opt.zero_grad()
            y = gamma[..., None, None] * z + beta[..., None, None]
            logits = torch.einsum("bkc,bchw->bkhw", weight, y) + bias[..., None, None]
            loss = decision_loss(logits, mask)
            loss.sum().backward()
            opt.step()
            losses.append(loss.detach())
            history.append(tuple(p.detach().clone() for p in (gamma, beta, weight, bias)))
    params = DecisionParams(*(torch.stack(ps, dim=1) for ps in zip(*history, strict=True)))
    return params, bn, torch.stack(losses, dim=1)


def head_gap(params: DecisionParams, bn: BatchNormStats) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold BN (evaluation mode) and the 1x1 conv into ``gap = a . f + c``.

    Parameters
    ----------
    params : DecisionParams with shapes (B, E, ...)
    bn : BatchNormStats with shapes (B, C)

    Returns
    -------
    a : Tensor of shape (B, E, C)
    c : Tensor of shape (B, E)
        ``logit_object - logit_background = a . features + c``.
    """
    scale = params.gamma / torch.sqrt(bn.running_var[:, None] + BN_EPS)
    dw = params.weight[..., 1, :] - params.weight[..., 0, :]
    a = dw * scale
    c = (dw * (params.beta - scale * bn.mean[:, None])).sum(-1)
    c = c + params.bias[..., 1] - params.bias[..., 0]
    return a, c


def count_outcomes(
    pooled: torch.Tensor, a: torch.Tensor, c: torch.Tensor, masks: torch.Tensor
) -> torch.Tensor:
    """Confusion counts of every model and epoch on a chunk of images.

    Parameters
    ----------
    pooled : Tensor of shape (N, B, C, h, w)
        FLIM features of ``N`` images under ``B`` models.
    a : Tensor of shape (B, E, C)
    c : Tensor of shape (B, E)
        Folded heads from :func:`head_gap`.
    masks : Tensor of shape (N, H, W), bool
        Ground truth of the images.

    Returns
    -------
    counts : Tensor of shape (B, E, N, 4), int64
        ``(TP, FP, FN, TN)``; a pixel is predicted object when its logit gap
        is strictly positive (``argmax`` keeps background on ties).
    """
    n, b, ch, h, w = pooled.shape
    e = a.shape[1]
    feats = pooled.permute(1, 2, 0, 3, 4).reshape(b, ch, n * h * w)
    gap = torch.bmm(a, feats).reshape(b * e * n, 1, h, w) + c.reshape(b * e, 1, 1, 1, 1).expand(b * e, n, 1, 1, 1).reshape(-1, 1, 1, 1)
    size = tuple(masks.shape[1:])
    hw = size[0] * size[1]
    big = F.interpolate(gap, size=size, mode="bilinear", align_corners=False)
    # Counting through a matrix product is much faster than summing booleans;
    # float32 is exact for counts below 2**24, float64 beyond.
    dtype = torch.float32 if hw < 2**24 else torch.float64
    pos = (big > 0).to(dtype).reshape(b * e, n, hw)
    g = masks.reshape(n, hw).to(dtype)
    probe = torch.stack([g, torch.ones_like(g)], dim=2)  # (N, HW, 2)
    tp_p = torch.einsum("mnp,npk->mnk", pos, probe).round().long().reshape(b, e, n, 2)
    tp, npos = tp_p[..., 0], tp_p[..., 1]
    ng = masks.reshape(n, hw).sum(-1).reshape(1, 1, n)
    fp = npos - tp
    fn = ng - tp
    tn = hw - tp - fp - fn
    return torch.stack([tp, fp, fn, tn], dim=-1)
