"""Encoding images with ``B`` learned FLIM encoders: convolution, ReLU, pooling; the paper's block folded and banded.

See :mod:`flimexplore.engine.flim` for the method.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from flimexplore.engine.bank import DEFAULT_SETTINGS, KERNEL_SIZE, FlimBank, FlimLayer
from flimexplore.engine.precision import current_precision
from flimexplore.engine.settings import FlimSettings

__all__ = ["TILE_BYTES", "apply_layer", "encode", "encode_layers", "encode_reference", "pool"]

TILE_BYTES = 2 * 2**20


def pool(features: torch.Tensor, settings: FlimSettings | None = None, stride: int | None = None) -> torch.Tensor:
    """ReLU then pooling (default: 3x3 average with stride 2, zero padding counted).

    Average pooling counts the zero padding (libift divides by the full
    window), max pooling ignores what lies outside the image; both pad by
    ``size // 2`` so the output has ``ceil(H / stride)`` rows.
    """
    s = settings or DEFAULT_SETTINGS
    step = s.pool_stride if stride is None else stride
    x = F.relu(features)
    if s.pool == "max":
        return F.max_pool2d(x, s.pool_size, stride=step, padding=s.pool_size // 2)
    return F.avg_pool2d(x, s.pool_size, stride=step, padding=s.pool_size // 2, count_include_pad=True)


def apply_layer(x: torch.Tensor, layer: FlimLayer, settings: FlimSettings, stride: int | None = None) -> torch.Tensor:
    """One FLIM layer of ``B`` models: normalise, convolve (zero padding), ReLU, pool.

    Parameters
    ----------
    x : Tensor of shape (N, C, H, W) shared by the models, or (N, B, C, H, W)
    layer : FlimLayer of ``B`` models
    settings : FlimSettings
    stride : int, optional
        Pooling stride (default ``settings.pool_stride``; 1 while learning deeper layers).

    Returns
    -------
    features : Tensor of shape (N, B, K, ceil(H / stride), ceil(W / stride))
    """
    b, kk, c, k, _ = layer.kernels.shape
    if x.dim() == 4:
        x = x[:, None].expand(x.shape[0], b, *x.shape[1:])
    n, _, _, h, w = x.shape
    norm = (x - layer.mean[None, :, :, None, None]) / layer.std[None, :, :, None, None]
    y = F.conv2d(norm.reshape(n, b * c, h, w), layer.kernels.reshape(b * kk, c, k, k), padding=k // 2, groups=b)
    out = pool(y, settings, stride)
    return out.reshape(n, b, kk, *out.shape[-2:])


def _folded(bank: FlimBank) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernels of all models with the normalisation folded in, as GEMM operands.

    ``conv((x - m) / s, K) = conv(x, K / s) - conv(1_inside, K m / s)``.

    Returns
    -------
    weight : Tensor of shape (9 * C, B * 16)
        ``K / s``, rows in ``(kernel row, kernel column, channel)`` order.
    shift : Tensor of shape (9, B * 16)
        ``K m / s`` summed over channels, per kernel tap.
    """
    b, c = bank.mean.shape
    n_k = bank.kernels.shape[1]
    scaled = bank.kernels / bank.std[:, None, :, None, None]  # (B, 16, C, 3, 3)
    shift = (scaled * bank.mean[:, None, :, None, None]).sum(2)  # (B, 16, 3, 3)
    weight = scaled.permute(3, 4, 2, 0, 1).reshape(KERNEL_SIZE**2 * c, b * n_k).contiguous()
    return weight, shift.permute(2, 3, 0, 1).reshape(KERNEL_SIZE**2, b * n_k)


