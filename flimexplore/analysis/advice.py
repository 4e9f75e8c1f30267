"""Where to draw the background marker: rank candidate positions without training a model.

:func:`advise` ranks every admissible background position on the dense
grid (:func:`~flimexplore.study.run.dense_positions`; spacing ``r`` unless
told otherwise) for one object marker, from the marked image and its own
mask only: it reads ``dataset.masks`` at the marked image's index and
nowhere else, so validation and test masks never influence the advice
(``tests/test_advice.py`` proves it by replacing them and by making them
unreadable).

The score is a weighted rank combination of the image-only descriptors of
:mod:`flimexplore.analysis.descriptors`: every descriptor is turned into
its rank percentile among the candidates (0 = lowest, 1 = highest) and the
score is ``sum_d w_d * pct_d / sum_d |w_d|``.  The shipped weights
(``advice_weights.json``, written by ``python benchmarks/advice.py
--write-weights``) are the mean Spearman rho of each descriptor with the
validation Dice over the random-marker studies (:func:`fit_weights`):
per bundled preset for that preset, pooled over all presets for any other
dataset (a user's folder); descriptors whose mean |rho| is below
:data:`MIN_RHO` get weight 0.  Rank combinations were chosen over a fitted
regression because per-image Dice levels differ a lot between images and
datasets, while the *order* of positions is what advice must get right.

Then :data:`PROBE` candidates (half the best by that score, half spread
evenly over the rest of the image, so that a descriptor weighting that does
not suit a new kind of image cannot hide its good positions) are probed
(:func:`~flimexplore.analysis.probe.probe_scores`): each candidate pair's
model is fitted on the marked image with :data:`HEADS` decision-layer seeds
and scored on the split's *other marked images* (training images with their
masks; ``probe_on="marked"`` scores on the marked image itself, the older
probe).  Probed candidates are ranked by their mean probe Dice over seeds
and images, above every unprobed one.  Seeds matter: one fit's validation
Dice carries its seed's noise, so the probe averages several, and its
spread between seeds gives the advice's reliability
(:func:`~flimexplore.analysis.reliability.probe_reliability`): when marker
position explains too little of the probe's variance, or the best positions
barely beat the median, the advice abstains and says so in one line.
``probe=0`` ranks by the descriptors alone (no reliability).

Only training images are read: the marked image, and with
``probe_on="training"`` the other marked images of the split, with their
masks; never a validation or test mask (``tests/test_advice.py`` inverts
them and makes them unreadable: the advice stays bit-identical).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.stats import rankdata, spearmanr

from flimexplore.analysis.descriptors import DESCRIPTORS, position_descriptors
from flimexplore.data import Dataset, load_dataset, split_dataset
from flimexplore.errors import ConfigError, DatasetError, MarkerError
from flimexplore.markers import sample_markers, sample_object_markers
from flimexplore.study.run import dense_positions

__all__ = ["MIN_RHO", "Advice", "AdviceSettings", "advise", "background_for_split", "default_weights", "fit_weights", "object_for_split", "score_positions"]

MIN_RHO = 0.1
"""Descriptors whose mean Spearman rho with Dice is smaller in magnitude get weight 0."""

PROBE = 192
"""Candidates re-ranked by the probe by default."""
HEADS = 5
"""Decision-layer seeds per probed candidate (extra heads on one encoder: cheap)."""
BUDGET = 1 / 20
"""Advice may cost this fraction of a dense study of the image (the probe's size follows from it)."""
PROBE_ON = ("training", "marked")
"""Where probe models are scored: the split's other marked (training) images, or the marked image itself."""


@dataclass(frozen=True)
class AdviceSettings:
    """What :func:`advise` was asked (round-trips through ``advice.json``).

    Parameters
    ----------
    dataset : str
        Preset name or folder path.
    image : int
        Which of the split's marked images (as ``StudyConfig.image``).
    split : int or None
        Take the object marker a study with this seed uses for split ``split``.
    obj : tuple of int or None
        Or give the object marker ``(row, col)`` directly.
    radius : int or None
        Marker radius; None takes the dataset's suggestion.
    top : int
        How many positions the picture rings.
    seed : int
        Seed of the data split and of the study's object markers.
    n_images : int or None
        Use only the first ``n_images`` images (as ``StudyConfig.n_images``).
    spacing : int or None
        Grid spacing of the candidates; None means the radius (the dense grid).
    probe : int
        Re-rank the ``probe`` best candidates by the fit of their own model
        on the marked image (:func:`~flimexplore.analysis.probe.marked_fit`);
        0 ranks by the descriptors alone.
    rerank : {"probe", "mix"}
        How probed candidates are ordered: by the probe's Dice alone, or by
        the mean of the probe's and the descriptor score's rank percentiles.
    budget : float or None
        Background advice probes at most as many candidates as fit in this
        fraction of the cost of a dense study of the image
        (:func:`~flimexplore.analysis.probe.probe_budget`, default 1/20;
        ``probe`` stays the upper bound); None probes exactly ``probe``.
        Object advice probes every object position (up to ``probe``).
    heads : int
        Decision-layer seeds per probed candidate; the probe is their mean,
        and their spread gives the reliability (at least 2 for a reliability).
    probe_on : {"training", "marked"}
        Score probe models on the split's other marked images (training
        images, with their masks), or on the marked image itself; without
        other marked images, the marked image is used.
    epochs, lr : int, float
        Training settings of the probe models (as the study's).
    device : str
        Device of the probe models.
    target : {"background", "object"}
        Which marker to advise.  ``"object"`` ranks object positions (the
        dense grid inside the object) for a fixed background marker: the one
        a ``study --vary object`` with this seed uses for ``split``, or
        ``background``.  Every candidate is ranked by its model's fit on the
        marked image (the probe); no descriptor weights are used, because no
        image-only descriptor was found to predict the Dice of object markers
        (``benchmarks/RESULTS.md``, border claim).
    background : tuple of int or None
        The fixed background marker ``(row, col)`` for ``target="object"``
        (instead of ``split``).
    """

    dataset: str = "fish"
    image: int = 0
    split: int | None = 0
    obj: tuple[int, int] | None = None
    radius: int | None = None
    top: int = 5
    seed: int = 0
    n_images: int | None = None
    spacing: int | None = None
    probe: int = PROBE
    rerank: str = "probe"
    epochs: int = 20
    lr: float = 0.1
    device: str = "cpu"
    target: str = "background"
    background: tuple[int, int] | None = None
    heads: int = HEADS
    probe_on: str = "training"
    budget: float | None = BUDGET

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dictionary."""
        d = asdict(self)
        for key in ("obj", "background"):
            d[key] = [int(v) for v in getattr(self, key)] if getattr(self, key) is not None else None
        return d


@dataclass(frozen=True, eq=False)
class Advice:
    """Ranked background positions for one object marker (or object positions for one background marker).

    Attributes
    ----------
    image_stem : str
    image : ndarray of shape (H, W, 3), float32
        The marked image (for pictures).
    obj : ndarray of shape (2,), int64
        The fixed marker: the object marker, or with ``settings.target ==
        "object"`` the background marker.
    radius : int
    centres : ndarray of shape (M, 2), int64
        Candidates, best first.
    scores : ndarray of shape (M,), float64
        Advice score of each candidate (higher is better), descending.
    descriptors : dict of str to ndarray of shape (M,)
        The descriptors of each candidate, in the same order.
    weights : dict of str to float
    seconds : float
        Wall-clock time of the ranking (descriptors and scores).
    settings : AdviceSettings
    reliability : dict or None
        :func:`~flimexplore.analysis.reliability.probe_reliability` of the
        probed candidates, with ``probe_images`` (the stems scored); None
        without a probe.  ``reliability["abstain"]`` means: do not present a
        best position.
    """

    image_stem: str
    image: NDArray[np.float32] = field(repr=False)
    obj: NDArray[np.int64]
    radius: int
    centres: NDArray[np.int64] = field(repr=False)
    scores: NDArray[np.float64] = field(repr=False)
    descriptors: dict[str, NDArray[np.float64]] = field(repr=False)
    weights: dict[str, float]
    seconds: float
    settings: AdviceSettings
    reliability: dict[str, Any] | None = None

    @property
    def abstains(self) -> bool:
        """The probe cannot tell positions apart here (see :attr:`reliability`): no best position is presented."""
        return bool(self.reliability and self.reliability["abstain"])

    def top(self, n: int) -> NDArray[np.int64]:
        """The ``n`` best centres, shape ``(min(n, M), 2)``."""
        return self.centres[:n]

    def score_map(self) -> NDArray[np.float64]:
        """Advice score per pixel: that of the nearest candidate within ``r``, NaN elsewhere; shape (H, W)."""
        h, w = self.image.shape[:2]
        seeds = np.ones((h, w), bool)
        seeds[self.centres[:, 0], self.centres[:, 1]] = False
        dist, (rr, cc) = ndimage.distance_transform_edt(seeds, return_indices=True)
        at = np.full((h, w), np.nan)
        at[self.centres[:, 0], self.centres[:, 1]] = self.scores
        out = at[rr, cc]
        out[dist > self.radius] = np.nan
        return out

    @property
    def ranked(self) -> str:
        """Prefix of the ranked positions' columns: ``bg`` (or ``obj`` for object advice)."""
        return "obj" if self.settings.target == "object" else "bg"

    def table(self) -> list[dict[str, Any]]:
        """Rows of ``advice.csv``: rank (1 = best), bg_row, bg_col (obj_row, obj_col for object advice), score."""
        p = self.ranked
        return [{"rank": i + 1, f"{p}_row": int(c[0]), f"{p}_col": int(c[1]), "score": round(float(s), 6)}
                for i, (c, s) in enumerate(zip(self.centres, self.scores, strict=True))]

    def summary(self) -> dict[str, Any]:
        """What ``advice.json`` holds."""
        fixed = "bg" if self.ranked == "obj" else "obj"
        where = "the split's other marked (training) images" if self.settings.probe_on == "training" else "the marked image"
        probe = (f"each model fitted on the marked image with {self.settings.heads} decision-layer seeds and scored on "
                 f"{where}")
        if self.ranked == "obj":
            method = f"every object position probed: {probe}"
        else:
            method = ("weighted rank combination of image-only descriptors"
                      + (f", then {self.settings.probe} candidates (half the best by it, half spread over the image) "
                         f"probed and ranked by the probe ({self.settings.rerank}): {probe}" if self.settings.probe else ""))
        return {
            "image_stem": self.image_stem, "target": self.settings.target,
            f"{fixed}_row": int(self.obj[0]), f"{fixed}_col": int(self.obj[1]),
            "radius": self.radius, "seconds": round(self.seconds, 4), "n_candidates": len(self.centres),
            "settings": self.settings.to_dict(), "method": method, "weights": self.weights,
            "reliability": self.reliability, "abstain": self.abstains,
            "top": self.table()[: self.settings.top],
        }


def default_weights(dataset: str | None = None) -> dict[str, float]:
    """The shipped descriptor weights (``advice_weights.json``).

    Parameters
    ----------
    dataset : str, optional
        A bundled preset's name gives the weights fitted on that preset's
        random studies; anything else (a folder, None) the weights pooled
        over every preset.
    """
    doc = json.loads(resources.files("flimexplore.analysis").joinpath("advice_weights.json").read_text())
    chosen = doc.get("per_dataset", {}).get(dataset) or doc["pooled"]
    return {k: float(v) for k, v in chosen.items()}


def fit_weights(cases: Sequence[tuple[dict[str, NDArray], NDArray]], min_rho: float = MIN_RHO) -> dict[str, float]:
    """Weights = mean Spearman rho of each descriptor with Dice over cases.

    Parameters
    ----------
    cases : sequence of (descriptors, dice)
        One per (image, object marker): descriptors of its background
        markers (dict of arrays of shape (n,)) and their validation Dice (n,).
    min_rho : float, optional
        Mean |rho| below this gives weight 0.

    Returns
    -------
    weights : dict of str to float
        Rounded to 3 decimals; descriptors constant within every case are left out.
    """
    rhos: dict[str, list[float]] = {}
    for desc, dice in cases:
        for name in (n for n in DESCRIPTORS if n in desc):
            x = np.asarray(desc[name])
            if np.ptp(x) > 0 and np.ptp(dice) > 0:
                rhos.setdefault(name, []).append(float(spearmanr(x, dice).statistic))
    weights = {}
    for name, values in rhos.items():
        rho = float(np.nanmean(values)) if values else 0.0
        weights[name] = round(rho, 3) if abs(rho) >= min_rho else 0.0
    return weights


def score_positions(descriptors: dict[str, NDArray], weights: dict[str, float]) -> NDArray[np.float64]:
    """Weighted combination of rank percentiles, shape ``(M,)``; higher is better.

    Raises
    ------
    ConfigError
        If a weight names an unknown descriptor or every weight is 0.
    """
    unknown = set(weights) - set(DESCRIPTORS)
    if unknown:
        raise ConfigError(f"advice weights name unknown descriptors {sorted(unknown)}; known: {list(DESCRIPTORS)}")
    total = sum(abs(w) for w in weights.values())
    if total == 0:
        raise ConfigError("every advice weight is 0; give at least one descriptor a weight")
    m = len(next(iter(descriptors.values())))
    score = np.zeros(m)
    for name, w in weights.items():
        if w:
            x = np.asarray(descriptors[name], dtype=np.float64)
            pct = (rankdata(x) - 1) / max(m - 1, 1)
            score += w * pct
    return score / total


def object_for_split(mask: NDArray[np.bool_], radius: int, seed: int, image: int, split: int) -> NDArray[np.int64]:
    """The object marker a study with ``seed`` uses for ``split`` of marked image ``image``.

    Matches :func:`flimexplore.study.run.plan_markers`: the object centre is
    the first draw of ``default_rng([seed, image, split])``, whatever the
    number of background markers.
    """
    return sample_markers(mask, 1, radius, np.random.default_rng([seed, image, split])).obj


def _marked(settings: AdviceSettings, dataset: Dataset | None) -> tuple[Dataset, int, list[int]]:
    """The dataset, the marked image's index and the indices of the split's marked (training) images."""
    ds = dataset if dataset is not None else load_dataset(settings.dataset, n_images=settings.n_images)
    marked = split_dataset(len(ds), seed=settings.seed).marked
    if not 0 <= settings.image < len(marked):
        raise DatasetError(f"marked image {settings.image} does not exist: the split has {len(marked)} marked images (0..{len(marked) - 1})")
    return ds, marked[settings.image], list(marked)


def _check(settings: AdviceSettings) -> None:
    if settings.top < 1:
        raise ConfigError(f"top (--top) must be an integer >= 1, got {settings.top!r}")
    if settings.target not in ("background", "object"):
        raise ConfigError(f"target (--vary) must be 'background' or 'object', got {settings.target!r}")
    if settings.probe < 0 or settings.rerank not in ("probe", "mix"):
        raise ConfigError(f"probe (--probe) must be >= 0 and rerank (--rerank) 'probe' or 'mix', got {settings.probe!r}, {settings.rerank!r}")
    if settings.budget is not None and not settings.budget > 0:
        raise ConfigError(f"budget (--budget) must be a fraction > 0 of a dense study's cost, got {settings.budget!r}")
    if settings.heads < 1 or settings.probe_on not in PROBE_ON:
        raise ConfigError(f"heads (--heads) must be >= 1 and probe_on (--probe-on) one of {', '.join(PROBE_ON)}, "
                          f"got {settings.heads!r}, {settings.probe_on!r}")


def advise(settings: AdviceSettings | None = None, *, data: Dataset | None = None,
           weights: dict[str, float] | None = None, **kwargs: Any) -> Advice:
    """Rank background positions for one object marker (or, ``target="object"``, the reverse).

    Parameters
    ----------
    settings : AdviceSettings, optional
        Or give its fields as keyword arguments (``advise(dataset="eggs", split=2)``).
    data : Dataset, optional
        Already loaded data (otherwise ``settings.dataset`` is loaded).  Only
        the split's marked (training) images and their masks are read.
    weights : dict of str to float, optional
        Descriptor weights; default :func:`default_weights` of the dataset's name.

    Returns
    -------
    Advice
        With ``reliability`` when candidates were probed; ``advice.abstains``
        says that the probe cannot tell positions apart here.

    Raises
    ------
    ConfigError
        If both or neither of ``split`` and ``obj`` are given, or a setting is out of range.
    DatasetError, MarkerError
        If the data or the marker do not fit.
    """
    settings = settings if settings is not None else AdviceSettings(**({"split": None} if "obj" in kwargs else {}) | kwargs)
    if (settings.split is None) == (settings.obj is None) and settings.target == "background":
        raise ConfigError("give exactly one of split (--split) and obj (--object ROW,COL)")
    _check(settings)
    if settings.target == "object":
        return _advise_object(settings, data)
    ds, idx, training = _marked(settings, data)
    image, mask = ds.images[idx], np.asarray(ds.masks[idx], dtype=bool)  # a training mask: the advised image's
    radius = int(settings.radius if settings.radius is not None else ds.radius)
    t0 = time.perf_counter()
    if settings.obj is not None:
        obj = _given_marker(settings.obj, mask, ds.stems[idx], on_object=True)
    else:
        obj = object_for_split(mask, radius, settings.seed, settings.image, int(settings.split))
    centres = dense_positions(mask, obj, radius, settings.spacing)
    desc = position_descriptors(image, mask, obj, centres, radius)
    w = default_weights(ds.name) if weights is None else dict(weights)
    score = score_positions(desc, w)
    fit = np.full(len(centres), np.nan)
    reliability = None
    if settings.probe > 0:
        picked = _probed(centres, score, _n_probe(settings, ds, idx, training, len(centres)))
        probe, reliability = _probe_candidates(settings, ds, idx, training, np.repeat(obj[None], len(picked), 0),
                                               centres[picked], radius)
        score, fit = _rerank(settings, score, picked, probe)
    order = np.lexsort((centres[:, 1], centres[:, 0], -score))  # best first; ties in raster order
    seconds = time.perf_counter() - t0
    desc["marked_fit"] = fit
    return Advice(ds.stems[idx], image, obj, radius, centres[order], score[order],
                  {k: v[order] for k, v in desc.items()}, w, seconds, settings, reliability)


def _n_probe(settings: AdviceSettings, ds: Dataset, idx: int, training: list[int], n_candidates: int) -> int:
    """Candidates to probe: ``settings.probe``, fewer when the time budget says so (at least 8)."""
    if settings.budget is None:
        return settings.probe
    from flimexplore.analysis.probe import probe_budget, train_step

    split = split_dataset(len(ds), seed=settings.seed)  # image counts only: no held-out pixel or mask is read
    k = len(training) - 1 if settings.probe_on == "training" and len(training) > 1 else 1
    step = train_step(np.shape(ds.masks[idx])[:2])
    afford = probe_budget(n_candidates, len(split.val), len(split.test), settings.epochs, settings.heads, step, k,
                          settings.budget)
    return max(min(8, settings.probe), min(settings.probe, afford))


def _probed(centres: NDArray[np.int64], score: NDArray[np.float64], n: int, spread_only: bool = False) -> NDArray[np.intp]:
    """Candidates to probe: half the best by ``score``, half spread evenly over the other positions.

    The spread half is a farthest-point sample (deterministic, from the best
    unpicked candidate), so that a weighting of the descriptors that does not
    suit a new kind of image still leaves good positions anywhere on it a
    chance to be probed.  ``spread_only``: one start (the best by ``score``),
    the rest spread.
    """
    k = min(n, len(centres))
    best = np.lexsort((centres[:, 1], centres[:, 0], -score))
    first = 1 if spread_only else (k + 1) // 2
    chosen = list(best[:first])
    rest = best[first:]
    if len(chosen) < k and len(rest):
        pts = centres[rest].astype(np.float64)
        taken = centres[np.array(chosen)].astype(np.float64)
        near = ((pts[:, None, :] - taken[None]) ** 2).sum(-1).min(axis=1)
        for _ in range(k - len(chosen)):
            j = int(np.argmax(near))
            chosen.append(int(rest[j]))
            near = np.minimum(near, ((pts - pts[j]) ** 2).sum(-1))
            near[j] = -1.0
    return np.array(chosen, dtype=np.intp)


def _probe_candidates(
    settings: AdviceSettings, ds: Dataset, idx: int, training: list[int], objs: NDArray[np.int64],
    bgs: NDArray[np.int64], radius: int,
) -> tuple[NDArray[np.float64], dict[str, Any] | None]:
    """Mean probe Dice of candidate pairs, and the probe's reliability (training images only)."""
    from flimexplore.analysis.probe import probe_scores, train_step
    from flimexplore.analysis.reliability import probe_reliability

    others = [j for j in training if j != idx] if settings.probe_on == "training" else []
    images = [ds.images[j] for j in (idx, *others)]
    masks = [np.asarray(ds.masks[j], dtype=bool) for j in (idx, *others)]  # training masks only
    seeds = [[int(np.random.SeedSequence([settings.seed, settings.image, int(o[0]), int(o[1]), int(b[0]), int(b[1]), h])
                  .generate_state(1)[0]) for h in range(settings.heads)] for o, b in zip(objs, bgs, strict=True)]
    table = probe_scores(images, masks, 0, objs, bgs, radius, seeds, settings.epochs, settings.lr, settings.device,
                         pixel_step=train_step(masks[0].shape))
    scored = table[:, :, 1:] if others else table[:, :, :1]  # (P, H, images): on images it was not fitted to
    per_fit = scored.mean(axis=2)
    reliability = None
    if settings.heads >= 2 and len(per_fit) >= 2:
        where = (f"the {len(others)} other marked image{'s' if len(others) > 1 else ''} "
                 f"({', '.join(ds.stems[j] for j in others)})" if others else "the marked image")
        reliability = probe_reliability(per_fit, where, seed=settings.seed, what=settings.target) | {
            "probe_images": [ds.stems[j] for j in others] or [ds.stems[idx]],
        }
    return per_fit.mean(axis=1), reliability


def _rerank(
    settings: AdviceSettings, score: NDArray[np.float64], picked: NDArray[np.intp], probe: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Probed candidates above every other (scores in [1.5, 2]), ordered by the probe (or its mix with the descriptors)."""
    k = len(picked)
    fit = np.full(len(score), np.nan)
    fit[picked] = probe
    if settings.rerank == "mix":
        inner = 0.5 * (rankdata(probe) - 1) / max(k - 1, 1) + 0.5 * (rankdata(score[picked]) - 1) / max(k - 1, 1)
    else:
        inner = probe + 1e-6 * (rankdata(score[picked]) - 1) / max(k - 1, 1)  # descriptor score breaks ties
    out = score.copy()
    out[picked] = 1.5 + 0.5 * (inner - inner.min()) / max(float(np.ptp(inner)), 1e-12)
    return out, fit


def _given_marker(point: tuple[int, int], mask: NDArray[np.bool_], stem: str, on_object: bool) -> NDArray[np.int64]:
    """A user-given fixed marker centre, checked: inside the image and on its class."""
    what, other = ("object", "background") if on_object else ("background", "object")
    p = np.asarray(point, dtype=np.int64)
    h, w = mask.shape
    if p.shape != (2,) or not (0 <= p[0] < h and 0 <= p[1] < w):
        raise MarkerError(f"{what} marker {point!r} is not a (row, col) inside the {h}x{w} image {stem!r}")
    if bool(mask[p[0], p[1]]) != on_object:
        raise MarkerError(f"{what} marker ({p[0]}, {p[1]}) lies on the {other} of image {stem!r}")
    return p


def background_for_split(mask: NDArray[np.bool_], radius: int, seed: int, image: int, split: int) -> NDArray[np.int64]:
    """The background marker a ``study --vary object`` with ``seed`` fixes for ``split`` (its first draw)."""
    return sample_object_markers(mask, 1, radius, np.random.default_rng([seed, image, split])).background


def _advise_object(settings: AdviceSettings, dataset: Dataset | None) -> Advice:
    """Rank object positions inside the object for one fixed background marker, by the probe."""
    if (settings.split is None) == (settings.background is None):
        raise ConfigError("object advice: give exactly one of split (--split) and background (--background ROW,COL)")
    ds, idx, training = _marked(settings, dataset)
    image, mask = ds.images[idx], np.asarray(ds.masks[idx], dtype=bool)  # a training mask: the advised image's
    radius = int(settings.radius if settings.radius is not None else ds.radius)
    t0 = time.perf_counter()
    if settings.background is not None:
        bg = _given_marker(settings.background, mask, ds.stems[idx], on_object=False)
    else:
        bg = background_for_split(mask, radius, settings.seed, settings.image, int(settings.split))
    centres = dense_positions(mask, bg, radius, settings.spacing, on_object=True)
    inside = ndimage.distance_transform_edt(mask)[centres[:, 0], centres[:, 1]].astype(np.float64)
    # no image-only descriptor predicts object markers: every object position is probed (up to ``probe``,
    # spread evenly over the object from its deepest point). The time budget is not applied: an object holds
    # few positions, so its dense study is cheap, and probing a twentieth of them left the advice near random
    # (benchmarks/advice.py --vary object: 63.5th percentile with the budget, 77.0th without)
    picked = _probed(centres, inside, min(settings.probe, len(centres)) if settings.probe > 0 else len(centres),
                     spread_only=True)
    probe, reliability = _probe_candidates(settings, ds, idx, training, centres[picked],
                                           np.repeat(bg[None], len(picked), 0), radius)
    fit = np.full(len(centres), np.nan)
    fit[picked] = probe
    # unprobed positions follow the probed ones, in the order of their nearest probed neighbour
    near = ((centres[:, None, :] - centres[picked][None]) ** 2).sum(-1).argmin(axis=1)
    score = np.where(np.isfinite(fit), 1.0 + fit, probe[near] - 1e-9 * np.sqrt(((centres - centres[picked][near]) ** 2).sum(1)))
    order = np.lexsort((centres[:, 1], centres[:, 0], -score))  # best first; ties in raster order
    desc = {"marked_fit": fit[order], "depth_in_object": inside[order]}
    return Advice(ds.stems[idx], image, bg, radius, centres[order], score[order], desc, {}, time.perf_counter() - t0,
                  settings, reliability)
