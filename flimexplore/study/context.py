"""Everything a study needs of its data, prepared once: split, marked image, tensors.

:class:`StudyContext` loads the dataset, applies the paper's split, picks
the marked image, converts the validation and test images to tensors on
the compute device, and evaluates batches of marker pairs with the
batched engine (or the reference path).  The study runner and the
interactive explorer both go through it, so a marker the user drags in the
explorer is scored exactly like a sampled one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from numpy.typing import NDArray

from flimexplore.data import Dataset, Split, load_dataset, split_dataset
from flimexplore.engine.batched import (
    DEFAULT_MEMORY_MB,
    ImageGroup,
    model_pixels,
    predict_gap,
    prepare_images,
    resolve_device,
    score_models,
    train_models,
)
from flimexplore.engine.decision import BatchNormStats, DecisionParams, head_gap
from flimexplore.engine.flim import FlimBank, FlimLayer
from flimexplore.engine.reference import run_reference
from flimexplore.engine.scores import METRICS, metrics_from_counts
from flimexplore.engine.settings import FlimSettings
from flimexplore.errors import DatasetError, MarkerError
from flimexplore.markers import marker_pixels
from flimexplore.study.config import StudyConfig

__all__ = ["PairScores", "StudyContext"]

ARRAY_KEYS = (
    "kernels", "norm_mean", "norm_std", "kernel_labels", "gamma", "beta", "weight", "bias",
    "bn_mean", "bn_var", "bn_running_var", "val_dice_curve",
)
# Layers 2 and 3 of a multi-layer encoder add these keys with the layer number appended
# ("kernels2", "norm_mean2", ...); pooling and the decision layer's input come from the study's config.
LAYER_KEYS = ("kernels", "norm_mean", "norm_std", "kernel_labels")


@dataclass(frozen=True, eq=False)
class PairScores:
    """Scores and parameters of ``B`` evaluated marker pairs.

    Attributes
    ----------
    best_epoch : ndarray of shape (B,), int
        1-based epoch with the best mean validation Dice.
    val, test : dict of str to ndarray of shape (B,)
        Mean per-image Dice, Jaccard, sensitivity, specificity at the best epoch.
    arrays : dict of str to ndarray with leading axis B
        Parameters (see ``ARRAY_KEYS``) for predictions and projections.
    """

    best_epoch: NDArray[np.int64]
    val: dict[str, NDArray[np.float64]]
    test: dict[str, NDArray[np.float64]]
    arrays: dict[str, NDArray]


class StudyContext:
    """Data of one marked image of a dataset, ready for the engine.

    Parameters
    ----------
    config : StudyConfig
    device : str, optional
        ``auto``, ``cpu`` or ``cuda``.
    dataset : Dataset, optional
        Already loaded data (otherwise ``config.dataset`` is loaded).

    Raises
    ------
    ConfigError
        If a setting is out of range (see :meth:`StudyConfig.validate`).
    DeviceError
        If the device is unknown or CUDA is asked for but missing.
    DatasetError
        If the dataset cannot be loaded, holds NaN, infinite or out-of-range
        values (also checked for a ``dataset`` built in memory and changed
        since), is too small for the split, or ``config.image`` is not one of
        the marked images.
    """

    def __init__(self, config: StudyConfig, device: str = "auto", dataset: Dataset | None = None) -> None:
        config.validate()
        self.device = resolve_device(device)
        self.dataset = dataset if dataset is not None else load_dataset(config.dataset, n_images=config.n_images)
        _check_values(self.dataset)
        self.split: Split = split_dataset(len(self.dataset), seed=config.seed)
        if not 0 <= config.image < len(self.split.marked):
            raise DatasetError(
                f"marked image {config.image} does not exist: the split has "
                f"{len(self.split.marked)} marked images (0..{len(self.split.marked) - 1})"
            )
        self.config = config.replace(
            n_bg=config.n_bg if config.n_bg is not None else self.dataset.n_bg,
            radius=config.radius if config.radius is not None else self.dataset.radius,
        )
        self.marked_index = self.split.marked[config.image]
        self.image = self.dataset.images[self.marked_index]
        self.mask = self.dataset.masks[self.marked_index]
        ds = self.dataset
        self.marked: ImageGroup = prepare_images([self.image], [self.mask], self.device)[0]
        self.val_groups = prepare_images([ds.images[i] for i in self.split.val], [ds.masks[i] for i in self.split.val], self.device)
        self.test_groups = prepare_images([ds.images[i] for i in self.split.test], [ds.masks[i] for i in self.split.test], self.device)

    @property
    def stem(self) -> str:
        """Name of the marked image."""
        return self.dataset.stems[self.marked_index]

    def identity(self) -> dict[str, object]:
        """Facts of the data that a resumed study must share.

        Besides names and sizes, ``data_sha256`` fingerprints the pixels of
        every image and mask, so that a folder whose files were changed
        between two runs is not resumed with results of the old files.
        """
        return {
            "marked_stem": self.stem,
            "n_images": len(self.dataset),
            "dataset_name": self.dataset.name,
            "shape": list(self.image.shape[:2]),
            "data_sha256": self.fingerprint,
        }

    @cached_property
    def fingerprint(self) -> str:
        """First 16 hex digits of a SHA-256 over the stems, images and masks."""
        h = hashlib.sha256()
        for stem, image, mask in zip(self.dataset.stems, self.dataset.images, self.dataset.masks, strict=True):
            h.update(stem.encode())
            h.update(repr(image.shape).encode())
            h.update(np.ascontiguousarray(image).tobytes())
            h.update(np.packbits(mask).tobytes())
        return h.hexdigest()[:16]

    def evaluate(
        self,
        obj: NDArray[np.integer],
        bg: NDArray[np.integer],
        seeds: Sequence[int],
        memory_mb: float = DEFAULT_MEMORY_MB,
    ) -> PairScores:
        """Train and score ``B`` marker pairs with the batched engine.

        Parameters
        ----------
        obj, bg : ndarray of shape (B, 2), int
            Object and background marker centres ``(row, col)``.
        seeds : sequence of int
            Decision-layer seed of each model.
        memory_mb : float, optional

        Returns
        -------
        PairScores

        Raises
        ------
        MarkerError
            If a centre lies outside the marked image or on the wrong class.
        """
        r, shape = self.config.radius, self.mask.shape
        obj, bg = _check_pairs(obj, bg, self.mask)
        if len(seeds) != len(obj):
            raise MarkerError(f"{len(obj)} marker pairs but {len(seeds)} seeds")
        centres = np.concatenate([obj, bg])
        clipped = (centres < r).any() or (centres[:, 0] >= shape[0] - r).any() or (centres[:, 1] >= shape[1] - r).any()
        if clipped:  # user markers near the border: the engine needs disks of one size per batch
            sizes = [(len(marker_pixels(o, r, shape)), len(marker_pixels(b, r, shape))) for o, b in zip(obj, bg, strict=True)]
            if len(set(sizes)) > 1:
                groups = [np.array([i for i, k in enumerate(sizes) if k == key]) for key in sorted(set(sizes))]
                parts = [self.evaluate(obj[g], bg[g], [seeds[i] for i in g], memory_mb) for g in groups]
                return _merge(parts, groups)
        trained = train_models(
            self.marked,
            model_pixels(obj, r, shape, self.device),
            model_pixels(bg, r, shape, self.device),
            seeds,
            epochs=self.config.epochs,
            lr=self.config.lr,
            settings=self.config.flim(),
        )
        a, c = head_gap(trained.params, trained.bn)
        val_counts = score_models(trained.bank, a, c, self.val_groups, memory_mb).numpy()
        curve = metrics_from_counts(val_counts)["dice"].mean(axis=2)  # (B, E)
        best = curve.argmax(axis=1)
        pick = torch.as_tensor(best, device=a.device)
        idx = torch.arange(len(best), device=a.device)
        test_counts = score_models(trained.bank, a[idx, pick][:, None], c[idx, pick][:, None], self.test_groups, memory_mb).numpy()
        b = np.arange(len(best))
        val = {k: v.mean(axis=2)[b, best] for k, v in metrics_from_counts(val_counts).items()}
        test = {k: v.mean(axis=2)[:, 0] for k, v in metrics_from_counts(test_counts).items()}
        p = trained.params.at_epoch(pick)
        t = lambda x: x.detach().cpu().numpy()  # noqa: E731
        arrays = {
            "kernels": t(trained.bank.kernels), "norm_mean": t(trained.bank.mean),
            "norm_std": t(trained.bank.std), "kernel_labels": t(trained.bank.kernel_labels),
            "gamma": t(p.gamma), "beta": t(p.beta), "weight": t(p.weight), "bias": t(p.bias),
            "bn_mean": t(trained.bn.mean), "bn_var": t(trained.bn.var),
            "bn_running_var": t(trained.bn.running_var), "val_dice_curve": curve,
        }
        for number, layer in enumerate(trained.bank.deeper, start=2):
            arrays |= {f"{key}{number}": t(v) for key, v in zip(LAYER_KEYS, layer.astuple(), strict=True)}
        return PairScores(best + 1, val, test, arrays)

    def evaluate_reference(self, obj: NDArray[np.integer], bg: NDArray[np.integer], seeds: Sequence[int]) -> PairScores:
        """Score ``B`` marker pairs one at a time with the reference path (no parameters kept)."""
        obj, bg = _check_pairs(obj, bg, self.mask)
        ds = self.dataset
        val = ([ds.images[i] for i in self.split.val], [ds.masks[i] for i in self.split.val])
        test = ([ds.images[i] for i in self.split.test], [ds.masks[i] for i in self.split.test])
        results = [
            run_reference(self.image, self.mask, o, g, self.config.radius, int(s), val, test,
                          epochs=self.config.epochs, lr=self.config.lr, settings=self.config.flim())
            for o, g, s in zip(np.asarray(obj), np.asarray(bg), seeds, strict=True)
        ]
        best = np.array([r.best_epoch for r in results])
        vm = [metrics_from_counts(r.val_counts) for r in results]
        tm = [metrics_from_counts(r.test_counts) for r in results]
        return PairScores(
            best,
            {k: np.array([m[k].mean() for m in vm]) for k in METRICS},
            {k: np.array([m[k].mean() for m in tm]) for k in METRICS},
            {"val_dice_curve": np.stack([r.val_dice for r in results])},
        )

    def predict(self, arrays: dict[str, NDArray], image: NDArray[np.floating]) -> NDArray[np.bool_]:
        """Predicted object mask of one stored model on one RGB image.

        Parameters
        ----------
        arrays : dict
            One model's parameters (from :class:`PairScores` or a store).
        image : ndarray of shape (H, W, 3), float in [0, 1]

        Returns
        -------
        mask : ndarray of shape (H, W), bool
        """
        bank, params, bn = _unpack([arrays], self.device, self.config.flim())
        group = prepare_images([image], [np.zeros(image.shape[:2], bool)], self.device)[0]
        return (predict_gap(group.images[0], bank, params, bn)[0] > 0).cpu().numpy()


def _check_values(dataset: Dataset) -> None:
    """Refuse NaN, inf or out-of-range pixels (arrays of a Dataset can be changed after it was built)."""
    for stem, image, mask in zip(dataset.stems, dataset.images, dataset.masks, strict=True):
        if not np.isfinite(image).all():
            raise DatasetError(f"image {stem!r} of dataset {dataset.name!r} holds NaN or infinite values")
        if image.min() < 0.0 or image.max() > 1.0:
            raise DatasetError(f"image {stem!r} of dataset {dataset.name!r} has values outside [0, 1]")
        if not mask.any() or mask.all():
            raise DatasetError(f"mask {stem!r} of dataset {dataset.name!r} must hold both object and background")


def _check_pairs(obj: NDArray, bg: NDArray, mask: NDArray[np.bool_]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Marker centres as (B, 2) int64 arrays, refusing ones outside the image or on the wrong class."""
    pairs = []
    for name, centres, want in (("object", obj, True), ("background", bg, False)):
        c = np.asarray(centres)
        whole = c.dtype.kind in "iu" or (c.dtype.kind == "f" and np.isfinite(c).all() and (c == np.round(c)).all())
        if c.ndim != 2 or c.shape[1] != 2 or not whole:
            raise MarkerError(f"{name} marker centres must be whole numbers of shape (B, 2), got {c.dtype} {c.shape}")
        c = c.astype(np.int64)
        h, w = mask.shape
        inside = (c[:, 0] >= 0) & (c[:, 0] < h) & (c[:, 1] >= 0) & (c[:, 1] < w)
        if not inside.all():
            i = int(np.argmin(inside))
            raise MarkerError(f"{name} marker {i} at ({c[i, 0]}, {c[i, 1]}) is outside the {h}x{w} image")
        wrong = mask[c[:, 0], c[:, 1]] != want
        if wrong.any():
            i = int(np.argmax(wrong))
            raise MarkerError(
                f"{name} marker {i} at ({c[i, 0]}, {c[i, 1]}) lies on the {'background' if want else 'object'}"
            )
        pairs.append(c)
    if len(pairs[0]) != len(pairs[1]):
        raise MarkerError(f"{len(pairs[0])} object but {len(pairs[1])} background markers; they come in pairs")
    return pairs[0], pairs[1]