def _border_terms(
    shift: torch.Tensor, h: int, w: int
) -> tuple[list[tuple[int, torch.Tensor]], list[tuple[int, torch.Tensor]]]:
    """What the kernel taps that fall in the zero padding add back at the image border.

    Inside the image every tap sees ``1_inside = 1``, so the second term of
    the folding is the constant ``-sum(shift)``; a pixel on the border
    misses the taps outside the image and gets back their ``shift``.

    Returns
    -------
    rows : list of (int, Tensor of shape (W, B * 16))
        The first and last row: their whole-row corrections.
    cols : list of (int, Tensor of shape (B * 16,))
        The first and last column: their correction on the other rows.
    """
    outside = F.pad(torch.zeros(h, w, dtype=shift.dtype, device=shift.device), (1, 1, 1, 1), value=1.0)

    def taps(r: int) -> torch.Tensor:  # (W, 9): which taps of row r's pixels fall outside
        return (
            outside[r : r + KERNEL_SIZE].unfold(1, KERNEL_SIZE, 1).permute(1, 0, 2).reshape(w, KERNEL_SIZE**2)
        )

    rows = [(r, taps(r) @ shift) for r in sorted({0, h - 1})]
    cols = [(x, taps(1)[x] @ shift) for x in sorted({0, w - 1})] if h > 2 else []
    return rows, cols


