"""The batched FLIM engine: many (object, background) marker pairs at once.

:func:`train_models` learns the FLIM blocks and decision layers of ``B``
models of one marked image together (or of several marked images: each
model's markers may lie on every one of them, and every image's mask
trains its decision layer); :func:`score_models` streams a set of
images through all of them in bounded chunks and returns confusion counts
for every model and epoch.  The plain one-model-at-a-time path with the same
maths lives in :mod:`flimexplore.engine.reference`; tests check they agree.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from flimexplore.data.store import ImageStore, PackedMasks, image_shape
from flimexplore.engine.colour import lab_norm
from flimexplore.engine.decision import (
    BatchNormStats,
    DecisionParams,
    count_outcomes,
    head_gap,
    train_decision,
    upsample,
)
from flimexplore.engine.flim import FlimBank, FlimLayer, encode, learn_banks
from flimexplore.engine.settings import FlimSettings
from flimexplore.errors import DeviceError
from flimexplore.markers import marker_pixels

__all__ = [
    "ImageGroup",
    "LazyImages",
    "TrainedModels",
    "learn_banks_grouped",
    "model_pixels",
    "prepare_images",
    "predict_gap",
    "resolve_device",
    "score_models",
    "train_models",
]

DEFAULT_MEMORY_MB = 512
CHUNK_BYTES = 8 * 2**20
GPU_CHUNK_BYTES = 2**30


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Pick the compute device: ``"auto"`` means CUDA when available, else CPU.

    Raises
    ------
    DeviceError
        If CUDA is requested on a machine without it, or the name is unknown.
    """
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {name!r} was requested but CUDA is not available on this machine "
                f"(torch {torch.__version__}); use --device cpu or auto"
            )
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise DeviceError(f"unknown device {name!r}; use auto, cpu or cuda")


class LazyImages:
    """Normalised Lab images of one shape, converted from RGB when a slice is asked for.

    Stands in for the (N, 3, H, W) tensor of an :class:`ImageGroup` when
    holding every image's Lab copy would cost too much memory (hundreds of
    400x400 validation images): ``images[a:b]`` converts just those images,
    so the working memory is one chunk's, whatever N is.  Slices equal the
    corresponding slices of the eager tensor bit for bit.

    Parameters
    ----------
    rgb : sequence of ndarray of shape (H, W, 3), float in [0, 1]
        Kept by reference, not copied; an :class:`~flimexplore.data.store.ImageStore`
        is read image by image when a slice is converted.
    device : torch.device or str
    """

    def __init__(self, rgb: Sequence[NDArray[np.floating]], device: torch.device | str) -> None:
        self._rgb = rgb if isinstance(rgb, ImageStore) else list(rgb)  # a store stays on disk
        h, w = image_shape(self._rgb, 0)[:2]
        self.shape = torch.Size((len(self._rgb), 3, h, w))
        self.device = torch.device(device)

    def __len__(self) -> int:
        return len(self._rgb)

    def __getitem__(self, index: slice) -> torch.Tensor:
        if not isinstance(index, slice):
            raise TypeError("LazyImages supports slices only, e.g. images[i : i + 1]")
        lab = np.stack([lab_norm(self._rgb[i]) for i in range(len(self))[index]]).transpose(0, 3, 1, 2)
        return torch.from_numpy(lab).to(self.device)


class LazyMasks:
    """Masks of one shape as a bool tensor, unpacked when a slice is asked for (:class:`LazyImages`' partner).

    Parameters
    ----------
    masks : sequence of ndarray of shape (H, W), bool
        Kept by reference; a :class:`~flimexplore.data.store.PackedMasks` is unpacked slice by slice.
    device : torch.device or str
    """

    def __init__(self, masks: Sequence[NDArray[np.bool_]], device: torch.device | str) -> None:
        self._masks = masks
        h, w = np.shape(masks[0])[:2]
        self.shape = torch.Size((len(masks), h, w))
        self.device = torch.device(device)

    def __len__(self) -> int:
        return len(self._masks)

    def __getitem__(self, index: slice) -> torch.Tensor:
        if not isinstance(index, slice):
            raise TypeError("LazyMasks supports slices only, e.g. masks[i : i + 1]")
        picked = np.stack([np.asarray(self._masks[i], bool) for i in range(len(self))[index]])
        return torch.from_numpy(picked).to(self.device)


