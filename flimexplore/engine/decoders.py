"""Training-free adaptive decoders of FLIM features (the LIDS decoders, FIELD_NOTES section 2).

Each decoder turns one model's features of one image into an object
saliency map in ``[0, 1]`` with no training, following ``pyflim``'s
``FLIMAdaptiveDecoderLayer``; :func:`~flimexplore.engine.otsu.binarise`
then cuts it the LIDS way (uint8 levels, Otsu, strictly above).

``vanilla`` (FLIMat), at image resolution
    Features upsampled bilinearly to the image size, each channel min-max
    normalised (a channel constant at feature resolution becomes 0 and is
    left out).  ``tau`` is the Otsu threshold (``threshold_otsu``, 256 bins)
    of the channel means, ``var`` their population variance; ``low = tau - var`` if ``tau > 0.1`` else ``tau``, ``high =
    tau + var``.  Channel ``i`` with mean ``mu_i`` and ``a_i`` the share of
    its pixels above its own Otsu threshold gets ``w_i = -1`` if ``mu_i >=
    high`` and ``a_i > 0.2``, else ``+1`` if ``mu_i <= low`` and ``a_i <
    0.1``, else 0 (a channel's own threshold is ``threshold_otsu`` of its
    pixels: the centre ``(2k + 1) / 512`` of a bin ``k`` of ``floor(256 x)``).
    Saliency ``ReLU(sum_i w_i f_i)``, min-max normalised.
``probability`` (FLIMad2) and ``mean`` (FLIMad3), at feature resolution
    Channels divided by their maximum.  In the adjacency of each pixel
    (offsets with ``dy**2 + dx**2 <= radius**2``; the default 1.5 is libift's
    8-neighbourhood, the 3x3 square; ``radius=1`` gives the 4-neighbour
    cross that ``pyflim`` actually uses, as it truncates 1.5 to 1 before its
    disk test) the values of all object-kernel channels give a local mean and
    population variance (zero padding outside the map counted, divisor
    ``channels * adjacency size``, as ``pyflim``; a variance below 1e-7
    becomes 1), and likewise for background-kernel channels.  ``mean``:
    object channels get +1 where the object mean is larger, background
    channels -1 where the background mean is larger.  ``probability``: per
    channel value ``x``, object channels +1 where the object Gaussian kernel
    wins, ``(x - m_obj)**2 / var_obj < (x - m_bg)**2 / var_bg`` (``pyflim``'s
    ``P0 > P1`` with unnormalised ``exp(-(x - m)**2 / (2 var))``, compared on
    the exponents so that no tie comes from float underflow), background
    channels -1 where the background kernel wins.  Ties give 0.  Saliency
    ``ReLU(sum w f)``, min-max normalised, then upsampled bilinearly.  A model
    without kernels of one of the classes gets an all-zero map.
``labeled`` (FLIMts), at image resolution
    Channels upsampled and min-max normalised as for ``vanilla``; fixed
    weights +1 for object-marker kernels, -1 for background-marker kernels,
    0 for kernels of no marker (label -1).  Saliency ``ReLU(sum w f)``,
    min-max normalised.

Kernel classes come from :func:`decoder_labels` (kernels dropped by the
clustering count as no marker).  Min-max normalisation of a map is ``pyflim``'s: ``(x - min) / (max - min)``,
and a constant map becomes 0 (it is then binarised to an empty object).
Upsampling follows ``pyflim`` (``align_corners=True``) unless asked
otherwise; the trained decision layer uses ``align_corners=False``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from flimexplore.engine.batched import DEFAULT_MEMORY_MB, ImageGroup
from flimexplore.engine.flim import FlimBank
from flimexplore.engine.otsu import LEVELS, count_binarised, otsu_float, otsu_from_histogram
from flimexplore.engine.streaming import stream_features

__all__ = [
    "ADJACENCY_RADIUS",
    "DECODERS",
    "Decoder",
    "adjacency",
    "decoder_labels",
    "decoding_bytes",
    "labeled_saliency",
    "local_saliency",
    "local_weights",
    "minmax",
    "saliency",
    "score_decoders",
    "unit_channels",
    "vanilla_saliency",
    "vanilla_weights",
]

Decoder = Literal["vanilla", "probability", "mean", "labeled"]
DECODERS: tuple[Decoder, ...] = ("vanilla", "probability", "mean", "labeled")
ADJACENCY_RADIUS = 1.5
TAU_SHIFT = 0.1  # low = tau - var only when tau exceeds this
SPARSE_SHARE = 0.1  # A1: an object-like channel has fewer pixels above its threshold
DENSE_SHARE = 0.2  # A2: a background-like channel has more
VAR_FLOOR = 1e-7
# bytes per model and image pixel that full-resolution decoding of a block needs, per kernel and fixed
_BYTES_PER_KERNEL, _BYTES_FIXED = 12, 32


def minmax(maps: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each ``(H, W)`` map to [0, 1]; a constant map becomes 0.

    Parameters
    ----------
    maps : Tensor of shape (..., H, W), floating

    Returns
    -------
    Tensor of shape (..., H, W)
    """
    lo = maps.amin(dim=(-2, -1), keepdim=True)
    hi = maps.amax(dim=(-2, -1), keepdim=True)
    span = hi - lo
    out = (maps - lo) / torch.where(span > 0, span, torch.ones_like(span))
    return torch.where(span > 0, out, torch.zeros_like(out))


