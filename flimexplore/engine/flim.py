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

The paper's block above is the default; :class:`~flimexplore.engine.settings.FlimSettings`
changes kernel size, kernels per marker, channels (with libift's consensus
step), pooling, clustering and the number of layers.  Layers 2 and 3 are
learned from the same markers the libift way: the marked image goes through
the previous layers with their pooling stride forced to 1, so the marker
pixels keep their coordinates, and that layer input gives the new layer's
marker statistics and patches; inference then uses the real strides
(``apply_intrinsic_atrous`` false, the common libift setting).

Everything here works on a batch of ``B`` models at once; a single model is
simply ``B = 1``.  Tensors are ``torch.float32``; images are ``(N, 3, H, W)``
normalised-Lab tensors (:func:`flimexplore.engine.colour.lab_norm`).

*Several marked images* (FLIM's usual training set): :func:`learn_banks`
takes a list of marked images with each image's marker pixels.  As in
libift, the marker-based normalisation is computed over every marked pixel
of every image, and each class's patches are taken from every image (then
clustered together, the object patches of all images into the object
kernels); images may differ in size.  One image given as a list of one
gives the single-image result bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from flimexplore.engine.clustering import consensus, drop_small_clusters, kmeans, kmeans_farthest, kmeans_pp
from flimexplore.engine.precision import current_precision
from flimexplore.engine.settings import FlimSettings

