"""The FLIM block: marker-based normalisation, patches, clustering, kernels, encoding.

One FLIM model of the study learns its 16 kernels from the 3x3 patches under
two disk markers of the marked image (one object, one background):

1. *Marker-based normalisation* (field default): per input channel, the mean
   and population standard deviation of the pixels under both markers;
   ``std + 0.01`` is used, as in libift's ``stdev_factor``.
2. *Patches*: the 3x3x3 window around every marked pixel of the normalised
   image, zero outside the image (zero after normalisation, as libift).
3. *Clustering*: 8 kernels per marker by k-means (Euclidean, Lloyd) on that
   marker's patches; the kernels are the centroids (as FLIM 2022 and pyflim).
   k-means starts from a deterministic farthest-point initialisation (the
   patch nearest the marker's mean patch, then repeatedly the patch farthest
   from all chosen ones), so it needs no random seed and gives bit-identical
   kernels whether one model or many are clustered at once.
4. *Kernels* are scaled to unit L2 norm (no mean subtraction, no bias).
5. *Encoding*: convolution (stride 1, zero padding), ReLU, 3x3 average
   pooling with stride 2 (padding 1, zero padding counted, as libift).

Everything here works on a batch of ``B`` models at once; a single model is
simply ``B = 1``.  Tensors are ``torch.float32``; images are ``(N, 3, H, W)``
normalised-Lab tensors (:func:`flimexplore.engine.colour.lab_norm`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from flimexplore.engine.precision import current_precision

__all__ = [
    "KERNEL_SIZE",
    "N_KERNELS",
    "STDEV_FACTOR",
    "FlimBank",
    "encode",
    "encode_reference",
    "estimate_kernels",
    "kmeans",
    "learn_banks",
    "marker_statistics",
    "pool",
    "sample_patches",
]

KERNEL_SIZE = 3
N_KERNELS = 16
STDEV_FACTOR = 0.01
KMEANS_ITERATIONS = 50
TILE_BYTES = 2 * 2**20


@dataclass(frozen=True, eq=False)
class FlimBank:
    """Learned FLIM blocks of ``B`` models.

    Attributes
    ----------
    kernels : Tensor of shape (B, 16, C, 3, 3), float32
        Unit-norm kernels, acting on the marker-normalised image.
    mean, std : Tensor of shape (B, C), float32
        Marker-based normalisation of each model (``std`` includes the 0.01).
    kernel_labels : Tensor of shape (B, 16), int64
        Marker each kernel came from: 1 object, 0 background.
    """

    kernels: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    kernel_labels: torch.Tensor

    def __len__(self) -> int:
        return self.kernels.shape[0]

    def to(self, device: torch.device | str) -> FlimBank:
        """Return the same bank on another device."""
        return FlimBank(*(t.to(device) for t in (self.kernels, self.mean, self.std, self.kernel_labels)))

    def select(self, index: slice | torch.Tensor | list[int]) -> FlimBank:
        """Return the bank of a subset of models."""
        return FlimBank(*(t[index] for t in (self.kernels, self.mean, self.std, self.kernel_labels)))


def _gather(image: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Values of ``image (C, H, W)`` at ``pixels (..., 2)`` -> ``(..., C)``."""
    return image[:, pixels[..., 0], pixels[..., 1]].movedim(0, -1)


