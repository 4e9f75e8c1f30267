"""Training-free adaptive decoders of FLIM features (the LIDS decoders, FIELD_NOTES section 2).

Each decoder turns one model's features of one image into an object
saliency map in ``[0, 1]`` with no training, following ``pyflim``'s
``FLIMAdaptiveDecoderLayer``; :func:`~flimexplore.engine.otsu.binarise`
then cuts it the LIDS way (uint8 levels, Otsu, strictly above).

``vanilla`` (FLIMat), at image resolution
    Features upsampled bilinearly to the image size, each channel min-max
    normalised (a constant channel becomes 0 and is left out).  ``tau`` is
    the Otsu threshold of the channel means, ``var`` their population
    variance; ``low = tau - var`` if ``tau > 0.1`` else ``tau``, ``high =
    tau + var``.  Channel ``i`` with mean ``mu_i`` and ``a_i`` the share of
    its pixels above its own Otsu threshold gets ``w_i = -1`` if ``mu_i >=
    high`` and ``a_i > 0.2``, else ``+1`` if ``mu_i <= low`` and ``a_i <
    0.1``, else 0.  Saliency ``ReLU(sum_i w_i f_i)``, min-max normalised.
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

Min-max normalisation of a map is ``pyflim``'s: ``(x - min) / (max - min)``,
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
# bytes per model and image pixel a chunk of full-resolution decoding needs, per kernel and fixed
_BYTES_PER_KERNEL, _BYTES_FIXED = 20, 48


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
    """Bilinear interpolation of ``(..., C, h, w)`` to ``size``."""
    lead = x.shape[:-3]
    out = F.interpolate(x.reshape(-1, *x.shape[-3:]), size=size, mode="bilinear", align_corners=align_corners)
    return out.reshape(*lead, *out.shape[-3:])


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
    up.sub_(lo).div_(torch.where(span > 0, span, torch.ones_like(span)))
    return up.mul_(varying[..., None, None]), varying


def _channel_thresholds(channels: torch.Tensor) -> torch.Tensor:
    """``threshold_otsu`` of each channel in [0, 1] (0 for an all-zero channel).

    On [0, 1] the 256 bins are ``floor(256 x)`` exactly (the last one closed)
    and their centres ``(2k + 1) / 512``, as ``np.histogram`` gives them.
    """
    rows = channels.reshape(-1, channels.shape[-2] * channels.shape[-1])
    r = rows.shape[0]
    idx = (rows * LEVELS).long().clamp_(max=LEVELS - 1)
    idx += LEVELS * torch.arange(r, device=rows.device)[:, None]
    hist = torch.bincount(idx.reshape(-1), minlength=r * LEVELS).reshape(r, LEVELS)
    del idx
    centres = (torch.arange(LEVELS, device=rows.device, dtype=torch.float64) + 0.5) / LEVELS
    t = centres[otsu_from_histogram(hist, centres)].to(rows.dtype)
    t = torch.where(rows.amax(dim=1) > 0, t, torch.zeros_like(t))
    return t.reshape(channels.shape[:-2])


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
    above = (channels > _channel_thresholds(channels)[..., None, None]).mean(dim=(-2, -1), dtype=channels.dtype)
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
    return minmax(torch.einsum("nbk,nbkhw->nbhw", w, channels).relu_())


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
    return minmax(torch.einsum("bk,nbkhw->nbhw", w, channels).relu_())


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


def _class_stats(
    g: torch.Tensor, member: torch.Tensor, disk: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Local mean and variance over the member channels and the adjacency (zero padding counted)."""
    n, b, _, h, w = g.shape
    m = member.to(g.dtype)
    sums = torch.stack([torch.einsum("nbkhw,bk->nbhw", g, m), torch.einsum("nbkhw,bk->nbhw", g * g, m)], dim=2)
    r = disk.shape[0] // 2
    box = F.conv2d(sums.reshape(n * b * 2, 1, h, w), disk[None, None].to(g), padding=r).reshape(n, b, 2, h, w)
    size = (m.sum(dim=1) * disk.sum()).clamp(min=1)[None, :, None, None]
    mean = box[:, :, 0] / size
    var = box[:, :, 1] / size - mean * mean
    return mean, torch.where(var < VAR_FLOOR, torch.ones_like(var), var)


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
    peak = features.amax(dim=(-2, -1), keepdim=True)
    g = features / torch.where(peak != 0, peak, torch.ones_like(peak))
    obj, bg = labels == 1, labels == 0
    disk = adjacency(radius).to(g.device)
    m_obj, v_obj = _class_stats(g, obj, disk)
    m_bg, v_bg = _class_stats(g, bg, disk)
    if rule == "mean":
        obj_wins = (m_obj > m_bg)[:, :, None]
        bg_wins = (m_obj < m_bg)[:, :, None]
    elif rule == "probability":
        d_obj = (g - m_obj[:, :, None]) ** 2 / v_obj[:, :, None]
        d_bg = (g - m_bg[:, :, None]) ** 2 / v_bg[:, :, None]
        obj_wins, bg_wins = d_obj < d_bg, d_bg < d_obj
    else:
        raise ValueError(f"unknown rule {rule!r}; use 'probability' or 'mean'")
    both = (obj.any(dim=1) & bg.any(dim=1))[None, :, None, None, None]
    w = (obj_wins & obj[None, :, :, None, None]).to(g.dtype) - (bg_wins & bg[None, :, :, None, None]).to(g.dtype)
    return w * both, g


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

    Returns
    -------
    saliency : Tensor of shape (N, B, H, W), in [0, 1]
    """
    w, g = local_weights(features, labels, rule, radius)
    small = minmax((w * g).sum(dim=2).relu_())
    return _upsample(small[:, :, None], size, align_corners)[:, :, 0]


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
    encoded chunk by chunk (:func:`~flimexplore.engine.streaming.stream_features`),
    each decoder's saliency maps are binarised (:func:`~flimexplore.engine.otsu.binarise`)
    and counted, and nothing of a chunk is kept.

    Parameters
    ----------
    bank : FlimBank of ``B`` models
    groups : sequence of ImageGroup
    decoders : sequence of str, optional
        ``D`` decoder names (default all four, in ``DECODERS`` order).
    memory_mb : float, optional
        Rough bound of the working memory.
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
    for chunk in stream_features(bank, groups, decoding_bytes(bank.n_channels), memory_mb, progress):
        size = tuple(chunk.masks.shape[1:])
        for j, d in enumerate(decoders):
            maps = saliency(chunk.features, labels[chunk.models], size, d, radius, align_corners)
            out[chunk.models, j, list(chunk.index)] = count_binarised(maps, chunk.masks).cpu()
    return out