@dataclass(frozen=True, eq=False)
class ImageGroup:
    """Images of one shape, ready for the engine.

    Attributes
    ----------
    images : Tensor of shape (N, 3, H, W), float32, or LazyImages
        Normalised Lab (converted slice by slice when lazy).
    masks : Tensor of shape (N, H, W), bool, or LazyMasks
        Stacked slice by slice when lazy and the masks are packed bits.
    index : tuple of int
        Position of each image in the caller's list.
    """

    images: torch.Tensor | LazyImages
    masks: torch.Tensor | LazyMasks
    index: tuple[int, ...]


def prepare_images(
    images: Sequence[NDArray[np.floating]],
    masks: Sequence[NDArray[np.bool_]],
    device: torch.device | str = "cpu",
    lazy: bool = False,
) -> list[ImageGroup]:
    """Convert RGB images to normalised Lab tensors, grouped by shape.

    Parameters
    ----------
    images : sequence of ndarray of shape (H, W, 3), float in [0, 1], or ImageStore
        With ``lazy`` a store is never read whole: its images are read when a slice is converted.
    masks : sequence of ndarray of shape (H, W), bool
    device : torch.device or str
    lazy : bool, optional
        Convert when a slice is used (:class:`LazyImages`) instead of now:
        bounded memory for large image sets, at the cost of converting again
        on every pass.

    Returns
    -------
    list of ImageGroup
        In order of first appearance of each shape.
    """
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i in range(len(images)):
        by_shape.setdefault(tuple(image_shape(images, i)[:2]), []).append(i)
    groups = []
    for idx in by_shape.values():
        if lazy and isinstance(masks, PackedMasks):  # bits stay bits until a slice is scored
            m: torch.Tensor | LazyMasks = LazyMasks(masks.take(idx), device)
        else:
            m = torch.from_numpy(np.stack([np.asarray(masks[i], bool) for i in idx])).to(device)
        if lazy:
            chosen = images.take(idx) if isinstance(images, ImageStore) else [images[i] for i in idx]
            groups.append(ImageGroup(LazyImages(chosen, device), m, tuple(idx)))
            continue
        lab = np.stack([lab_norm(images[i]) for i in idx]).transpose(0, 3, 1, 2)
        groups.append(ImageGroup(torch.from_numpy(lab).to(device), m, tuple(idx)))
    return groups


