"""The advisor's probe: how good a marker pair's own model is, from training images only.

:func:`probe_scores` trains each candidate pair's FLIM block and decision
layer exactly as a study does, on the marked image and its mask, with
several decision-layer seeds (extra heads on the same features, cheap), and
scores the last epoch's prediction on given *probe images* against their own
masks.  The advisor gives it the other marked (training) images of the
split: a pair's score there is its model's quality on images it was not
fitted to, which is what validation Dice measures, without reading a
validation or test mask.  :func:`marked_fit` is the older, cheaper probe:
one seed, scored on the marked image itself (the image it was fitted to).

Why several seeds: one fit's Dice carries the noise of its decision-layer
initialisation (see :mod:`flimexplore.study.repeats`); the mean over ``H``
seeds estimates a position's expected quality, and the spread between seeds
tells the advisor how much of the probe's variation is position rather than
noise (its reliability, :func:`flimexplore.analysis.reliability.probe_reliability`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["TRAIN_PIXELS", "marked_fit", "probe_budget", "probe_scores", "train_step"]

TRAIN_PIXELS = 4096
"""About this many pixels of the marked image fit a probe's decision layers (34 parameters each)."""


def train_step(shape: tuple[int, int]) -> int:
    """Grid step that keeps about :data:`TRAIN_PIXELS` pixels of an image of this shape (1 for small images).

    Examples
    --------
    >>> train_step((128, 128)), train_step((400, 400)), train_step((40, 40))
    (2, 6, 1)
    """
    return max(1, int((shape[0] * shape[1] / TRAIN_PIXELS) ** 0.5))


# Relative costs of the engine's steps on one image, in units of encoding it (measured on the CPU
# (benchmarks/results/sweep_xeon.json, phases of 32 models): one decision-layer epoch on all its
# pixels costs about 0.9 encodings, counting one head's outcome on it about 0.08; the probe's heads
# train in a loop of their own and cost about twice the model's arithmetic, hence PROBE_OVERHEAD.
_EPOCH, _COUNT, PROBE_OVERHEAD = 0.9, 0.08, 2.0


def probe_budget(
    n_candidates: int, n_val: int, n_test: int, epochs: int, heads: int, step: int, n_probe_images: int,
    fraction: float,
) -> int:
    """How many candidates the probe can afford within ``fraction`` of a dense study's cost.

    A dense study trains one model per candidate: ``epochs`` decision-layer
    epochs on the marked image, an encoding of every validation and test
    image, and a count of every epoch's head on every validation image (the
    best epoch's on the test images).  A probed candidate costs its ``heads``
    decision layers on ``1 / step**2`` of the marked image's pixels, encodings
    of the marked and probe images, and a count per head on each probe image.
    The ratio of the two, from the engine's measured relative costs, sets
    the number; the benchmark (``benchmarks/advice.py``) measures what it
    really is.

    Examples
    --------
    >>> probe_budget(1347, 42, 45, 20, 5, 2, 2, 1 / 20)  # fish: 87 held-out images make a dense study dear
    225
    >>> probe_budget(1313, 5, 8, 20, 5, 2, 2, 1 / 20)  # nuclei: 13 held-out images, a cheap dense study
    49
    """
    study = epochs * _EPOCH + (n_val + n_test) + (n_val * epochs + n_test) * _COUNT
    probe = PROBE_OVERHEAD * (epochs * heads * _EPOCH / step**2 + (1 + n_probe_images) + n_probe_images * heads * _COUNT)
    return max(1, int(n_candidates * fraction * study / probe))