__all__ = [
    "KERNEL_SIZE",
    "N_KERNELS",
    "STDEV_FACTOR",
    "FlimBank",
    "FlimLayer",
    "apply_layer",
    "encode",
    "encode_layers",
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
TILE_BYTES = 2 * 2**20


DEFAULT_SETTINGS = FlimSettings()

Images = torch.Tensor | Sequence[torch.Tensor]
"""One marked image ``(C, H, W)`` (or per-model inputs ``(B, C, H, W)``), or a list of them, one per marked image."""
Pixels = torch.Tensor | Sequence[torch.Tensor]
"""Marker pixels ``(B, K, 2)`` of one image, or a list of them aligned with a list of images (``K`` may be 0)."""


@dataclass(frozen=True, eq=False)
class FlimLayer:
    """One learned FLIM layer of ``B`` models.

    Attributes
    ----------
    kernels : Tensor of shape (B, K, C, k, k), float32
        Unit-norm (or zero) kernels, acting on the marker-normalised input.
    mean, std : Tensor of shape (B, C), float32
        Marker-based normalisation of the layer input (``std`` includes ``stdev_factor``).
    kernel_labels : Tensor of shape (B, K), int64
        Marker each kernel came from: 1 object, 0 background, -1 none (PCA consensus).
    """

    kernels: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    kernel_labels: torch.Tensor

    def astuple(self) -> tuple[torch.Tensor, ...]:
        return (self.kernels, self.mean, self.std, self.kernel_labels)


@dataclass(frozen=True, eq=False)
class FlimBank:
    """Learned FLIM encoders of ``B`` models.

    Attributes
    ----------
    kernels : Tensor of shape (B, K, C, k, k), float32
        First-layer unit-norm kernels, acting on the marker-normalised image
        (paper: ``(B, 16, 3, 3, 3)``).
    mean, std : Tensor of shape (B, C), float32
        Marker-based normalisation of each model (``std`` includes the 0.01).
    kernel_labels : Tensor of shape (B, K), int64
        Marker each kernel came from: 1 object, 0 background.
    deeper : tuple of FlimLayer
        Layers 2.. (empty for the paper's single layer).
    settings : FlimSettings
        Pooling, layers and the decision layer's input (the default is the paper's block).
    """

    kernels: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    kernel_labels: torch.Tensor
    deeper: tuple[FlimLayer, ...] = ()
    settings: FlimSettings = field(default=DEFAULT_SETTINGS)

    def __len__(self) -> int:
        return self.kernels.shape[0]

    @property
    def layers(self) -> tuple[FlimLayer, ...]:
        """Every layer, the first one included."""
        return (FlimLayer(self.kernels, self.mean, self.std, self.kernel_labels), *self.deeper)

    @property
    def n_channels(self) -> int:
        """Channels of the features the decision layer reads."""
        return self.layers[self.settings.read_layer - 1].kernels.shape[1]

    def _map(self, fn) -> FlimBank:  # noqa: ANN001
        first = (fn(t) for t in (self.kernels, self.mean, self.std, self.kernel_labels))
        deeper = tuple(FlimLayer(*(fn(t) for t in layer.astuple())) for layer in self.deeper)
        return FlimBank(*first, deeper=deeper, settings=self.settings)

    def to(self, device: torch.device | str) -> FlimBank:
        """Return the same bank on another device."""
        return self._map(lambda t: t.to(device))

    def select(self, index: slice | torch.Tensor | list[int]) -> FlimBank:
        """Return the bank of a subset of models."""
        return self._map(lambda t: t[index])


def _gather(image: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Values at ``pixels (B, K, 2)`` -> ``(B, K, C)`` of ``image (C, H, W)`` or of per-model ``(B, C, H, W)``."""
    if image.dim() == 3:
        return image[:, pixels[..., 0], pixels[..., 1]].movedim(0, -1)
    batch = torch.arange(image.shape[0], device=image.device)[:, None]
    return image.movedim(1, -1)[batch, pixels[..., 0], pixels[..., 1]]


def marker_statistics(
    image: Images, obj_pixels: Pixels, bg_pixels: Pixels, stdev_factor: float = STDEV_FACTOR
) -> tuple[torch.Tensor, torch.Tensor]:
    """Marker-based normalisation statistics of each model.

    Parameters
    ----------
    image : Tensor of shape (C, H, W), or (B, C, H, W) with one input per model
        The marked image (or a layer's input); or a list of them, one per
        marked image (the statistics then cover every marked pixel of every image).
    obj_pixels : Tensor of shape (B, Ko, 2), int64
        ``(row, col)`` of each model's object-marker pixels; with a list of
        images, a list of such tensors (``Ko`` may be 0 on an image).
    bg_pixels : Tensor of shape (B, Kb, 2), int64
        ``(row, col)`` of each model's background-marker pixels (a list with a list of images).
    stdev_factor : float, optional
        Added to the standard deviation (libift's ``stdev_factor``).

    Returns
    -------
    mean, std : Tensor of shape (B, C)
        Mean and population standard deviation (plus ``stdev_factor``) over
        all the model's marked pixels.
    """
    if isinstance(image, torch.Tensor):
        values = torch.cat([_gather(image, obj_pixels), _gather(image, bg_pixels)], dim=1)
    else:  # several marked images: object pixels of every image, then background pixels of every image
        parts = [_gather(im, px) for im, px in zip(image, obj_pixels, strict=True)]
        parts += [_gather(im, px) for im, px in zip(image, bg_pixels, strict=True)]
        values = torch.cat(parts, dim=1)
    mean = values.mean(dim=1)
    std = values.var(dim=1, unbiased=False).sqrt() + stdev_factor
    return mean, std


def sample_patches(
    image: torch.Tensor,
    pixels: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    kernel_size: int = KERNEL_SIZE,
) -> torch.Tensor:
    """``k x k`` patches of the marker-normalised image around marked pixels.

    Parameters
    ----------
    image : Tensor of shape (C, H, W), or (B, C, H, W) with one input per model
        The marked image (not normalised).
    pixels : Tensor of shape (B, K, 2), int64
        Marked pixels of each model.
    mean, std : Tensor of shape (B, C)
        Each model's normalisation.
    kernel_size : int, optional
        Odd window side ``k`` (default 3).

    Returns
    -------
    patches : Tensor of shape (B, K, C * k * k)
        Flattened in ``(C, k, k)`` order, the layout of a convolution weight;
        neighbours outside the image are 0 after normalisation.
    """
    c, h, w = image.shape[-3:]
    half = kernel_size // 2
    padded = F.pad(image, (half, half, half, half))
    inside = F.pad(torch.ones(1, h, w, dtype=image.dtype, device=image.device), (half,) * 4)
    dr, dc = torch.meshgrid(
        torch.arange(kernel_size, device=image.device),
        torch.arange(kernel_size, device=image.device),
        indexing="ij",
    )
    rows = pixels[..., 0, None, None] + dr  # (B, K, k, k)
    cols = pixels[..., 1, None, None] + dc
    if image.dim() == 3:
        raw = padded[:, rows, cols].movedim(0, 2)  # (B, K, C, k, k)
    else:
        batch = torch.arange(image.shape[0], device=image.device)[:, None, None, None]
        raw = padded.movedim(1, -1)[batch, rows, cols].movedim(-1, 2)
    valid = inside[:, rows, cols].movedim(0, 2)
    norm = (raw - mean[:, None, :, None, None]) / std[:, None, :, None, None]
    return (norm * valid).reshape(*pixels.shape[:2], c * kernel_size**2)


def _patches(image: Images, pixels: Pixels, mean: torch.Tensor, std: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """:func:`sample_patches` of one image, or of every image of a list, concatenated image by image."""
    if isinstance(image, torch.Tensor):
        return sample_patches(image, pixels, mean, std, kernel_size)
    return torch.cat(
        [sample_patches(im, px, mean, std, kernel_size) for im, px in zip(image, pixels, strict=True)], dim=1
    )


def _cluster(patches: torch.Tensor, k: int, settings: FlimSettings | None) -> torch.Tensor:
    """``k`` kernels of one marker per model, by the settings' clustering."""
    if settings is None:
        return kmeans(patches, k)
    if settings.clustering == "kmeans++":
        centroids, members = kmeans_pp(patches, k, settings.restarts, settings.cluster_seed)
    else:
        centroids, members = kmeans_farthest(patches, k)
    if settings.min_cluster_fraction > 0:
        centroids = drop_small_clusters(centroids, members, patches.shape[1], settings.min_cluster_fraction)
    return centroids


def estimate_kernels(
    obj_patches: torch.Tensor,
    bg_patches: torch.Tensor,
    n_kernels: int = N_KERNELS,
    settings: FlimSettings | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster each marker's patches into kernels and scale them to unit norm.

    Parameters
    ----------
    obj_patches : Tensor of shape (B, Ko, D)
    bg_patches : Tensor of shape (B, Kb, D)
    n_kernels : int, optional
        Total kernels per model, split evenly between the two markers (used
        when ``settings`` is None: the paper's block).
    settings : FlimSettings, optional
        ``kernels_per_marker`` clusters per marker by the chosen clustering,
        small clusters dropped (zero kernels), then the consensus step down to
        ``channels`` when there are more kernels.

    Returns
    -------
    kernels : Tensor of shape (B, K, D)
        Object-marker kernels first (``K = n_kernels``, or
        ``settings.n_kernels``).
    labels : Tensor of shape (B, K), int64
        1 for object-marker kernels, 0 for background-marker kernels (-1
        for PCA consensus components).
    """
    if settings is None:
        per_obj, per_bg = n_kernels // 2, n_kernels - n_kernels // 2
    else:
        per_obj = per_bg = settings.kernels_per_marker
    kernels = torch.cat([_cluster(obj_patches, per_obj, settings), _cluster(bg_patches, per_bg, settings)], 1)
    kernels = kernels / kernels.norm(dim=2, keepdim=True).clamp(min=1e-6)
    labels = torch.zeros(kernels.shape[:2], dtype=torch.int64, device=kernels.device)
    labels[:, :per_obj] = 1
    if settings is not None and kernels.shape[1] > settings.channels:
        kernels, labels = consensus(kernels, labels, settings.channels, settings.consensus)
    return kernels, labels


def _learn_layer(layer_input: Images, obj_pixels: Pixels, bg_pixels: Pixels, settings: FlimSettings) -> FlimLayer:
    """One FLIM layer of ``B`` models from its input (``(C, H, W)`` shared or ``(B, C, H, W)``, or a list of them)."""
    return _learn_layer_variants(layer_input, obj_pixels, bg_pixels, [settings])[0]


def _learn_layer_variants(
    layer_input: Images, obj_pixels: Pixels, bg_pixels: Pixels, variants: list[FlimSettings]
) -> list[FlimLayer]:
    """One FLIM layer of ``B`` models per settings variant (e.g. k-means++ seeds): statistics and patches once."""
    first = variants[0]
    mean, std = marker_statistics(layer_input, obj_pixels, bg_pixels, first.stdev_factor)
    k = first.kernel_size
    obj = _patches(layer_input, obj_pixels, mean, std, k)
    bg = _patches(layer_input, bg_pixels, mean, std, k)
    b, c = mean.shape
    out = []
    for settings in variants:
        kernels, labels = estimate_kernels(obj, bg, settings=settings)
        out.append(FlimLayer(kernels.reshape(b, -1, c, k, k), mean, std, labels))
    return out


def _one(layer: FlimLayer, i: int) -> FlimLayer:
    return FlimLayer(*(t[i : i + 1] for t in layer.astuple()))


def learn_banks(
    image: Images,
    obj_pixels: Pixels,
    bg_pixels: Pixels,
    settings: FlimSettings | None = None,
    cluster_seeds: list[int] | None = None,
) -> FlimBank:
    """Learn the FLIM encoders of ``B`` (object, background) marker pairs.

    Parameters
    ----------
    image : Tensor of shape (C, H, W), float32, or list of them
        The marked image in normalised Lab; or the marked images (any sizes),
        one per list entry, whose markers all train the encoders.
    obj_pixels : Tensor of shape (B, Ko, 2), int64, or list of them
    bg_pixels : Tensor of shape (B, Kb, 2), int64, or list of them
        Pixels of each model's object and background markers; with a list of
        images, one tensor per image (``Ko``, ``Kb`` may be 0 on an image,
        but each class needs a pixel on some image).
    settings : FlimSettings, optional
        The default is the paper's single layer.
    cluster_seeds : list of int, optional
        Learn each model ``R`` times, once per k-means++ seed (repeated fits
        that differ in their clustering); the first layer's marker
        statistics and patches are computed once for all of them.

    Returns
    -------
    FlimBank
        Of ``B`` models, or with ``cluster_seeds`` of ``B * R`` (model ``b``'s
        fit with seed ``r`` is ``b * R + r``).  Layer ``l + 1`` is learned on
        the output of layers ``1..l`` run with pooling stride 1, at the same
        marker pixels (libift's convention).
    """
    settings = settings or DEFAULT_SETTINGS
    if cluster_seeds is not None:
        variants = [settings.replace(cluster_seed=int(s)) for s in cluster_seeds]
        firsts = _learn_layer_variants(image, obj_pixels, bg_pixels, variants)
        banks = [_deeper_layers(image, obj_pixels, bg_pixels, v, f) for v, f in zip(variants, firsts, strict=True)]
        return _interleave(banks, settings)
    return _deeper_layers(image, obj_pixels, bg_pixels, settings, _learn_layer(image, obj_pixels, bg_pixels, settings))


def _interleave(banks: list[FlimBank], settings: FlimSettings) -> FlimBank:
    """``R`` banks of ``B`` models as one bank of ``B * R`` (model-major: ``b * R + r``)."""

    def mix(parts: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(parts, dim=1).flatten(0, 1)

    layers = [FlimLayer(*(mix(list(t)) for t in zip(*(b.layers[i].astuple() for b in banks), strict=True)))
              for i in range(len(banks[0].layers))]
    return FlimBank(*layers[0].astuple(), deeper=tuple(layers[1:]), settings=settings)


def _deeper_layers(
    image: Images, obj_pixels: Pixels, bg_pixels: Pixels, settings: FlimSettings, first: FlimLayer
) -> FlimBank:
    """The bank whose first layer is ``first``, with its layers 2.. learned on top."""
    if not isinstance(image, torch.Tensor):
        return _deeper_layers_images(list(image), obj_pixels, bg_pixels, settings, first)
    layers = [first]
    x: torch.Tensor = image[None]  # (1, C, H, W): shared input
    for _ in range(1, settings.layers):
        # model by model, so that a model's next layer never depends on the batch (grouped
        # convolutions of different widths round differently)
        prev = layers[-1]
        x = torch.cat([
            apply_layer(x[:, i : i + 1] if x.dim() == 5 else x, _one(prev, i), settings, stride=1)
            for i in range(len(obj_pixels))
        ], dim=1)  # (1, B, K, H, W)
        layers.append(_learn_layer(x[0], obj_pixels, bg_pixels, settings))
    first = layers[0]
    return FlimBank(*first.astuple(), deeper=tuple(layers[1:]), settings=settings)


def _deeper_layers_images(
    images: list[torch.Tensor], obj_pixels: Sequence[torch.Tensor], bg_pixels: Sequence[torch.Tensor],
    settings: FlimSettings, first: FlimLayer,
) -> FlimBank:
    """:func:`_deeper_layers` of several marked images: each image runs through the layers on its own."""
    layers = [first]
    b = first.kernels.shape[0]
    xs = [im[None] for im in images]  # per image: (1, C, H, W) shared, later (1, B, K, H, W) per model
    for _ in range(1, settings.layers):
        prev = layers[-1]
        xs = [torch.cat([apply_layer(x[:, i : i + 1] if x.dim() == 5 else x, _one(prev, i), settings, stride=1)
                         for i in range(b)], dim=1) for x in xs]
        layers.append(_learn_layer([x[0] for x in xs], obj_pixels, bg_pixels, settings))
    return FlimBank(*layers[0].astuple(), deeper=tuple(layers[1:]), settings=settings)


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