def _upsample(x: torch.Tensor, size: tuple[int, int], align_corners: bool) -> torch.Tensor:
    """Bilinear interpolation of ``(..., C, h, w)`` to ``size``, returned contiguous.

    On the CPU the fastest route from :func:`~flimexplore.engine.flim.encode`'s
    channels-last features is channels-last all the way through the
    interpolation, then one copy to the contiguous layout, in which minima
    and maxima over a map are many times faster.
    """
    lead = x.shape[:-3]
    flat = x.reshape(-1, *x.shape[-3:]).contiguous(memory_format=torch.channels_last)
    out = F.interpolate(flat, size=size, mode="bilinear", align_corners=align_corners).contiguous()
    return out.reshape(*lead, *out.shape[-3:])


def _combine(weights: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
    """``sum_k weights[..., k] * channels[..., k, :, :]``: weights (N or 1, B, K), channels (N, B, K, H, W).

    One matrix product per map, reading the channels in place (``einsum``
    would copy them into another layout first).
    """
    n, b, k, h, w = channels.shape
    out = torch.matmul(weights[..., None, :], channels.reshape(n, b, k, h * w))
    return out.reshape(n, b, h, w)


def _flat(x: torch.Tensor) -> torch.Tensor:
    """The elements of a dense tensor as a 1-D view, in memory order (for order-free reductions)."""
    order = sorted(range(x.dim()), key=lambda d: -x.stride(d))
    return x.permute(order).reshape(-1)


def unit_channels(
    features: torch.Tensor, size: tuple[int, int], align_corners: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Channels upsampled to image size and min-max normalised (``vanilla``, ``labeled``).

    Parameters
    ----------
    features : Tensor of shape (N, B, K, h, w)
    size : tuple of int
        ``(H, W)``.
    align_corners : bool, optional

    Returns
    -------
    channels : Tensor of shape (N, B, K, H, W)
        In [0, 1] with minimum 0 and maximum 1, or all 0 for a constant channel.
    varying : Tensor of shape (N, B, K), bool
        Channels that are not constant.  Decided on ``features``: a constant
        feature map stays constant when upsampled, up to float rounding that
        min-max normalisation would blow up to noise.
    """
    varying = features.amax(dim=(-2, -1)) > features.amin(dim=(-2, -1))
    up = _upsample(features, size, align_corners)
    lo = up.amin(dim=(-2, -1), keepdim=True)
    span = up.amax(dim=(-2, -1), keepdim=True) - lo
    keep = varying[..., None, None] & (span > 0)
    # (x - lo) / inf = 0: constant channels become 0 in the same pass
    up.sub_(lo).div_(torch.where(keep, span, torch.full_like(span, torch.inf)))
    return up, varying


def _channel_thresholds(channels: torch.Tensor, varying: torch.Tensor) -> torch.Tensor:
    """``threshold_otsu`` of each varying channel in [0, 1] (0 for the others).

    On [0, 1] (minimum 0, maximum 1) the 256 bins are ``floor(256 x)``
    exactly (the last one closed) and their centres ``(2k + 1) / 512``, as
    ``np.histogram`` gives them; one ``bincount`` counts every channel.
    """
    r = varying.numel()
    rows = torch.arange(r, device=channels.device, dtype=torch.int32).reshape(*varying.shape, 1, 1)
    key = (channels * LEVELS).to(torch.int32).clamp_(max=LEVELS - 1).add_(rows * LEVELS)
    hist = torch.bincount(_flat(key), minlength=r * LEVELS).reshape(r, LEVELS)
    del key
    centres = (torch.arange(LEVELS, device=channels.device, dtype=torch.float64) + 0.5) / LEVELS
    t = centres[otsu_from_histogram(hist, centres)].to(channels.dtype).reshape(varying.shape)
    return torch.where(varying, t, torch.zeros_like(t))


def vanilla_weights(channels: torch.Tensor, varying: torch.Tensor) -> torch.Tensor:
    """The vanilla decoder's weight of each channel (``pyflim``'s ``robust_adaptation_weights``).

    Parameters
    ----------
    channels : Tensor of shape (N, B, K, H, W)
        From :func:`unit_channels`.
    varying : Tensor of shape (N, B, K), bool

    Returns
    -------
    weights : Tensor of shape (N, B, K), dtype of ``channels``
        -1, 0 or +1 (0 for constant channels).
    """
    n, b, k = varying.shape
    mu = channels.mean(dim=(-2, -1))
    tau = otsu_float(mu.reshape(n * b, k), varying.reshape(n * b, k)).reshape(n, b)
    count = varying.sum(dim=-1).clamp(min=1)
    centre = (mu * varying).sum(dim=-1) / count
    var = (((mu - centre[..., None]) * varying) ** 2).sum(dim=-1) / count
    low = torch.where(tau > TAU_SHIFT, tau - var, tau)[..., None]
    high = (tau + var)[..., None]
    thresholds = _channel_thresholds(channels, varying)[..., None, None]
    above = torch.count_nonzero(channels > thresholds, dim=(-2, -1)).to(channels.dtype)
    above /= channels.shape[-2] * channels.shape[-1]
    neg = varying & (mu >= high) & (above > DENSE_SHARE)
    pos = varying & ~neg & (mu <= low) & (above < SPARSE_SHARE)
    return pos.to(channels.dtype) - neg.to(channels.dtype)


def vanilla_saliency(features: torch.Tensor, size: tuple[int, int], align_corners: bool = True) -> torch.Tensor:
    """Saliency maps of the vanilla adaptive decoder (FLIMat).

    Parameters
    ----------
    features : Tensor of shape (N, B, K, h, w)
    size : tuple of int
        Image size ``(H, W)``.
    align_corners : bool, optional

    Returns
    -------
    saliency : Tensor of shape (N, B, H, W), in [0, 1]
    """
    channels, varying = unit_channels(features, size, align_corners)
    w = vanilla_weights(channels, varying)
    return minmax(_combine(w, channels).relu_())


def decoder_labels(bank: FlimBank) -> torch.Tensor:
    """Marker class of each kernel the decoders read: 1 object, 0 background, -1 none.

    The kernels of the decision layer's FLIM layer; a kernel dropped by the
    clustering (an all-zero kernel) counts as none, as if it did not exist.

    Returns
    -------
    labels : Tensor of shape (B, K), int64
    """
    layer = bank.layers[bank.settings.read_layer - 1]
    alive = layer.kernels.flatten(2).abs().amax(dim=2) > 0
    return torch.where(alive, layer.kernel_labels, torch.full_like(layer.kernel_labels, -1))


def labeled_saliency(
    features: torch.Tensor, labels: torch.Tensor, size: tuple[int, int], align_corners: bool = True
) -> torch.Tensor:
    """Saliency maps of the labeled-marker decoder (FLIMts).

    Parameters
    ----------
    features : Tensor of shape (N, B, K, h, w)
    labels : Tensor of shape (B, K), int
        1 object, 0 background, -1 none (weights +1, -1, 0).
    size : tuple of int
    align_corners : bool, optional

    Returns
    -------
    saliency : Tensor of shape (N, B, H, W), in [0, 1]
    """
    channels, _ = unit_channels(features, size, align_corners)
    w = (labels == 1).to(channels.dtype) - (labels == 0).to(channels.dtype)
    return minmax(_combine(w[None], channels).relu_())


def adjacency(radius: float = ADJACENCY_RADIUS) -> torch.Tensor:
    """The offsets ``(dy, dx)`` with ``dy**2 + dx**2 <= radius**2``, as a square mask.

    Returns
    -------
    mask : Tensor of shape (2 r + 1, 2 r + 1), bool
        ``r = floor(radius)``; 1.5 gives the 3x3 square, 1 the cross of 5.
    """
    r = int(radius)
    d = torch.arange(-r, r + 1)
    return (d[:, None] ** 2 + d[None, :] ** 2) <= radius**2


def _box(maps: torch.Tensor, disk: torch.Tensor) -> torch.Tensor:
    """Sum of ``(..., h, w)`` maps over the adjacency of each pixel, zero outside."""
    r = disk.shape[0] // 2
    h, w = maps.shape[-2:]
    padded = F.pad(maps, (r, r, r, r))
    out = torch.zeros_like(maps)
    for dy, dx in disk.nonzero().tolist():
        out += padded[..., dy : dy + h, dx : dx + w]
    return out


def _local_stats(
    features: torch.Tensor, labels: torch.Tensor, radius: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scaled features and, per class (object, background), channel sums and local mean and variance.

    Returns
    -------
    g : Tensor of shape (N, B, K, h, w)
        Features divided by each channel's maximum (unchanged where it is 0).
    sums, mean, var : Tensor of shape (N, B, 2, h, w)
        Sum of ``g`` over the class's channels at each pixel; mean and
        population variance over the class's channels and the adjacency
        (zero padding counted; a variance below ``VAR_FLOOR`` becomes 1).
    both : Tensor of shape (B,), bool
        Models with kernels of both classes.
    """
    peak = features.amax(dim=(-2, -1), keepdim=True)
    g = features / torch.where(peak != 0, peak, torch.ones_like(peak))
    member = torch.stack([labels == 1, labels == 0], dim=-1).to(g.dtype)  # (B, K, 2)
    sums = torch.einsum("nbkhw,bkc->nbchw", g, member)
    disk = adjacency(radius).to(g.device)
    size = (member.sum(dim=1) * disk.sum()).clamp(min=1)[None, :, :, None, None]
    mean = _box(sums, disk) / size
    var = _box(torch.einsum("nbkhw,bkc->nbchw", g * g, member), disk) / size - mean * mean
    var = torch.where(var < VAR_FLOOR, torch.ones_like(var), var)
    return g, sums, mean, var, member.amax(dim=1).bool().all(dim=1)


def local_weights(
    features: torch.Tensor,
    labels: torch.Tensor,
    rule: Literal["probability", "mean"],
    radius: float = ADJACENCY_RADIUS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel channel weights of the ``probability`` (FLIMad2) and ``mean`` (FLIMad3) decoders.

    Parameters
    ----------
    features : Tensor of shape (N, B, K, h, w)
    labels : Tensor of shape (B, K), int
        1 object, 0 background, -1 none (never weighted, not pooled).
    rule : {"probability", "mean"}
    radius : float, optional
        Adjacency radius (:func:`adjacency`).

    Returns
    -------
    weights : Tensor of shape (N, B, K, h, w)
        -1, 0 or +1.
    scaled : Tensor of shape (N, B, K, h, w)
        The features divided by each channel's maximum (unchanged when it is 0).
    """
    g, _, mean, var, both = _local_stats(features, labels, radius)
    obj, bg = (labels == 1)[None, :, :, None, None], (labels == 0)[None, :, :, None, None]
    if rule == "mean":
        obj_wins = (mean[:, :, 0] > mean[:, :, 1])[:, :, None]
        bg_wins = (mean[:, :, 0] < mean[:, :, 1])[:, :, None]
    elif rule == "probability":
        d_obj = (g - mean[:, :, :1]) ** 2 / var[:, :, :1]
        d_bg = (g - mean[:, :, 1:]) ** 2 / var[:, :, 1:]
        obj_wins, bg_wins = d_obj < d_bg, d_bg < d_obj
    else:
        raise ValueError(f"unknown rule {rule!r}; use 'probability' or 'mean'")
    w = (obj_wins & obj).to(g.dtype) - (bg_wins & bg).to(g.dtype)
    return w * both[None, :, None, None, None], g


def local_saliency(
    features: torch.Tensor,
    labels: torch.Tensor,
    size: tuple[int, int],
    rule: Literal["probability", "mean"],
    radius: float = ADJACENCY_RADIUS,
    align_corners: bool = True,
) -> torch.Tensor:
    """Saliency maps of the ``probability`` (FLIMad2) or ``mean`` (FLIMad3) decoder.

    Weighted at feature resolution (:func:`local_weights`), ``ReLU``,
    min-max normalised there, then upsampled bilinearly to ``size``.

    Parameters
    ----------
    features : Tensor of shape (N, B, K, h, w)
    labels : Tensor of shape (B, K), int
        1 object, 0 background, -1 none.
    size : tuple of int
        Image size ``(H, W)``.
    rule : {"probability", "mean"}
    radius : float, optional
        Adjacency radius (:func:`adjacency`).
    align_corners : bool, optional

    Returns
    -------
    saliency : Tensor of shape (N, B, H, W), in [0, 1]
    """
    if rule == "mean":  # one weight per pixel and class: the class sums suffice
        _, sums, mean, _, both = _local_stats(features, labels, radius)
        obj_wins, bg_wins = mean[:, :, 0] > mean[:, :, 1], mean[:, :, 0] < mean[:, :, 1]
        zero = torch.zeros_like(sums[:, :, 0])
        small = torch.where(obj_wins, sums[:, :, 0], zero) - torch.where(bg_wins, sums[:, :, 1], zero)
        small = small * both[None, :, None, None]
    else:
        w, g = local_weights(features, labels, rule, radius)
        small = (w * g).sum(dim=2)
    return _upsample(minmax(small.relu_())[:, :, None], size, align_corners)[:, :, 0]


def saliency(
    features: torch.Tensor,
    labels: torch.Tensor,
    size: tuple[int, int],
    decoder: Decoder,
    radius: float = ADJACENCY_RADIUS,
    align_corners: bool = True,
) -> torch.Tensor:
    """Saliency maps of one decoder (see the module's description of each).

    Parameters
    ----------
    features : Tensor of shape (N, B, K, h, w)
        FLIM features of ``N`` images under ``B`` models.
    labels : Tensor of shape (B, K), int
        Marker class of each kernel (:func:`decoder_labels`); unused by ``vanilla``.
    size : tuple of int
        Image size ``(H, W)``.
    decoder : {"vanilla", "probability", "mean", "labeled"}
    radius : float, optional
        Adjacency radius of ``probability`` and ``mean``.
    align_corners : bool, optional
        Bilinear upsampling convention (``pyflim``: True).

    Returns
    -------
    saliency : Tensor of shape (N, B, H, W), in [0, 1]
    """
    if decoder == "vanilla":
        return vanilla_saliency(features, size, align_corners)
    if decoder == "labeled":
        return labeled_saliency(features, labels, size, align_corners)
    if decoder in ("probability", "mean"):
        return local_saliency(features, labels, size, decoder, radius, align_corners)
    raise ValueError(f"unknown decoder {decoder!r}; use one of {', '.join(DECODERS)}")


def decoding_bytes(n_kernels: int) -> int:
    """Working memory of decoding, per model and image pixel (for :func:`stream_features`)."""
    return _BYTES_PER_KERNEL * n_kernels + _BYTES_FIXED


def score_decoders(
    bank: FlimBank,
    groups: Sequence[ImageGroup],
    decoders: Sequence[Decoder] = DECODERS,
    memory_mb: float = DEFAULT_MEMORY_MB,
    progress: Callable[[int, int], None] | None = None,
    radius: float = ADJACENCY_RADIUS,
    align_corners: bool = True,
) -> torch.Tensor:
    """Confusion counts of every model's adaptive decoders on a set of images.

    Mirrors :func:`flimexplore.engine.batched.score_models`: images are
    encoded chunk by chunk and decoded one image and a few models at a time
    (:func:`~flimexplore.engine.streaming.stream_features`); each decoder's
    saliency maps are binarised (:func:`~flimexplore.engine.otsu.binarise`)
    and counted, and nothing else of a block is kept.

    Parameters
    ----------
    bank : FlimBank of ``B`` models
    groups : sequence of ImageGroup
    decoders : sequence of str, optional
        ``D`` decoder names (default all four, in ``DECODERS`` order).
    memory_mb : float, optional
        Rough bound of one encoded chunk (the decoding itself works on
        cache-sized blocks on the CPU).
    progress : callable, optional
        ``progress(done, total)`` in image passes, as ``score_models``.
    radius, align_corners : optional
        See :func:`saliency`.

    Returns
    -------
    counts : Tensor of shape (B, D, N, 4), int64 on the CPU
        ``(TP, FP, FN, TN)`` in the order of the groups' ``index``;
        :func:`flimexplore.engine.scores.metrics_from_counts` gives Dice.
    """
    for d in decoders:
        if d not in DECODERS:
            raise ValueError(f"unknown decoder {d!r}; use one of {', '.join(DECODERS)}")
    labels = decoder_labels(bank)
    n_total = sum(len(g.index) for g in groups)
    out = torch.zeros(len(bank), len(decoders), n_total, 4, dtype=torch.int64)
    for block in stream_features(bank, groups, decoding_bytes(bank.n_channels), memory_mb, progress):
        size = tuple(block.masks.shape[1:])
        for j, d in enumerate(decoders):
            maps = saliency(block.features, labels[block.models], size, d, radius, align_corners)
            out[block.models, j, list(block.index)] = count_binarised(maps, block.masks).cpu()
    return out