def _tile_rows(height: int, width: int, n_out: int, device: torch.device) -> int:
    """Pooled rows per band: a CPU band's convolution output stays in cache; a GPU takes the whole image."""
    if device.type != "cpu":
        return height
    return max(1, TILE_BYTES // (2 * width * n_out * 4))


def encode(images: torch.Tensor, bank: FlimBank) -> torch.Tensor:
    """Features of many images under many FLIM blocks at once.

    The per-model normalisation is folded into the kernels,
    ``conv((x - m) / s, K) = conv(x, K / s) - conv(1_inside, K m / s)``, so
    all models share one dense convolution of the raw images.  The second
    term, the response of the kernels to an image of ones with zero
    padding, is a constant bias inside the image and is corrected on the
    one-pixel border (zero padding in normalised space, exactly).

    The convolution is one matrix product per band of rows (3x3 patches of
    the image times the kernels of all models), followed at once by ReLU and
    pooling while the band is still in cache; consecutive bands share the
    one convolution row that both pooling windows need.

    Parameters
    ----------
    images : Tensor of shape (N, C, H, W)
    bank : FlimBank of ``B`` models

    Returns
    -------
    features : Tensor of shape (N, B, K, h, w)
        After ReLU and pooling; for the paper's block ``K = 16`` and ``(h,
        w) = (ceil(H/2), ceil(W/2))``; for other settings the output of the
        decision layer's FLIM layer (:func:`encode_layers`).  The paper's
        block is stored channels-last: ``features.permute(0, 3, 4, 1, 2)`` is
        contiguous, with all models' channels of one pixel side by side.

    Notes
    -----
    On CUDA the images of the call are convolved together instead
    (:func:`_encode_cuda`); the band tiling above is the CPU strategy.
    """
    if not bank.settings.is_paper_block:
        return encode_layers(images, bank)
    if images.device.type == "cuda":
        return _encode_cuda(images, bank)
    n, c, h, w = images.shape
    b = len(bank)
    n_k = bank.kernels.shape[1]
    n_out = b * n_k
    hp, wp = (h + 1) // 2, (w + 1) // 2
    weight, shift = _folded(bank)
    bias = -shift.sum(0)
    border_rows, border_cols = _border_terms(shift, h, w)
    k = weight.shape[0]
    padded = F.pad(images, (1, 1, 1, 1)).permute(0, 2, 3, 1).contiguous()  # (N, H + 2, W + 2, C)
    out = torch.empty(n, hp, wp, n_out, dtype=images.dtype, device=images.device)
    rows = min(hp, _tile_rows(hp, w, n_out, images.device))
    band = torch.empty(2 * rows + 1, w, n_out, dtype=images.dtype, device=images.device)
    for i in range(n):
        s = padded[i].stride()
        # im2col: patch row r holds the 3x3xC windows of conv row r.
        patches = padded[i].as_strided((h, w, KERNEL_SIZE, KERNEL_SIZE, c), (s[0], s[1], s[0], s[1], s[2]))
        patches = patches.reshape(h, w * k)
        for lo in range(0, hp, rows):
            hi = min(hp, lo + rows)
            length = 2 * (hi - lo) + 1  # conv rows 2 lo - 1 .. 2 hi - 1
            if lo == 0:
                band[0] = 0  # conv row -1 is pooling padding
            else:
                band[0] = band[2 * rows]  # conv row 2 lo - 1, the previous band's last
            r0, r1 = 2 * lo, min(2 * hi, h)
            fresh = band[1 : 1 + r1 - r0]
            torch.addmm(bias, patches[r0:r1].view(-1, k), weight, out=fresh.view(-1, n_out))
            inner = slice(max(r0, 1) - r0, min(r1, h - 1) - r0)
            for x, term in border_cols:
                fresh[inner, x] += term
            for r, term in border_rows:
                if r0 <= r < r1:
                    fresh[r - r0] += term
            fresh.relu_()
            band[1 + r1 - r0 : length] = 0  # conv row H of an odd-height image
            tile = band[None, :length].permute(0, 3, 1, 2)
            pooled = F.avg_pool2d(tile, 3, stride=2, padding=(0, 1), count_include_pad=True)
            out[i, lo:hi] = pooled[0].permute(1, 2, 0)
    return out.reshape(n, hp, wp, b, n_k).permute(0, 3, 4, 1, 2)


def encode_layers(images: torch.Tensor, bank: FlimBank) -> torch.Tensor:
    """Features of many images under many FLIM encoders, layer by layer (any settings).

    Each layer is one grouped convolution of all models (:func:`apply_layer`);
    :func:`encode` uses it for every setting but the paper's block, which it
    computes faster with the normalisation folded into the kernels.

    Parameters
    ----------
    images : Tensor of shape (N, C, H, W)
    bank : FlimBank of ``B`` models

    Returns
    -------
    features : Tensor of shape (N, B, K, h, w)
        The decision layer's input (``bank.settings.read_layer``), ``h =
        ceil(H / stride)`` applied once per layer.
    """
    x = images
    for layer in bank.layers[: bank.settings.read_layer]:
        x = apply_layer(x, layer, bank.settings)
    return x


def _encode_cuda(images: torch.Tensor, bank: FlimBank) -> torch.Tensor:
    """:func:`encode` for a GPU: all images and models in one convolution, no loop in Python.

    The same folding as :func:`encode`: one dense convolution of the raw
    images with ``K / s``, minus the response of ``K m / s`` to an image of
    ones with zero padding (computed once per call, exact at the border),
    then ReLU and pooling over the whole batch.  Under
    ``precision_scope("bf16", ...)`` the convolution runs in bfloat16 and the
    rest in float32.  Works on any device (tests run it on the CPU).

    Returns
    -------
    features : Tensor of shape (N, B, 16, ceil(H/2), ceil(W/2))
        Laid out as :func:`encode`'s.
    """
    n, c, h, w = images.shape
    b = len(bank)
    n_k = bank.kernels.shape[1]
    scaled = bank.kernels / bank.std[:, None, :, None, None]  # (B, 16, C, 3, 3)
    weight = scaled.reshape(b * n_k, c, KERNEL_SIZE, KERNEL_SIZE)
    shift = (scaled * bank.mean[:, None, :, None, None]).sum(2)[:, :, None].reshape(b * n_k, 1, KERNEL_SIZE, KERNEL_SIZE)
    ones = torch.ones(1, 1, h, w, dtype=images.dtype, device=images.device)
    correction = F.conv2d(ones, shift, padding=1)  # (1, B * 16, H, W)
    if current_precision() == "bf16":
        conv = F.conv2d(images.bfloat16(), weight.bfloat16(), padding=1).float()
    else:
        conv = F.conv2d(images, weight, padding=1)
    pooled = pool(conv.sub_(correction))  # (N, B * 16, hp, wp)
    hp, wp = pooled.shape[-2:]
    return pooled.permute(0, 2, 3, 1).contiguous().reshape(n, hp, wp, b, n_k).permute(0, 3, 4, 1, 2)


def encode_reference(
    image: torch.Tensor, kernels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
) -> torch.Tensor:
    """Features of one image under one FLIM block, computed literally.

    Normalise, convolve with zero padding, ReLU, pool; the plain reference
    that :func:`encode` must reproduce.

    Parameters
    ----------
    image : Tensor of shape (C, H, W)
    kernels : Tensor of shape (16, C, 3, 3)
    mean, std : Tensor of shape (C,)

    Returns
    -------
    features : Tensor of shape (16, ceil(H/2), ceil(W/2))
    """
    norm = (image - mean[:, None, None]) / std[:, None, None]
    return pool(F.conv2d(norm[None], kernels, padding=1))[0]
