"""Everything a study needs of its data, prepared once: split, marked image, tensors.

:class:`StudyContext` loads the dataset, applies the paper's split, picks
the marked image, converts the validation and test images to tensors on
the compute device (large sets on the CPU: chunk by chunk as they are
scored, so memory does not grow with them), and evaluates batches of marker pairs with the
batched engine (or the reference path).  The study runner and the
interactive explorer both go through it, so a marker the user drags in the
explorer is scored exactly like a sampled one.

Its helpers live beside it: :mod:`~flimexplore.study.pair_scores` (what
evaluating returns), :mod:`~flimexplore.study.checks` (data and marker
checks), :mod:`~flimexplore.study.stored_models` (features and patches of a
stored model).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from flimexplore.data import Dataset, Split, load_dataset, split_dataset
from flimexplore.data.store import ImageStore, PackedMasks, image_shape
from flimexplore.engine.batched import (
    DEFAULT_MEMORY_MB,
    ImageGroup,
    model_pixels,
    predict_gap,
    prepare_images,
    resolve_device,
)
from flimexplore.errors import DatasetError, MarkerError
from flimexplore.markers import marker_pixels
from flimexplore.study.checks import _check_marked, _check_pairs, _check_values, load_user_markers
from flimexplore.study.config import StudyConfig
from flimexplore.study.marked import ImageMarkers
from flimexplore.study.pair_scores import ARRAY_KEYS, FitScores, PairScores, merge_scores
from flimexplore.study.scoring import score_pixels, score_reference
from flimexplore.study.stored_models import model_features, model_patches, unpack_models

__all__ = ["ARRAY_KEYS", "FitScores", "PairScores", "StudyContext", "load_user_markers", "merge_scores",
           "model_features", "model_patches", "unpack_models"]

# Validation and test images larger than this (RGB bytes) are converted to Lab chunk by chunk on the
# CPU instead of once up front: 313 + 316 images of 400x400 would otherwise hold 1.2 GB of tensors.
EAGER_BYTES = 256 * 2**20


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
        return parts[0] if len(parts) == 1 else merge_scores(parts, groups)

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
        """Train the models of the given marker pixels and score them (:func:`~flimexplore.study.scoring.score_pixels`)."""
        return score_pixels(self, obj_pixels, bg_pixels, seeds, memory_mb, progress, repeats, marked, keep_trained)

    def evaluate_reference(
        self, obj: NDArray[np.integer], bg: NDArray[np.integer], seeds: Sequence[int], repeats: Sequence[int] | None = None
    ) -> PairScores:
        """Score ``B`` marker pairs one fit at a time with the reference path (no parameters kept)."""
        return score_reference(self, obj, bg, seeds, repeats)

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
        bank, params, bn = unpack_models([arrays], self.device, self.config.flim())
        group = prepare_images([image], [np.zeros(image.shape[:2], bool)], self.device)[0]
        return (predict_gap(group.images[0], bank, params, bn)[0] > 0).cpu().numpy()


def _pick(arrays: Sequence[NDArray[Any]], indices: Sequence[int]) -> Sequence[NDArray[Any]]:
    """The chosen images or masks: a view of a store or of packed masks (nothing read), or a list of the arrays."""
    return arrays.take(indices) if isinstance(arrays, (ImageStore, PackedMasks)) else [arrays[i] for i in indices]
