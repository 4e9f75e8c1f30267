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

With two classes everything depends on the *logit gap* ``logit_object -
logit_background`` only, and BN followed by the 1x1 convolution is affine:

* :func:`train_decision` computes one gap map per model and step (one small
  matrix product) and writes the gradient and Adam out by hand; it follows
  the ``nn.Module`` trajectory up to float rounding.
* Because bilinear interpolation is linear too, the gap can be computed on
  the pooled features and upsampled afterwards: the same numbers, 16 times
  less interpolation.  :func:`count_outcomes` uses that to score every epoch
  of every model on the validation images; for the usual even image sizes
  it upsamples exactly 2x with fixed 3:1 weights instead of interpolation
  indices, and counts with a matrix product instead of boolean sums.
"""

from __future__ import annotations

import numbers
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
COUNT_BLOCK_BYTES = 2**20
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


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


def _gap_loss(gap: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`decision_loss` and its gradient, written on the logit gap.

    With two classes the softmax depends only on ``t = logit_object -
    logit_background``: the cross-entropy is ``softplus(t) - y t`` and the
    object probability ``p = sigmoid(t)``, so

    ``dL/dt = ((p - y) / P - (2 y - dice) / D * p (1 - p)) / 2``

    with ``D = sum p + sum y + 1`` the soft-Dice denominator.

    Parameters
    ----------
    gap : Tensor of shape (B, P)
    target : Tensor of shape (P,), float 0/1

    Returns
    -------
    loss : Tensor of shape (B,)
    grad : Tensor of shape (B, P)
        Derivative of each model's loss with respect to its gap map.
    """
    n = gap.shape[1]
    prob = torch.sigmoid(gap)
    denom = prob.sum(dim=1) + target.sum() + DICE_SMOOTH
    dice = (2 * (prob * target).sum(dim=1) + DICE_SMOOTH) / denom
    ce = (F.softplus(gap) - gap * target).mean(dim=1)
    slope = prob * (1 - prob)
    slope *= (2 * target - dice[:, None]) / denom[:, None]
    grad = (prob - target).div_(n).sub_(slope).mul_(0.5)
    return 0.5 * (ce + (1 - dice)), grad


