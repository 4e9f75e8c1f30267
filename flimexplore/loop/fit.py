"""Models the loop trains on the marked images alone: the current model's view of an image, and probes.

A policy may look at what the current model predicts on a marked image, and
the advised policy trains probe models; both use the model at its **last**
epoch, because the best epoch is chosen on validation images (which no
policy may see).  The models are trained exactly as a study trains them
(:func:`flimexplore.engine.batched.train_models` on the marked images: the
same FLIM block, decision layer and seeds); the refit that scores a step on
the validation images trains the same model (``tests/test_loop_policies.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from flimexplore.engine.settings import FlimSettings
from flimexplore.loop.view import MarkedView
from flimexplore.study.config import StudyConfig
from flimexplore.study.marked import ImageMarkers
from flimexplore.study.repeats import cluster_seeds, decision_seeds
from flimexplore.study.run import model_seed

__all__ = ["FitSettings", "MarkedModel", "fit_marked", "fit_settings"]


@dataclass(frozen=True)
class FitSettings:
    """How every model of one repeat of the loop is trained.

    Attributes
    ----------
    seed : int
        Decision-layer seed (the same at every step of a repeat, so that a
        step's change in Dice comes from its new marker, not from a new seed).
    flim : FlimSettings
        The FLIM encoder (with the repeat's k-means++ seed when that is re-drawn).
    epochs : int
    lr : float
    """

    seed: int
    flim: FlimSettings
    epochs: int = 20
    lr: float = 0.1


def fit_settings(config: StudyConfig, repeat: int) -> FitSettings:
    """The training of repeat ``repeat`` of a loop on ``config``'s marked image.

    Repeat ``r`` is fit ``r`` of the study's model 0 (:mod:`flimexplore.study.repeats`):
    repeat 0 uses the seed of model 0 of ``flimexplore study`` with the same
    settings (split 0, background marker 0), so step 0 of repeat 0 reproduces
    that model; each further repeat re-draws the decision seed (and the
    k-means++ seed with ``--clustering kmeans++``) as ``--repeats`` does.
    """
    base = model_seed(config.seed, config.image, 0, 0)
    dseed = decision_seeds([base], [repeat], config.repeat_over)[0][0]
    cseeds = cluster_seeds(config.cluster_seed, [repeat], config.repeat_over, config.clustering)
    flim = config.flim() if cseeds is None else config.flim().replace(cluster_seed=int(cseeds[0]))
    return FitSettings(int(dseed), flim, config.epochs, config.lr)


@dataclass(frozen=True, eq=False)
class MarkedModel:
    """``B`` models trained on marked images only, used at their last epoch.

    Attributes
    ----------
    trained : TrainedModels
        The engine's models (every epoch kept).
    images : tuple of int
        The marked images they trained on.
    """

    trained: Any
    images: tuple[int, ...]

    def gap(self, view: MarkedView, k: int) -> NDArray[np.float32]:
        """Logit gap (object minus background) of every model on marked image ``k``: shape (B, H, W)."""
        from flimexplore.engine.batched import predict_gap
        from flimexplore.engine.decision import DecisionParams

        t = self.trained
        last = DecisionParams(*(p[:, -1] for p in t.params.astuple()))
        image = view.group(k).images[0]
        return predict_gap(image, t.bank, last, t.bn).cpu().numpy()

    def dice(self, view: MarkedView, ks: Sequence[int]) -> NDArray[np.float64]:
        """Mean per-image Dice of every model on marked images ``ks`` against their own masks: shape (B,)."""
        from flimexplore.engine.batched import score_models
        from flimexplore.engine.decision import head_gap
        from flimexplore.engine.scores import metrics_from_counts

        t = self.trained
        a, c = head_gap(t.params, t.bn)
        counts = score_models(t.bank, a[:, -1:], c[:, -1:], view.groups(ks)).numpy()  # (B, 1, N, 4)
        return metrics_from_counts(counts)["dice"][:, 0].mean(axis=1).astype(np.float64)


def fit_marked(view: MarkedView, markers: Sequence[ImageMarkers], fit: FitSettings) -> MarkedModel:
    """Train one model per entry of ``markers`` on their marked images (the same images for all).

    Parameters
    ----------
    view : MarkedView
    markers : sequence of ImageMarkers
        Each model's markers; every entry lists the same images.
    fit : FitSettings

    Returns
    -------
    MarkedModel
    """
    from flimexplore.engine.batched import train_models

    images = markers[0].images
    if any(m.images != images for m in markers):
        raise ValueError("every probe model must train on the same marked images")
    trained = train_models(view.groups(images), [m.obj for m in markers], [m.bg for m in markers],
                           [fit.seed] * len(markers), epochs=fit.epochs, lr=fit.lr, settings=fit.flim)
    return MarkedModel(trained, images)
