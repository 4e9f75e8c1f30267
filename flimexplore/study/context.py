"""Everything a study needs of its data, prepared once: split, marked image, tensors.

:class:`StudyContext` loads the dataset, applies the paper's split, picks
the marked image, converts the validation and test images to tensors on
the compute device (large sets on the CPU: chunk by chunk as they are
scored, so memory does not grow with them), and evaluates batches of marker pairs with the
batched engine (or the reference path).  The study runner and the
interactive explorer both go through it, so a marker the user drags in the
explorer is scored exactly like a sampled one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from flimexplore.data import Dataset, Split, load_dataset, split_dataset
from flimexplore.data.folder import SEEDS_SUFFIX
from flimexplore.data.seeds import check_seeds_shape, read_seeds
from flimexplore.data.store import ImageStore, PackedMasks, image_shape
from flimexplore.engine.batched import (
    DEFAULT_MEMORY_MB,
    ImageGroup,
    TrainedModels,
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
from flimexplore.study.marked import ImageMarkers
from flimexplore.study.repeats import cluster_seeds, decision_seeds

__all__ = ["FitScores", "PairScores", "StudyContext"]

# Validation and test images larger than this (RGB bytes) are converted to Lab chunk by chunk on the
# CPU instead of once up front: 313 + 316 images of 400x400 would otherwise hold 1.2 GB of tensors.
EAGER_BYTES = 256 * 2**20

ARRAY_KEYS = (
    "kernels", "norm_mean", "norm_std", "kernel_labels", "gamma", "beta", "weight", "bias",
    "bn_mean", "bn_var", "bn_running_var", "val_dice_curve",
)
# Layers 2 and 3 of a multi-layer encoder add these keys with the layer number appended
# ("kernels2", "norm_mean2", ...); pooling and the decision layer's input come from the study's config.
LAYER_KEYS = ("kernels", "norm_mean", "norm_std", "kernel_labels")


@dataclass(frozen=True, eq=False)
class FitScores:
    """Scores of the repeated fits of ``B`` marker pairs (:mod:`flimexplore.study.repeats`).

    Attributes
    ----------
    repeats : tuple of int
        The ``R`` fits computed (0 is the fit of a study without repeats).
    best_epoch : ndarray of shape (B, R), int
    val, test : dict of str to ndarray of shape (B, R)
        Each fit's mean per-image scores at its best epoch.
    seeds : ndarray of shape (B, R), int
        Decision-layer seed of each fit.
    cluster_seeds : ndarray of shape (R,), int, or None
        k-means++ seed of each fit when the repeats re-draw the clustering.
    """

    repeats: tuple[int, ...]
    best_epoch: NDArray[np.int64]
    val: dict[str, NDArray[np.float64]]
    test: dict[str, NDArray[np.float64]]
    seeds: NDArray[np.int64]
    cluster_seeds: NDArray[np.int64] | None = None


@dataclass(frozen=True, eq=False)
class PairScores:
    """Scores and parameters of ``B`` evaluated marker pairs.

    Attributes
    ----------
    best_epoch : ndarray of shape (B,), int
        1-based epoch with the best mean validation Dice (of the first fit).
    val, test : dict of str to ndarray of shape (B,)
        Mean per-image Dice, Jaccard, sensitivity, specificity at the best
        epoch; with repeated fits, their mean over the fits.
    arrays : dict of str to ndarray with leading axis B
        Parameters (see ``ARRAY_KEYS``) of the first fit, for predictions and projections.
    fits : FitScores or None
        Every fit's scores (None from the reference path without repeats).
    trained : TrainedModels or None
        The engine's models with every epoch's decision layer, when asked for
        (``keep_trained``): e.g. to predict on the marked images at the last
        epoch, which no validation image chose.
    """

    best_epoch: NDArray[np.int64]
    val: dict[str, NDArray[np.float64]]
    test: dict[str, NDArray[np.float64]]
    arrays: dict[str, NDArray]
    fits: FitScores | None = None
    trained: TrainedModels | None = None


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
        self.dataset = (
            dataset
            if dataset is not None
            else load_dataset(config.dataset, n_images=config.n_images, object_label=config.object_label, size=config.size)
        )
        _check_values(self.dataset)
        self.split: Split = split_dataset(len(self.dataset), seed=config.seed)
        if not 0 <= config.image < len(self.split.marked):
            raise DatasetError(
                f"marked image {config.image} does not exist: the split has "
                f"{len(self.split.marked)} marked images (0..{len(self.split.marked) - 1})"
            )
        _check_marked(self.dataset, self.split, config.image, config.seed)
        self.config = config.replace(
            n_bg=config.n_bg if config.n_bg is not None else self.dataset.n_bg,
            radius=config.radius if config.radius is not None else self.dataset.radius,
        )
        self.marked_index = self.split.marked[config.image]
        self.image = self.dataset.images[self.marked_index]
        self.mask = self.dataset.masks[self.marked_index]
        ds = self.dataset
        self.marked: ImageGroup = prepare_images([self.image], [self.mask], self.device)[0]
        self._marked_groups: dict[int, ImageGroup] = {}  # the split's other marked images, prepared when asked for
        held = sum(4 * int(np.prod(image_shape(ds.images, i))) for i in (*self.split.val, *self.split.test))
        lazy = self.device.type == "cpu" and held > EAGER_BYTES  # on CUDA the tensors live in GPU memory
        self.val_groups = prepare_images(_pick(ds.images, self.split.val), _pick(ds.masks, self.split.val),
                                         self.device, lazy)
        self.test_groups = prepare_images(_pick(ds.images, self.split.test), _pick(ds.masks, self.split.test),
                                          self.device, lazy)
        self.user_markers, self.user_markers_source = load_user_markers(self.config.markers, self.dataset, self.marked_index)

    def without_object(self, part: str) -> int:
        """Number of images of ``"val"`` or ``"test"`` whose mask holds no object pixel."""
        return sum(not self.dataset.masks[i].any() for i in getattr(self.split, part))

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
        out: dict[str, object] = {
            "marked_stem": self.stem,
            "n_images": len(self.dataset),
            "dataset_name": self.dataset.name,
            "shape": list(self.image.shape[:2]),
            "data_sha256": self.fingerprint,
        }
        if self.user_markers is not None:  # only then, so that folders of studies without them still resume
            out["user_markers_sha256"] = hashlib.sha256(self.user_markers.tobytes()).hexdigest()[:16]
        return out

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
        progress: Callable[[int, int], None] | None = None,
        repeats: Sequence[int] | None = None,
    ) -> PairScores:
        """Train and score ``B`` marker pairs with the batched engine.

        Parameters
        ----------
        obj, bg : ndarray of shape (B, 2), int
            Object and background marker centres ``(row, col)``.
        seeds : sequence of int
            Decision-layer seed of each model.
        memory_mb : float, optional
        progress : callable, optional
            Called as ``progress(n, N)`` while the trained models are scored:
            ``n`` of the ``N`` validation and test images are done.
        repeats : sequence of int, optional
            Which repeated fits to compute (default: all ``config.repeats``).

        Returns
        -------
        PairScores

        Raises
        ------
        MarkerError
            If a centre lies outside the marked image or on the wrong class.
        """
        repeats = self.all_repeats if repeats is None else repeats
        r, shape = self.config.radius, self.mask.shape
        obj, bg = _check_pairs(obj, bg, self.mask)
        if len(seeds) != len(obj):
            raise MarkerError(f"{len(obj)} marker pairs but {len(seeds)} seeds")
        centres = np.concatenate([obj, bg])
        clipped = (centres < r).any() or (centres[:, 0] >= shape[0] - r).any() or (centres[:, 1] >= shape[1] - r).any()
        if clipped:  # user markers near the border: disks of different sizes
            return self._score(
                [marker_pixels(o, r, shape) for o in obj], [marker_pixels(b, r, shape) for b in bg], seeds, memory_mb,
                progress, repeats,
            )
        return self._score(
            model_pixels(obj, r, shape, self.device), model_pixels(bg, r, shape, self.device), seeds, memory_mb, progress,
            repeats,
        )

    @property
    def all_repeats(self) -> tuple[int, ...]:
        """Every repeated fit of a model: ``0 .. config.repeats - 1``."""
        return tuple(range(self.config.repeats))

    def evaluate_markers(
        self,
        obj_pixels: Sequence[NDArray[np.integer]],
        bg_pixels: Sequence[NDArray[np.integer]],
        seeds: Sequence[int],
        memory_mb: float = DEFAULT_MEMORY_MB,
        repeats: Sequence[int] | None = None,
    ) -> PairScores:
        """Train and score ``B`` models whose markers are any sets of labelled pixels.

        A model's object (background) marker is every pixel given for it: a
        disk, a scribble, or several components.  Models whose object and
        background pixel counts match learn their FLIM blocks together; the
        decision layers and the scoring of all models run as one batch, so
        the results equal :meth:`evaluate` for disks and do not depend on
        how the models are batched.

        Parameters
        ----------
        obj_pixels : sequence of ndarray of shape (K_i, 2), int
            ``(row, col)`` of each model's object pixels (``K_i >= 1``).
        bg_pixels : sequence of ndarray of shape (L_i, 2), int
            ``(row, col)`` of each model's background pixels (``L_i >= 1``).
        seeds : sequence of int
            Decision-layer seed of each model.
        memory_mb : float, optional
        repeats : sequence of int, optional
            Which repeated fits to compute (default: all ``config.repeats``).

        Returns
        -------
        PairScores
            In input order.

        Raises
        ------
        MarkerError
            If the lists differ in length, a pixel array is not (K, 2)
            integers, is empty, or has a pixel outside the marked image.
        """
        if not (len(obj_pixels) == len(bg_pixels) == len(seeds)):
            raise MarkerError(
                f"{len(obj_pixels)} object markers, {len(bg_pixels)} background markers and {len(seeds)} seeds; "
                "give one of each per model"
            )
        if len(seeds) == 0:
            raise MarkerError("no model to evaluate: the marker lists are empty")
        h, w = self.mask.shape
        checked: list[list[NDArray[np.int64]]] = [[], []]
        for name, arrays, out in (("object", obj_pixels, checked[0]), ("background", bg_pixels, checked[1])):
            for i, px in enumerate(arrays):
                a = np.asarray(px)
                if a.ndim != 2 or a.shape[1] != 2 or len(a) == 0 or a.dtype.kind not in "iu":
                    raise MarkerError(
                        f"{name} pixels of model {i} must be a non-empty integer array of shape (K, 2), "
                        f"got {a.dtype} {a.shape}"
                    )
                a = a.astype(np.int64)
                outside = (a[:, 0] < 0) | (a[:, 0] >= h) | (a[:, 1] < 0) | (a[:, 1] >= w)
                if outside.any():
                    j = int(np.argmax(outside))
                    raise MarkerError(
                        f"{name} pixel ({a[j, 0]}, {a[j, 1]}) of model {i} is outside the {h}x{w} marked image"
                    )
                out.append(a)
        return self._score(checked[0], checked[1], seeds, memory_mb, repeats=self.all_repeats if repeats is None else repeats)

    @property
    def marked_shapes(self) -> dict[int, tuple[int, int]]:
        """``(H, W)`` of each of the split's marked images, by marked-image number ``k``."""
        ds = self.dataset
        return {k: tuple(int(v) for v in image_shape(ds.images, i)[:2]) for k, i in enumerate(self.split.marked)}

    def marked_group(self, k: int) -> ImageGroup:
        """Marked image ``k`` of the split (0-based, as ``StudyConfig.image``), ready for the engine.

        Only the split's marked images can be asked for: validation and test
        images are never training images.  Groups are built once and kept.

        Raises
        ------
        DatasetError
            If the split has no marked image ``k``.
        """
        if k == self.config.image:
            return self.marked
        if not 0 <= k < len(self.split.marked):
            raise DatasetError(
                f"marked image {k} does not exist: the split has {len(self.split.marked)} marked images "
                f"(0..{len(self.split.marked) - 1})"
            )
        if k not in self._marked_groups:
            i = self.split.marked[k]
            self._marked_groups[k] = prepare_images([self.dataset.images[i]], [self.dataset.masks[i]], self.device)[0]
        return self._marked_groups[k]

    def evaluate_image_markers(
        self,
        markers: Sequence[ImageMarkers],
        seeds: Sequence[int],
        memory_mb: float = DEFAULT_MEMORY_MB,
        repeats: Sequence[int] | None = None,
        keep_trained: bool = False,
    ) -> PairScores:
        """Train and score ``B`` models whose markers lie on one or several marked images.

        A model learns its FLIM block from every marked pixel of every one of
        its images (normalisation statistics over all of them, each class's
        patches from all of them) and its decision layer from every one of
        its images' masks, as FLIM trains on its training images.  A model
        whose markers lie on the study's marked image alone gives exactly
        :meth:`evaluate_markers`' result.

        Parameters
        ----------
        markers : sequence of ImageMarkers
            Each model's markers (images named by marked-image number).
        seeds : sequence of int
            Decision-layer seed of each model.
        memory_mb : float, optional
        repeats : sequence of int, optional
            Which repeated fits to compute (default: all ``config.repeats``).
        keep_trained : bool, optional
            Keep the engine's models (every epoch) in ``PairScores.trained``;
            only when every model has the same marked images.

        Returns
        -------
        PairScores
            In input order.

        Raises
        ------
        MarkerError
            If the lists differ in length, or markers name no marked image of
            the split, lie off their image, or lack a class.
        """
        if len(markers) != len(seeds) or not len(seeds):
            raise MarkerError(f"{len(markers)} models' markers and {len(seeds)} seeds; give one seed per model (at least one)")
        shapes = self.marked_shapes
        for i, m in enumerate(markers):
            m.check(shapes, where=f"the markers of model {i}")
        repeats = self.all_repeats if repeats is None else repeats
        by_images: dict[tuple[int, ...], list[int]] = {}
        for i, m in enumerate(markers):
            by_images.setdefault(m.images, []).append(i)
        if keep_trained and len(by_images) > 1:
            raise MarkerError("keep_trained needs every model on the same marked images; evaluate them apart")
        parts, groups = [], []
        for images, idx in by_images.items():
            marked = [self.marked_group(k) for k in images]
            parts.append(self._score(
                [markers[i].obj for i in idx], [markers[i].bg for i in idx], [seeds[i] for i in idx], memory_mb,
                repeats=repeats, marked=marked, keep_trained=keep_trained,
            ))
            groups.append(np.array(idx))
        return parts[0] if len(parts) == 1 else _merge(parts, groups)

    def _score(
        self,
        obj_pixels: torch.Tensor | Sequence[NDArray[np.int64]] | Sequence[Sequence[NDArray[np.int64]]],
        bg_pixels: torch.Tensor | Sequence[NDArray[np.int64]] | Sequence[Sequence[NDArray[np.int64]]],
        seeds: Sequence[int],
        memory_mb: float,
        progress: Callable[[int, int], None] | None = None,
        repeats: Sequence[int] = (0,),
        marked: Sequence[ImageGroup] | None = None,
        keep_trained: bool = False,
    ) -> PairScores:
        """Train the models of the given marker pixels and score them on validation and test images.

        Every model is fitted once per entry of ``repeats`` (:mod:`flimexplore.study.repeats`).
        ``marked`` (several marked images, with per-image pixels per model) replaces the marked image.
        Fits that share a model's encoder (only the decision seed varies) are
        scored as extra heads on the same validation features, so a repeat
        costs a decision layer and its counting, not a FLIM encoding.
        """
        cfg = self.config
        repeats = tuple(int(r) for r in repeats)
        b, r_n = len(seeds), len(repeats)
        dseeds = decision_seeds(seeds, repeats, cfg.repeat_over)  # (B, R)
        cseeds = cluster_seeds(cfg.cluster_seed, repeats, cfg.repeat_over, cfg.clustering)
        if cseeds == [cfg.cluster_seed]:  # fit 0 alone: the study's own encoder
            cseeds = None
        trained = train_models(self.marked if marked is None else marked, obj_pixels, bg_pixels, [s[0] for s in dseeds] if r_n == 1 else dseeds,
                               epochs=cfg.epochs, lr=cfg.lr, settings=cfg.flim(), cluster_seeds=cseeds)
        a, c = head_gap(trained.params, trained.bn)  # (B * R, E, C), (B * R, E): fit r of model b is b * R + r
        m, heads, e = len(trained.bank), trained.heads, a.shape[1]
        n_val, n_test = len(self.split.val), len(self.split.test)
        val_counts = score_models(
            trained.bank, a.reshape(m, heads * e, -1), c.reshape(m, heads * e), self.val_groups, memory_mb,
            _images(progress, 0, n_val, n_val + n_test),
        ).numpy().reshape(b, r_n, e, n_val, 4)
        val_metrics = metrics_from_counts(val_counts)
        curve = val_metrics["dice"].mean(axis=3)  # (B, R, E)
        best = curve.argmax(axis=2)  # (B, R)
        pick = torch.as_tensor(best.reshape(-1), device=a.device)
        idx = torch.arange(b * r_n, device=a.device)
        test_counts = score_models(
            trained.bank, a[idx, pick].reshape(m, heads, -1), c[idx, pick].reshape(m, heads), self.test_groups,
            memory_mb, _images(progress, n_val, n_test, n_val + n_test),
        ).numpy().reshape(b, r_n, n_test, 4)
        bi, ri = np.ogrid[:b, :r_n]
        val = {k: v.mean(axis=3)[bi, ri, best] for k, v in val_metrics.items()}  # (B, R)
        test = {k: v.mean(axis=2) for k, v in metrics_from_counts(test_counts).items()}
        fits = FitScores(repeats, best + 1, val, test, np.asarray(dseeds, dtype=np.int64),
                         None if cseeds is None else np.asarray(cseeds, dtype=np.int64))
        first = torch.arange(b, device=a.device) * r_n  # every model's first fit
        bank = trained.bank if heads == r_n else trained.bank.select(first)
        p = trained.params.at_epoch(pick)
        t = lambda x: x.detach().cpu().numpy()  # noqa: E731
        arrays = {
            "kernels": t(bank.kernels), "norm_mean": t(bank.mean),
            "norm_std": t(bank.std), "kernel_labels": t(bank.kernel_labels),
            "gamma": t(p.gamma[first]), "beta": t(p.beta[first]), "weight": t(p.weight[first]), "bias": t(p.bias[first]),
            "bn_mean": t(trained.bn.mean[first]), "bn_var": t(trained.bn.var[first]),
            "bn_running_var": t(trained.bn.running_var[first]), "val_dice_curve": curve[:, 0],
        }
        for number, layer in enumerate(bank.deeper, start=2):
            arrays |= {f"{key}{number}": t(v) for key, v in zip(LAYER_KEYS, layer.astuple(), strict=True)}
        return PairScores(best[:, 0] + 1, {k: v.mean(axis=1) for k, v in val.items()},
                          {k: v.mean(axis=1) for k, v in test.items()}, arrays, fits, trained if keep_trained else None)

    def evaluate_reference(
        self, obj: NDArray[np.integer], bg: NDArray[np.integer], seeds: Sequence[int], repeats: Sequence[int] | None = None
    ) -> PairScores:
        """Score ``B`` marker pairs one fit at a time with the reference path (no parameters kept)."""
        obj, bg = _check_pairs(obj, bg, self.mask)
        cfg, ds = self.config, self.dataset
        repeats = tuple(self.all_repeats if repeats is None else repeats)
        val = ([ds.images[i] for i in self.split.val], [ds.masks[i] for i in self.split.val])
        test = ([ds.images[i] for i in self.split.test], [ds.masks[i] for i in self.split.test])
        dseeds = decision_seeds(seeds, repeats, cfg.repeat_over)
        cseeds = cluster_seeds(cfg.cluster_seed, repeats, cfg.repeat_over, cfg.clustering)
        settings = [cfg.flim() if cseeds is None else cfg.flim().replace(cluster_seed=c) for c in (cseeds or repeats)]
        results = [
            [run_reference(self.image, self.mask, o, g, cfg.radius, int(ds_[j]), val, test,
                           epochs=cfg.epochs, lr=cfg.lr, settings=settings[j]) for j in range(len(repeats))]
            for o, g, ds_ in zip(np.asarray(obj), np.asarray(bg), dseeds, strict=True)
        ]
        best = np.array([[r.best_epoch for r in row] for row in results])
        vm = [[metrics_from_counts(r.val_counts) for r in row] for row in results]
        tm = [[metrics_from_counts(r.test_counts) for r in row] for row in results]
        val = {k: np.array([[m[k].mean() for m in row] for row in vm]) for k in METRICS}
        test = {k: np.array([[m[k].mean() for m in row] for row in tm]) for k in METRICS}
        fits = FitScores(repeats, best, val, test, np.asarray(dseeds, dtype=np.int64),
                         None if cseeds is None else np.asarray(cseeds, dtype=np.int64))
        return PairScores(
            best[:, 0], {k: v.mean(axis=1) for k, v in val.items()}, {k: v.mean(axis=1) for k, v in test.items()},
            {"val_dice_curve": np.stack([row[0].val_dice for row in results])}, fits,
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


def _images(progress: Callable[[int, int], None] | None, before: int, n: int, total: int) -> Callable[[int, int], None] | None:
    """Turn score_models' image passes over `n` images into ``progress(images done, total images)``."""
    if progress is None:
        return None
    return lambda done, passes: progress(before + (n * done) // max(passes, 1), total)


def _pick(arrays: Sequence[NDArray[Any]], indices: Sequence[int]) -> Sequence[NDArray[Any]]:
    """The chosen images or masks: a view of a store or of packed masks (nothing read), or a list of the arrays."""
    return arrays.take(indices) if isinstance(arrays, (ImageStore, PackedMasks)) else [arrays[i] for i in indices]


def _check_values(dataset: Dataset) -> None:
    """Refuse NaN, inf or out-of-range pixels (arrays of a Dataset can be changed after it was built).

    An :class:`ImageStore` checked its images when it stored them, and reads give copies, so it is not read here.
    """
    if isinstance(dataset.images, ImageStore):
        return
    for stem, image in zip(dataset.stems, dataset.images, strict=True):
        if not np.isfinite(image).all():
            raise DatasetError(f"image {stem!r} of dataset {dataset.name!r} holds NaN or infinite values")
        if image.min() < 0.0 or image.max() > 1.0:
            raise DatasetError(f"image {stem!r} of dataset {dataset.name!r} has values outside [0, 1]")


def _check_marked(dataset: Dataset, split: Split, image: int, seed: int) -> None:
    """Refuse a marked image without object or background, naming the images that could be marked instead."""
    mask = dataset.masks[split.marked[image]]
    if mask.any() and not mask.all():
        return
    both = [k for k, i in enumerate(split.marked) if dataset.masks[i].any() and not dataset.masks[i].all()]
    if both:
        instead = "marked images of this split that hold both: " + ", ".join(
            f"--image {k} ({dataset.stems[split.marked[k]]!r})" for k in both
        )
    else:
        usable = {i for i, m in enumerate(dataset.masks) if m.any() and not m.all()}
        other = next(
            (s for s in range(seed + 1, seed + 200) if usable & set(split_dataset(len(dataset), seed=s).marked)), None
        )
        instead = f"none of this split's {len(split.marked)} marked images does" + (
            f"; --seed {other} draws a split whose marked images include one that does" if other is not None else ""
        )
    lacks = "object" if not mask.any() else "background"
    raise DatasetError(
        f"marked image {dataset.stems[split.marked[image]]!r} (--image {image}) of dataset {dataset.name!r} has no "
        f"{lacks} pixels; the marked image must hold both object and background (validation and test images "
        f"need not); {instead}"
    )


def load_user_markers(
    source: str | None, dataset: Dataset, index: int
) -> tuple[NDArray[np.int64] | None, str | None]:
    """The user's markers of one image: from a seeds file or folder, or from the dataset's ``markers/``.

    Parameters
    ----------
    source : str or None
        A ``<stem>-seeds.txt`` file, or a folder holding ``<stem>-seeds.txt``
        for the image's stem; None takes ``dataset.markers`` of the stem.
    dataset : Dataset
    index : int
        The image.

    Returns
    -------
    markers : ndarray of shape (N, 3), int64, or None
        Rows ``(row, col, label)``; None when there are none.
    where : str or None
        Where they came from, for messages.

    Raises
    ------
    MarkerError
        If the file or folder is missing, does not fit the image (size, x/y
        swapped), or lacks object (label 1) or background (label 0) markers.
    """
    stem, mask = dataset.stems[index], dataset.masks[index]
    if source is None:
        if stem not in dataset.markers:
            return None, None
        markers, where = dataset.markers[stem], f"markers/{stem}{SEEDS_SUFFIX} of dataset {dataset.name!r}"
    else:
        path = Path(source)
        if path.is_dir():
            path = path / f"{stem}{SEEDS_SUFFIX}"
            if not path.is_file():
                found = sorted(p.name for p in Path(source).glob(f"*{SEEDS_SUFFIX}"))[:5]
                raise MarkerError(
                    f"--markers {source}: no {path.name} for the marked image {stem!r} "
                    f"(found: {', '.join(found) or 'no seeds files'}); give the file or choose the image with --image"
                )
        elif not path.is_file():
            raise MarkerError(f"--markers {source}: no such seeds file or folder")
        markers, shape = read_seeds(path, image_shape=mask.shape)
        check_seeds_shape(path, markers, shape, mask)
        where = str(path)
    labels = set(markers[:, 2].tolist())
    for label, name in ((1, "object (label 1)"), (0, "background (label 0)")):
        if label not in labels:
            raise MarkerError(f"the user markers {where} hold no {name} pixels; a model needs both")
    return markers, where


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

    fits = None
    if all(p.fits is not None for p in parts):
        f = [p.fits for p in parts]
        fits = FitScores(
            f[0].repeats, cat([x.best_epoch for x in f]), {k: cat([x.val[k] for x in f]) for k in f[0].val},
            {k: cat([x.test[k] for x in f]) for k in f[0].test}, cat([x.seeds for x in f]), f[0].cluster_seeds,
        )
    return PairScores(
        cat([p.best_epoch for p in parts]),
        {k: cat([p.val[k] for p in parts]) for k in parts[0].val},
        {k: cat([p.test[k] for p in parts]) for k in parts[0].test},
        {k: cat([p.arrays[k] for p in parts]) for k in parts[0].arrays},
        fits,
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