def train_decision(
    pooled: torch.Tensor | Sequence[torch.Tensor],
    mask: torch.Tensor | Sequence[torch.Tensor],
    seeds: Sequence[int] | Sequence[Sequence[int]],
    epochs: int = 20,
    lr: float = 0.1,
    pixel_step: int = 1,
) -> tuple[DecisionParams, BatchNormStats, torch.Tensor]:
    """Train ``B`` decision layers on the marked image, keeping every epoch.

    The loss depends on the two logits only through their gap, and BN
    followed by the 1x1 convolution is affine, so each step computes the gap
    map ``(w_1 - w_0) . (gamma * z + beta) + b_1 - b_0`` as one small matrix
    product per model on the standardised full-resolution features ``z``,
    and the chain rule back to ``gamma``, ``beta``, ``weight`` and ``bias``
    is written out (:func:`_gap_loss` gives ``dL/dgap``).  Adam then follows
    the same trajectory as the plain ``nn.Module`` trained with autograd, up
    to float rounding.

    Several decision layers can share one set of features (repeated fits
    that differ only in their initialisation): give ``seeds`` as ``M`` rows
    of ``H`` seeds.  The standardised features are then built once per
    feature set, and each head's gap map comes from a product of the shape a
    lone model has, so a fit's numbers do not depend on how many fits share
    its features.

    Several marked images train the decision layer together, as one
    full batch: give ``pooled`` and ``mask`` as lists, one entry per image
    (sizes may differ).  Batch norm then takes its statistics over the
    pixels of every image, and the loss is the mean cross-entropy and the
    soft Dice over all those pixels at once (one step per epoch, as for one
    image); a list of one image gives the single-image result bit for bit.

    Parameters
    ----------
    pooled : Tensor of shape (M, C, h, w), or list of them
        Frozen FLIM features of the marked image, one set per model (a list:
        of each marked image).
    mask : Tensor of shape (H, W), bool, or list of them
        Ground truth of the marked image (a list: of each marked image, aligned with ``pooled``).
    seeds : sequence of int, or M sequences of H ints
        Seed of each model's Xavier initialisation; ``H`` seeds per
        feature set train ``H`` decision layers on it.
    epochs : int, optional
    lr : float, optional
    pixel_step : int, optional
        Train on every ``pixel_step``-th row and column of the pixels only
        (batch-norm statistics and loss): ``pixel_step**2`` times cheaper, for
        the advisor's probe, whose 34-parameter layers need far fewer pixels
        than an image holds.  1 (every pixel) is the paper's training.

    Returns
    -------
    params : DecisionParams with shapes (B, E, ...)
        The parameters after each epoch, ``B = M * H`` heads in row-major
        order (feature set ``m``'s head ``h`` is ``m * H + h``).
    bn : BatchNormStats
        Of shape (B, C) (one feature set's statistics repeated for its heads).
    losses : Tensor of shape (B, E)
        Training loss before each epoch's step.
    """
    if isinstance(pooled, torch.Tensor):
        pooled, mask = [pooled], [mask]
    m, c = pooled[0].shape[:2]
    rows = [[int(s)] if isinstance(s, numbers.Integral) else [int(v) for v in s] for s in seeds]
    if len(rows) != m or len({len(r) for r in rows}) != 1 or not rows[0]:
        raise ValueError(f"give one seed, or one equally long row of seeds, per feature set ({m}), got {seeds!r}")
    heads = len(rows[0])
    b = m * heads
    if pixel_step > 1:  # train on a regular grid of the pixels: every pixel_step-th row and column
        maps = [upsample(p.contiguous(), tuple(mk.shape))[..., ::pixel_step, ::pixel_step] for p, mk in zip(pooled, mask, strict=True)]
        mask = [mk[::pixel_step, ::pixel_step] for mk in mask]
        maps = [f.reshape(m, c, -1) for f in maps]
    else:
        maps = [upsample(p.contiguous(), tuple(mk.shape)).reshape(m, c, mk.numel()) for p, mk in zip(pooled, mask, strict=True)]
    n = sum(mk.numel() for mk in mask)
    z = maps[0] if len(maps) == 1 else torch.cat(maps, dim=2)
    mean = z.mean(dim=2)
    z -= mean[..., None]
    var = z.square().mean(dim=2)
    bn = BatchNormStats(mean, var, var * n / (n - 1))
    if heads > 1:
        bn = BatchNormStats(*(t.repeat_interleave(heads, dim=0) for t in (bn.mean, bn.var, bn.running_var)))
    z *= torch.rsqrt(var + BN_EPS)[..., None]  # standardised features

    dev, dt = pooled[0].device, pooled[0].dtype
    target = torch.cat([mk.reshape(-1) for mk in mask]).to(dt)
    # All parameters of a model live in one row of ``flat`` (and their
    # gradients in one row of ``grad``), so each Adam step is a few
    # elementwise passes over one small tensor.
    flat = torch.zeros(b, 4 * c + 2, device=dev, dtype=dt)
    grad = torch.empty_like(flat)
    views = (slice(0, c), slice(c, 2 * c), slice(2 * c, 4 * c), slice(4 * c, 4 * c + 2))
    gamma, beta, weight, bias = (flat[:, v] for v in views)
    g_gamma, g_beta, g_weight, g_bias = (grad[:, v] for v in views)
    weight = weight.view(b, 2, c)
    g_weight = g_weight.view(b, 2, c)
    gamma.fill_(1.0)
    weight.copy_(xavier_weights([v for r in rows for v in r], c))
    exp_avg = torch.zeros_like(flat)
    exp_avg_sq = torch.zeros_like(flat)
    history = []
    losses = []
    for step in range(1, epochs + 1):
        dw = weight[:, 1] - weight[:, 0]  # (B, C)
        offset = (dw * beta).sum(dim=1) + bias[:, 1] - bias[:, 0]
        # one product per head, each of the shape a lone model has, so that a fit's numbers never
        # depend on how many other fits share its features
        scale, offset = (dw * gamma).view(m, heads, c), offset.view(m, heads, 1)
        gap = torch.cat([torch.baddbmm(offset[:, h : h + 1], scale[:, h : h + 1], z) for h in range(heads)], 1)
        loss, d_gap = _gap_loss(gap.view(b, n), target)  # gap: (B, H*W)
        per_head = d_gap.view(m, heads, n)
        g_scale = torch.cat([torch.bmm(per_head[:, h : h + 1], z.transpose(1, 2)) for h in range(heads)], 1)
        g_scale = g_scale.view(b, c)  # dL/d(dw * gamma), (B, C)
        g_offset = d_gap.sum(dim=1)[:, None]
        g_dw = g_scale * gamma + g_offset * beta
        torch.mul(g_scale, dw, out=g_gamma)
        torch.mul(g_offset, dw, out=g_beta)
        torch.neg(g_dw, out=g_weight[:, 0])
        g_weight[:, 1] = g_dw
        torch.neg(g_offset, out=g_bias[:, :1])
        g_bias[:, 1:] = g_offset
        _adam_step(flat, grad, exp_avg, exp_avg_sq, step, lr)
        losses.append(loss)
        history.append(flat.clone())
    every = torch.stack(history, dim=1)  # (B, E, 4C + 2)
    params = DecisionParams(
        every[..., views[0]],
        every[..., views[1]],
        every[..., views[2]].reshape(b, epochs, 2, c),
        every[..., views[3]],
    )
    return params, bn, torch.stack(losses, dim=1)