def model_pixels(
    centres: NDArray[np.integer], radius: int, shape: tuple[int, int], device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Disk pixels of many markers of one radius, as one tensor.

    Parameters
    ----------
    centres : ndarray of shape (B, 2), int
    radius : int
    shape : tuple of int

    Returns
    -------
    pixels : Tensor of shape (B, K, 2), int64

    Raises
    ------
    ValueError
        If the disks are clipped differently by the border (different K);
        sampled markers never are.
    """
    disks = [marker_pixels(c, radius, shape) for c in np.asarray(centres).reshape(-1, 2)]
    if len({len(d) for d in disks}) > 1:
        raise ValueError("markers of one batch must all lie fully inside the image")
    return torch.as_tensor(np.stack(disks), device=device)


@dataclass(frozen=True, eq=False)
class TrainedModels:
    """``B`` trained FLIM models of one marked image, every epoch kept.

    Attributes
    ----------
    bank : FlimBank
        Of ``M`` encoders.
    params : DecisionParams with shapes (M * heads, E, ...)
        Decision layers; encoder ``m``'s head ``h`` is ``m * heads + h``.
    bn : BatchNormStats
        Of shape (M * heads, C).
    losses : Tensor of shape (M * heads, E)
    heads : int
        Decision layers trained on each encoder's features (repeated fits
        that share their encoder), 1 otherwise.
    """

    bank: FlimBank
    params: DecisionParams
    bn: BatchNormStats
    losses: torch.Tensor
    heads: int = 1

    def __len__(self) -> int:
        return len(self.bank)


def learn_banks_grouped(
    image: torch.Tensor | Sequence[torch.Tensor],
    obj_pixels: Sequence[NDArray[np.integer]] | Sequence[Sequence[NDArray[np.integer]]],
    bg_pixels: Sequence[NDArray[np.integer]] | Sequence[Sequence[NDArray[np.integer]]],
    settings: FlimSettings | None = None,
    cluster_seeds: list[int] | None = None,
) -> FlimBank:
    """FLIM blocks of ``B`` models whose markers hold different numbers of pixels.

    Models with equally many object and background pixels (on every image)
    are learned together (one call of :func:`~flimexplore.engine.flim.learn_banks`
    per group); a model's block does not depend on the other models of its
    batch, so the result equals learning each model alone.

    Parameters
    ----------
    image : Tensor of shape (C, H, W), or list of them
        The marked image in normalised Lab, or the marked images (one per entry).
    obj_pixels, bg_pixels : sequence of ndarray of shape (K_i, 2) and (L_i, 2), int
        ``(row, col)`` of each model's object and background pixels.  With a
        list of images: per model, a sequence of such arrays, one per image
        (an image may hold no pixel of a class: shape (0, 2)).
    cluster_seeds : list of int, optional
        Learn every model once per k-means++ seed (see :func:`learn_banks`).

    Returns
    -------
    FlimBank
        Of ``B`` models (``B * R`` with ``R`` cluster seeds: ``b * R + r``), in input order.
    """
    several = not isinstance(image, torch.Tensor)
    device = image.device if not several else image[0].device

    def count(px: Any) -> tuple[int, ...]:
        return tuple(len(p) for p in px) if several else (len(px),)

    def stacked(arrays: Sequence[Any], idx: list[int]) -> Any:
        if not several:
            return torch.as_tensor(np.stack([np.asarray(arrays[i], np.int64) for i in idx]), device=device)
        return [torch.as_tensor(np.stack([np.asarray(arrays[i][j], np.int64).reshape(-1, 2) for i in idx]), device=device)
                for j in range(len(image))]

    groups: dict[tuple[tuple[int, ...], tuple[int, ...]], list[int]] = {}
    for i, (o, b) in enumerate(zip(obj_pixels, bg_pixels, strict=True)):
        groups.setdefault((count(o), count(b)), []).append(i)
    parts, order = [], []
    for idx in groups.values():
        parts.append(learn_banks(image, stacked(obj_pixels, idx), stacked(bg_pixels, idx), settings, cluster_seeds))
        order += idx
    if len(parts) == 1:
        return parts[0]
    per = 1 if cluster_seeds is None else len(cluster_seeds)  # each model's fits stay together
    back = torch.as_tensor(np.argsort(order, kind="stable"), device=device)
    back = (back[:, None] * per + torch.arange(per, device=device)).flatten()

    def cat(layers: list[FlimLayer]) -> FlimLayer:
        return FlimLayer(*(torch.cat(list(f))[back] for f in zip(*(x.astuple() for x in layers), strict=True)))

    first = cat([p.layers[0] for p in parts])
    deeper = tuple(cat([p.deeper[i] for p in parts]) for i in range(len(parts[0].deeper)))
    return FlimBank(*first.astuple(), deeper=deeper, settings=parts[0].settings)


def train_models(
    marked: ImageGroup | Sequence[ImageGroup],
    obj_pixels: torch.Tensor | Sequence[NDArray[np.integer]] | Sequence[Sequence[NDArray[np.integer]]],
    bg_pixels: torch.Tensor | Sequence[NDArray[np.integer]] | Sequence[Sequence[NDArray[np.integer]]],
    seeds: Sequence[int] | Sequence[Sequence[int]],
    epochs: int = 20,
    lr: float = 0.1,
    settings: FlimSettings | None = None,
    cluster_seeds: list[int] | None = None,
    pixel_step: int = 1,
) -> TrainedModels:
    """Learn FLIM blocks and train decision layers for ``B`` marker pairs.

    Parameters
    ----------
    marked : ImageGroup holding the one marked image, or a sequence of ImageGroups
        A sequence gives several marked images (every image of every group,
        in order; sizes may differ): the FLIM blocks learn from the markers of
        every image and the decision layers train on every image's mask
        (:func:`~flimexplore.engine.flim.learn_banks`,
        :func:`~flimexplore.engine.decision.train_decision`).  A sequence of
        one group of one image gives the same models as that group alone.
    obj_pixels, bg_pixels : Tensor of shape (B, K, 2), int64, or sequences of ndarray of shape (K_i, 2)
        Each model's marked pixels; models of different pixel counts (scribbles,
        several disks, disks clipped by the border) are given as sequences
        (see :func:`learn_banks_grouped`).  With several marked images: per
        model, a sequence of ``(K_ij, 2)`` arrays, one per marked image.
    seeds : sequence of int, or B sequences of R ints
        Seed of each model's decision-layer initialisation; ``R`` seeds per
        model give ``R`` repeated fits.
    epochs, lr : int, float
    settings : FlimSettings, optional
        FLIM encoder settings (default: the paper's single layer).
    cluster_seeds : list of int, optional
        ``R`` k-means++ seeds, one per repeated fit: every model's encoder is
        then learned ``R`` times (:func:`learn_banks`) and fit ``r`` uses
        decision seed ``seeds[b][r]``.  Without them the ``R`` fits of a
        model share its encoder and train ``R`` decision layers on its
        features.

    pixel_step : int, optional
        Train the decision layers on every ``pixel_step``-th row and column
        (:func:`~flimexplore.engine.decision.train_decision`); 1, every pixel, is the study's training.
    Returns
    -------
    TrainedModels
        Fit ``r`` of model ``b`` is decision layer ``b * R + r``.
    """
    if isinstance(marked, ImageGroup):
        image, mask = marked.images[0], marked.masks[0]
        if isinstance(obj_pixels, torch.Tensor) and isinstance(bg_pixels, torch.Tensor):
            bank = learn_banks(image, obj_pixels, bg_pixels, settings, cluster_seeds)
        else:
            bank = learn_banks_grouped(image, obj_pixels, bg_pixels, settings, cluster_seeds)
        pooled: torch.Tensor | list[torch.Tensor] = encode(image[None], bank)[0]  # (M, K, h, w)
    else:
        images = [g.images[i : i + 1][0] for g in marked for i in range(len(g.index))]
        mask = [g.masks[i : i + 1][0] for g in marked for i in range(len(g.index))]
        bank = learn_banks_grouped(images, obj_pixels, bg_pixels, settings, cluster_seeds)
        pooled = [encode(im[None], bank)[0] for im in images]
    heads = 1
    if cluster_seeds is not None:  # one encoder per fit: one seed each, in the bank's b * R + r order
        seeds = [int(v) for row in seeds for v in (row if not isinstance(row, numbers.Integral) else [row])]
    elif seeds and not isinstance(seeds[0], numbers.Integral):
        heads = len(seeds[0])
    params, bn, losses = train_decision(pooled, mask, seeds, epochs=epochs, lr=lr, pixel_step=pixel_step)
    return TrainedModels(bank, params, bn, losses, heads)


def _feature_floats(bank: FlimBank, shape: tuple[int, int]) -> tuple[int, int]:
    """Floats per model and image: (decision-layer features per channel, largest layer intermediate)."""
    s = bank.settings
    if s.is_paper_block:
        return ((shape[0] + 1) // 2) * ((shape[1] + 1) // 2), 0
    h, w = shape
    for _ in range(s.read_layer):
        h, w = -(-h // s.pool_stride), -(-w // s.pool_stride)
    # the grouped convolution of layer 1 holds its input and output at full size
    return h * w, shape[0] * shape[1] * (bank.mean.shape[1] + bank.kernels.shape[1])


def _model_group(bank: FlimBank, n_heads: int, shape: tuple[int, int], memory_mb: float) -> int:
    """Models scored together: one image's features and gap maps of the group fit the budget."""
    pixels, extra = _feature_floats(bank, shape)
    per_model = pixels * 4 * (bank.n_channels + n_heads) + 4 * extra
    return max(1, min(len(bank), int(memory_mb * 2**20 // per_model)))


def _image_chunk(
    n_models: int, shape: tuple[int, int], device: torch.device | None = None, bank: FlimBank | None = None
) -> int:
    """Images encoded together: on the CPU their features stay about cache-sized; on a GPU the
    paper block's full-resolution convolution output fits ``GPU_CHUNK_BYTES`` (one batched call per chunk).
    ``bank`` (of ``n_models`` models) gives the FLIM settings; None is the paper's block."""
    paper = bank is None or bank.settings.is_paper_block
    channels = 16 if bank is None else bank.n_channels
    if device is not None and device.type == "cuda" and paper:
        return max(1, GPU_CHUNK_BYTES // (shape[0] * shape[1] * 4 * channels * n_models))
    pixels, extra = (((shape[0] + 1) // 2) * ((shape[1] + 1) // 2), 0) if bank is None else _feature_floats(bank, shape)
    per_image = (pixels * channels + extra) * 4 * n_models
    return max(1, CHUNK_BYTES // per_image)


def score_models(
    bank: FlimBank,
    a: torch.Tensor,
    c: torch.Tensor,
    groups: Sequence[ImageGroup],
    memory_mb: float = DEFAULT_MEMORY_MB,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Confusion counts of every model and head on a set of images.

    Images are streamed in small chunks (one image at a time for a full
    chunk of models): each chunk's features are counted while they are still
    in cache and never pile up, so the working memory is about one image's
    features and gap maps.  When even that exceeds ``memory_mb`` (large
    images, many models), the models are scored in groups that fit.

    Parameters
    ----------
    bank : FlimBank of ``B`` models
    a : Tensor of shape (B, E, K)
    c : Tensor of shape (B, E)
        Folded decision heads (:func:`flimexplore.engine.decision.head_gap`), one
        per epoch or a single one.
    groups : sequence of ImageGroup
    memory_mb : float, optional
        Rough bound of the working memory.
    progress : callable, optional
        Called as ``progress(done, total)`` after each step, in image passes
        (one image scored by one group of models); ``total`` is fixed.

    Returns
    -------
    counts : Tensor of shape (B, E, N, 4), int64 on the CPU
        In the order of the groups' ``index``.
    """
    n_total = sum(len(g.index) for g in groups)
    b, e = a.shape[:2]
    out = torch.zeros(b, e, n_total, 4, dtype=torch.int64, device=a.device)
    passes = sum(len(g.index) * -(-b // _model_group(bank, e, tuple(g.masks.shape[1:]), memory_mb)) for g in groups)
    done = 0
    if progress is not None:
        progress(0, passes)
    for g in groups:
        shape = tuple(g.masks.shape[1:])
        step = _model_group(bank, e, shape, memory_mb)
        for lo in range(0, b, step):
            models = slice(lo, lo + step)
            sub = bank.select(models)
            chunk = _image_chunk(len(sub), shape, a.device, sub)
            for first in range(0, len(g.index), chunk):
                images = slice(first, first + chunk)
                feats = encode(g.images[images], sub)
                counts = count_outcomes(feats, a[models], c[models], g.masks[images])
                out[models, :, list(g.index[images])] = counts
                if progress is not None:
                    done += len(g.index[images])
                    progress(done, passes)
    return out.cpu()


def predict_gap(
    image: torch.Tensor, bank: FlimBank, params: DecisionParams, bn: BatchNormStats
) -> torch.Tensor:
    """Logit gap (object minus background) of ``B`` models on one image.

    Parameters
    ----------
    image : Tensor of shape (3, H, W)
    bank : FlimBank
    params : DecisionParams with shapes (B, ...) (one epoch)
    bn : BatchNormStats

    Returns
    -------
    gap : Tensor of shape (B, H, W)
        Positive where a model predicts object.
    """
    a, c = head_gap(DecisionParams(*(t[:, None] for t in params.astuple())), bn)
    feats = encode(image[None], bank)[0]  # (B, K, h, w)
    gap = torch.einsum("bc,bchw->bhw", a[:, 0], feats) + c[:, 0, None, None]
    return upsample(gap[:, None], tuple(image.shape[1:]))[:, 0]
