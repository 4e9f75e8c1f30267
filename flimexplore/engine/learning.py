"""Learning FLIM encoders from marker pixels: marker normalisation, patches, clustering into kernels, layers.

See :mod:`flimexplore.engine.flim` for the method; one image or a list of marked images, ``B`` models at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from flimexplore.engine.bank import (
    DEFAULT_SETTINGS,
    KERNEL_SIZE,
    N_KERNELS,
    STDEV_FACTOR,
    FlimBank,
    FlimLayer,
    Images,
    Pixels,
)
from flimexplore.engine.clustering import consensus, drop_small_clusters, kmeans, kmeans_farthest, kmeans_pp
from flimexplore.engine.encoding import apply_layer
from flimexplore.engine.settings import FlimSettings

__all__ = ["estimate_kernels", "learn_banks", "marker_statistics", "sample_patches"]


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
