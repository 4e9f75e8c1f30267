"""A cheap probe for re-ranking advice: how well a pair's own model fits the marked image.

:func:`marked_fit` trains the pair's FLIM block and decision layer exactly
as a study does, but on the marked image only, and scores the last epoch's
prediction against the marked image's own mask.  Nothing is scored on the
validation or test images, so it may be used by the advisor.  One model
costs about one validation image's worth of scoring instead of a whole
validation set's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["marked_fit"]


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
    """Dice on the marked image of each pair's model, trained on the marked image only.

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
    marked = prepare_images([image], [np.asarray(mask, dtype=bool)], dev)[0]
    shape = mask.shape
    trained = train_models(marked, model_pixels(objs, radius, shape, dev), model_pixels(bgs, radius, shape, dev),
                           list(seeds), epochs=epochs, lr=lr)
    a, c = head_gap(trained.params, trained.bn)
    counts = score_models(trained.bank, a[:, -1:], c[:, -1:], [marked]).numpy()
    return metrics_from_counts(counts)["dice"][:, 0, 0].astype(np.float64)