def probe_scores(
    images: Sequence[NDArray[np.floating]],
    masks: Sequence[NDArray[np.bool_]],
    marked: int,
    obj: NDArray[np.integer],
    bgs: NDArray[np.integer],
    radius: int,
    seeds: Sequence[Sequence[int]],
    epochs: int = 20,
    lr: float = 0.1,
    device: str = "cpu",
    pixel_step: int = 1,
) -> NDArray[np.float64]:
    """Dice of each candidate pair's model, fitted on the marked image, on every probe image.

    Parameters
    ----------
    images : sequence of ndarray of shape (H_i, W_i, 3), float in [0, 1]
        The marked image and the probe images (training images only).
    masks : sequence of ndarray of shape (H_i, W_i), bool
        Their masks.
    marked : int
        Which of ``images`` the models are fitted to (its mask is the training target).
    obj : array_like of shape (2,) or (M, 2), int
        Object marker centre, shared by every model, or one per model.
    bgs : array_like of shape (2,) or (M, 2), int
        Background marker centres, one per model, or one shared by every model.
    radius : int
    seeds : sequence of M sequences of H ints
        Decision-layer seeds of each model's ``H`` fits (they share the model's encoder).
    epochs, lr : int, float
        As the study's settings.
    device : str, optional
    pixel_step : int, optional
        Fit the decision layers on every ``pixel_step``-th row and column of
        the marked image (:func:`~flimexplore.engine.decision.train_decision`);
        the advisor uses :func:`train_step` (about 4 096 pixels), 1 is a study's fit.

    Returns
    -------
    dice : ndarray of shape (M, H, len(images)), float64
        At the last epoch (no validation image picks a best epoch); the
        column of the marked image is the fit to its own training target.
    """
    from flimexplore.engine.batched import (
        model_pixels,
        prepare_images,
        resolve_device,
        score_models,
        train_models,
    )
    from flimexplore.engine.decision import head_gap
    from flimexplore.engine.scores import metrics_from_counts

    dev = resolve_device(device)
    bgs = np.asarray(bgs, dtype=np.int64).reshape(-1, 2)
    objs = np.asarray(obj, dtype=np.int64).reshape(-1, 2)
    m = max(len(bgs), len(objs))
    objs, bgs = np.broadcast_to(objs, (m, 2)).copy(), np.broadcast_to(bgs, (m, 2)).copy()
    rows = [[int(s) for s in row] for row in seeds]
    if len(rows) != m or len({len(r) for r in rows}) != 1:
        raise ValueError(f"give {m} rows of equally many seeds, got {len(rows)}")
    heads = len(rows[0])
    masks = [np.asarray(mk, dtype=bool) for mk in masks]
    train = prepare_images([images[marked]], [masks[marked]], dev)[0]
    shape = masks[marked].shape
    trained = train_models(train, model_pixels(objs, radius, shape, dev), model_pixels(bgs, radius, shape, dev),
                           rows if heads > 1 else [r[0] for r in rows], epochs=epochs, lr=lr, pixel_step=pixel_step)
    a, c = head_gap(trained.params, trained.bn)  # (M * H, E, C): fit h of model b is b * H + h
    groups = prepare_images(list(images), masks, dev)
    counts = score_models(trained.bank, a[:, -1].reshape(m, heads, -1), c[:, -1].reshape(m, heads), groups)
    return metrics_from_counts(counts.numpy())["dice"].astype(np.float64)  # (M, H, N)


def marked_fit(
    image: NDArray[np.floating],
    mask: NDArray[np.bool_],
    obj: NDArray[np.integer],
    bgs: NDArray[np.integer],
    radius: int,
    seeds: Sequence[int],
    epochs: int = 20,
    lr: float = 0.1,
    device: str = "cpu",
) -> NDArray[np.float64]:
    """Dice on the marked image of each pair's model, trained on the marked image only (one seed each).

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), float in [0, 1]
    mask : ndarray of shape (H, W), bool
        The marked image's own mask (training target and score reference).
    obj : array_like of shape (2,) or (M, 2), int
        Object marker centre, shared by every model, or one per model.
    bgs : ndarray of shape (2,) or (M, 2), int
        Background marker centres, one per model, or one shared by every model.
    radius : int
    seeds : sequence of int
        Decision-layer seed of each model (length M).
    epochs, lr : int, float
        As the study's settings.
    device : str, optional

    Returns
    -------
    dice : ndarray of shape (M,), float64
        At the last epoch (the validation set that picks the best epoch is not used).
    """
    scores = probe_scores([image], [mask], 0, obj, bgs, radius, [[int(s)] for s in seeds], epochs, lr, device)
    return scores[:, 0, 0]