def _adam_step(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step: int,
    lr: float,
) -> None:
    """One step of Adam (default betas and eps, no weight decay), in place.

    The same elementwise operations, in the same order, as
    ``torch.optim.Adam``'s single-tensor implementation, which the
    reference path uses; written out so that no optimizer object (and no
    lazy import of its machinery) is needed.
    """
    beta1, beta2 = ADAM_BETAS
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    denom = (exp_avg_sq.sqrt() / bias_correction2**0.5).add_(ADAM_EPS)
    param.addcdiv_(exp_avg, denom, value=-lr / bias_correction1)


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


def _block_models(h: int, w: int, n_heads: int) -> int:
    """Models whose gap maps are handled together: about 1 MiB of pooled-resolution maps."""
    return max(1, COUNT_BLOCK_BYTES // (h * w * 4 * n_heads))


def _count_doubled(maps: torch.Tensor, probes: torch.Tensor) -> torch.Tensor:
    """Count positives of maps upsampled exactly 2x, without interpolation indices.

    With ``align_corners=False`` an exact 2x bilinear upsampling puts output
    pixel ``(2i + di, 2j + dj)`` at weights 3/4 and 1/4 between low-resolution
    rows ``i`` and ``i -+ 1`` (``-`` for ``di = 0``), and likewise for
    columns, with the edge rows and columns repeated.  Scaled by 16 (which
    keeps the sign) each of the four pixel classes is two fused ``x + 3 y``
    passes; at the edges, where both taps are the same pixel, ``4 x``.

    Parameters
    ----------
    maps : Tensor of shape (h, w, M)
        Gap maps, channels-last.
    probes : Tensor of shape (4, 2, h * w)
        ``[mask, 1]`` of each pixel class ``(di, dj)``, in row-major order.

    Returns
    -------
    found : Tensor of shape (2, M)
        (TP, positives) of each map.
    """
    h, w, m = maps.shape
    rows = torch.empty(2, h, w, m, dtype=maps.dtype, device=maps.device)
    classes = torch.empty(4, h, w, m, dtype=maps.dtype, device=maps.device)

    def lerp(src: torch.Tensor, dim: int, even: torch.Tensor, odd: torch.Tensor) -> None:
        n = src.shape[dim]
        first, last = src.narrow(dim, 0, n - 1), src.narrow(dim, 1, n - 1)
        torch.add(first, last, alpha=3, out=even.narrow(dim, 1, n - 1))  # 3 x[i] + x[i - 1]
        torch.mul(src.narrow(dim, 0, 1), 4, out=even.narrow(dim, 0, 1))
        torch.add(last, first, alpha=3, out=odd.narrow(dim, 0, n - 1))  # 3 x[i] + x[i + 1]
        torch.mul(src.narrow(dim, n - 1, 1), 4, out=odd.narrow(dim, n - 1, 1))

    lerp(maps, 0, rows[0], rows[1])
    lerp(rows[0], 1, classes[0], classes[1])
    lerp(rows[1], 1, classes[2], classes[3])
    return torch.bmm(probes, classes.view(4, h * w, m).gt_(0).to(probes.dtype)).sum(dim=0)


def _count_resized(maps: torch.Tensor, probe: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Count positives of maps upsampled bilinearly to any size.

    Parameters
    ----------
    maps : Tensor of shape (h, w, M)
        Gap maps, channels-last.
    probe : Tensor of shape (2, H * W)
        ``[mask, 1]``.
    size : tuple of int
        ``(H, W)``.

    Returns
    -------
    found : Tensor of shape (2, M)
        (TP, positives) of each map.
    """
    big = F.interpolate(maps[None].permute(0, 3, 1, 2), size=size, mode="bilinear", align_corners=False)
    return probe @ big.permute(0, 2, 3, 1).reshape(size[0] * size[1], -1).gt_(0).to(probe.dtype)


def count_outcomes(
    pooled: torch.Tensor, a: torch.Tensor, c: torch.Tensor, masks: torch.Tensor
) -> torch.Tensor:
    """Confusion counts of every model and epoch on a chunk of images.

    Image by image and for a cache-sized block of models at a time, the
    logit gaps of every epoch are computed at pooled resolution as a
    channels-last stack of maps, upsampled, thresholded in place and counted
    with one small matrix product against ``[mask, 1]`` (which gives TP and
    the number of positive pixels of every map at once).  When the image is
    exactly twice the pooled size (even height and width) the upsampling is
    done class by class without interpolation indices
    (:func:`_count_doubled`); otherwise by ``F.interpolate``.

    Parameters
    ----------
    pooled : Tensor of shape (N, B, C, h, w)
        FLIM features of ``N`` images under ``B`` models (any memory
        layout; :func:`flimexplore.engine.flim.encode`'s channels-last one is read
        without a copy).
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
    size = tuple(masks.shape[1:])
    hw = size[0] * size[1]
    doubled = size == (2 * h, 2 * w)
    # Counting through a matrix product is much faster than summing booleans;
    # float32 is exact for counts below 2**24, float64 beyond.
    dtype = torch.float32 if hw < 2**24 else torch.float64
    feats = pooled.permute(0, 3, 4, 1, 2).reshape(n, h * w, b, ch).transpose(1, 2)  # (N, B, hw, C)
    heads = a.transpose(1, 2)  # (B, C, E)
    truth = masks.to(dtype)
    found = torch.empty(n, 2, b, e, dtype=dtype, device=pooled.device)  # (TP, positives)
    step = _block_models(h, w, e)
    gaps = torch.empty(h * w, step * e, dtype=pooled.dtype, device=pooled.device)
    for i in range(n):
        if doubled:
            classes = torch.stack([truth[i, di::2, dj::2].reshape(h * w) for di in (0, 1) for dj in (0, 1)])
            probes = torch.stack([classes, torch.ones_like(classes)], dim=1)
        else:
            probe = torch.stack([truth[i].reshape(hw), torch.ones_like(truth[i].reshape(hw))])
        for lo in range(0, b, step):
            hi = min(b, lo + step)
            block = gaps[:, : (hi - lo) * e]  # channels-last maps of models lo..hi-1
            out = block.view(h * w, hi - lo, e).transpose(0, 1)
            torch.baddbmm(c[lo:hi, None], feats[i, lo:hi], heads[lo:hi], out=out)
            maps = block.view(h, w, -1)
            counted = _count_doubled(maps, probes) if doubled else _count_resized(maps, probe, size)
            found[i, :, lo:hi] = counted.view(2, hi - lo, e)
    tp, npos = found.round().long().permute(1, 2, 3, 0)
    ng = masks.reshape(n, hw).sum(-1)
    fp = npos - tp
    fn = ng - tp
    tn = hw - tp - fp - fn
    return torch.stack([tp, fp, fn, tn], dim=-1)