def marker_statistics(
    image: torch.Tensor, obj_pixels: torch.Tensor, bg_pixels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Marker-based normalisation statistics of each model.

    Parameters
    ----------
    image : Tensor of shape (C, H, W)
        The marked image.
    obj_pixels : Tensor of shape (B, Ko, 2), int64
        ``(row, col)`` of each model's object-marker pixels.
    bg_pixels : Tensor of shape (B, Kb, 2), int64
        ``(row, col)`` of each model's background-marker pixels.

    Returns
    -------
    mean, std : Tensor of shape (B, C)
        Mean and population standard deviation (plus 0.01) over all the
        model's marked pixels.
    """
    values = torch.cat([_gather(image, obj_pixels), _gather(image, bg_pixels)], dim=1)
    mean = values.mean(dim=1)
    std = values.var(dim=1, unbiased=False).sqrt() + STDEV_FACTOR
    return mean, std


def sample_patches(
    image: torch.Tensor, pixels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
) -> torch.Tensor:
    """3x3 patches of the marker-normalised image around marked pixels.

    Parameters
    ----------
    image : Tensor of shape (C, H, W)
        The marked image (not normalised).
    pixels : Tensor of shape (B, K, 2), int64
        Marked pixels of each model.
    mean, std : Tensor of shape (B, C)
        Each model's normalisation.

    Returns
    -------
    patches : Tensor of shape (B, K, C * 9)
        Flattened in ``(C, 3, 3)`` order, the layout of a convolution weight;
        neighbours outside the image are 0 after normalisation.
    """
    c, h, w = image.shape
    half = KERNEL_SIZE // 2
    padded = F.pad(image, (half, half, half, half))
    inside = F.pad(torch.ones(1, h, w, dtype=image.dtype, device=image.device), (half,) * 4)
    dr, dc = torch.meshgrid(
        torch.arange(KERNEL_SIZE, device=image.device),
        torch.arange(KERNEL_SIZE, device=image.device),
        indexing="ij",
    )
    rows = pixels[..., 0, None, None] + dr  # (B, K, 3, 3)
    cols = pixels[..., 1, None, None] + dc
    raw = padded[:, rows, cols].movedim(0, 2)  # (B, K, C, 3, 3)
    valid = inside[:, rows, cols].movedim(0, 2)
    norm = (raw - mean[:, None, :, None, None]) / std[:, None, :, None, None]
    return (norm * valid).reshape(*pixels.shape[:2], c * KERNEL_SIZE**2)


def kmeans(points: torch.Tensor, k: int, n_iter: int = KMEANS_ITERATIONS) -> torch.Tensor:
    """Batched Lloyd k-means with deterministic farthest-point initialisation.

    Parameters
    ----------
    points : Tensor of shape (B, N, D)
        ``B`` independent point sets.
    k : int
        Number of clusters.  When ``N < k`` the points are repeated.
    n_iter : int, optional
        Maximum Lloyd iterations (stops earlier once no assignment changes).

    Returns
    -------
    centroids : Tensor of shape (B, k, D)
        Centroids; a cluster that empties keeps its previous centroid.

    Notes
    -----
    Distances are computed element-wise (no matrix-product shortcut), so the
    result of one set does not depend on the other sets of the batch.
    """
    b, n, d = points.shape
    if n < k:
        points = points[:, torch.arange(k, device=points.device) % n]
        n = k
    batch = torch.arange(b, device=points.device)

    def sqdist(c: torch.Tensor) -> torch.Tensor:
        return ((points[:, :, None, :] - c[:, None, :, :]) ** 2).sum(-1)  # (B, N, kc)

    first = sqdist(points.mean(dim=1, keepdim=True))[..., 0].argmin(dim=1)
    chosen = [points[batch, first]]
    nearest = sqdist(chosen[0][:, None])[..., 0]
    for _ in range(1, k):
        nxt = points[batch, nearest.argmax(dim=1)]
        chosen.append(nxt)
        nearest = torch.minimum(nearest, sqdist(nxt[:, None])[..., 0])
    centroids = torch.stack(chosen, dim=1)

    assign = sqdist(centroids).argmin(dim=2)
    for _ in range(n_iter):
        onehot = F.one_hot(assign, k).to(points.dtype)  # (B, N, k)
        counts = onehot.sum(dim=1)  # (B, k)
        sums = torch.einsum("bnk,bnd->bkd", onehot, points)
        centroids = torch.where(counts[..., None] > 0, sums / counts.clamp(min=1)[..., None], centroids)
        new = sqdist(centroids).argmin(dim=2)
        if torch.equal(new, assign):
            break
        assign = new
    return centroids


def estimate_kernels(
    obj_patches: torch.Tensor, bg_patches: torch.Tensor, n_kernels: int = N_KERNELS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster each marker's patches into kernels and scale them to unit norm.

    Parameters
    ----------
    obj_patches : Tensor of shape (B, Ko, D)
    bg_patches : Tensor of shape (B, Kb, D)
    n_kernels : int, optional
        Total kernels per model, split evenly between the two markers.

    Returns
    -------
    kernels : Tensor of shape (B, n_kernels, D)
        Object-marker kernels first.
    labels : Tensor of shape (B, n_kernels), int64
        1 for object-marker kernels, 0 for background-marker kernels.
    """
    per_marker = n_kernels // 2
    kernels = torch.cat([kmeans(obj_patches, per_marker), kmeans(bg_patches, n_kernels - per_marker)], 1)
    kernels = kernels / kernels.norm(dim=2, keepdim=True).clamp(min=1e-6)
    labels = torch.zeros(kernels.shape[:2], dtype=torch.int64, device=kernels.device)
    labels[:, :per_marker] = 1
    return kernels, labels


def learn_banks(image: torch.Tensor, obj_pixels: torch.Tensor, bg_pixels: torch.Tensor) -> FlimBank:
    """Learn the FLIM blocks of ``B`` (object, background) marker pairs.

    Parameters
    ----------
    image : Tensor of shape (C, H, W), float32
        The marked image in normalised Lab.
    obj_pixels : Tensor of shape (B, Ko, 2), int64
    bg_pixels : Tensor of shape (B, Kb, 2), int64
        Pixels of each model's object and background markers.

    Returns
    -------
    FlimBank
    """
    mean, std = marker_statistics(image, obj_pixels, bg_pixels)
    obj = sample_patches(image, obj_pixels, mean, std)
    bg = sample_patches(image, bg_pixels, mean, std)
    kernels, labels = estimate_kernels(obj, bg)
    b, c = mean.shape
    return FlimBank(kernels.reshape(b, N_KERNELS, c, KERNEL_SIZE, KERNEL_SIZE), mean, std, labels)


def pool(features: torch.Tensor) -> torch.Tensor:
    """ReLU then 3x3 average pooling with stride 2 (zero padding counted)."""
    return F.avg_pool2d(F.relu(features), 3, stride=2, padding=1, count_include_pad=True)


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
    scaled = bank.kernels / bank.std[:, None, :, None, None]  # (B, 16, C, 3, 3)
    shift = (scaled * bank.mean[:, None, :, None, None]).sum(2)  # (B, 16, 3, 3)
    weight = scaled.permute(3, 4, 2, 0, 1).reshape(KERNEL_SIZE**2 * c, b * N_KERNELS).contiguous()
    return weight, shift.permute(2, 3, 0, 1).reshape(KERNEL_SIZE**2, b * N_KERNELS)


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
    features : Tensor of shape (N, B, 16, ceil(H/2), ceil(W/2))
        After ReLU and pooling.  Stored channels-last: ``features.permute(0,
        3, 4, 1, 2)`` is contiguous, with all models' channels of one pixel
        side by side.

    Notes
    -----
    On CUDA the images of the call are convolved together instead
    (:func:`_encode_cuda`); the band tiling above is the CPU strategy.
    """
    if images.device.type == "cuda":
        return _encode_cuda(images, bank)
    n, c, h, w = images.shape
    b = len(bank)
    n_out = b * N_KERNELS
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
    return out.reshape(n, hp, wp, b, N_KERNELS).permute(0, 3, 4, 1, 2)


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
    scaled = bank.kernels / bank.std[:, None, :, None, None]  # (B, 16, C, 3, 3)
    weight = scaled.reshape(b * N_KERNELS, c, KERNEL_SIZE, KERNEL_SIZE)
    shift = (scaled * bank.mean[:, None, :, None, None]).sum(2)[:, :, None].reshape(b * N_KERNELS, 1, KERNEL_SIZE, KERNEL_SIZE)
    ones = torch.ones(1, 1, h, w, dtype=images.dtype, device=images.device)
    correction = F.conv2d(ones, shift, padding=1)  # (1, B * 16, H, W)
    if current_precision() == "bf16":
        conv = F.conv2d(images.bfloat16(), weight.bfloat16(), padding=1).float()
    else:
        conv = F.conv2d(images, weight, padding=1)
    pooled = pool(conv.sub_(correction))  # (N, B * 16, hp, wp)
    hp, wp = pooled.shape[-2:]
    return pooled.permute(0, 2, 3, 1).contiguous().reshape(n, hp, wp, b, N_KERNELS).permute(0, 3, 4, 1, 2)


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