def _merge(parts: Sequence[PairScores], groups: Sequence[NDArray[np.intp]]) -> PairScores:
    """Put the scores of separately evaluated groups of pairs back in the callers' order."""
    order = np.argsort(np.concatenate(groups), kind="stable")

    def cat(values: Sequence[NDArray]) -> NDArray:
        return np.concatenate(values)[order]

    return PairScores(
        cat([p.best_epoch for p in parts]),
        {k: cat([p.val[k] for p in parts]) for k in parts[0].val},
        {k: cat([p.test[k] for p in parts]) for k in parts[0].test},
        {k: cat([p.arrays[k] for p in parts]) for k in parts[0].arrays},
    )


def _unpack(
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
    ctx: StudyContext, arrays: dict[str, NDArray], images: Sequence[NDArray[np.floating]]
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

    bank, _, _ = _unpack([arrays], ctx.device, ctx.config.flim())
    group = prepare_images(list(images), [np.zeros(im.shape[:2], bool) for im in images], ctx.device)[0]
    feats = encode(group.images, bank)[:, 0]
    return upsample(feats, tuple(group.images.shape[-2:])).cpu().numpy()


def model_patches(ctx: StudyContext, arrays: dict[str, NDArray], obj: NDArray, bg: NDArray) -> tuple[NDArray, NDArray]:
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
