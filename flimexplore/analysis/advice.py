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

Then the :data:`PROBE` best candidates are re-ranked by the fit of their
own model on the marked image (:func:`~flimexplore.analysis.probe.marked_fit`,
trained and scored on the marked image and its own mask only): in
``benchmarks/advice.py`` it lifted the advisor's top-5 percentile among
random markers on eggs from 51 to 78 and on fundus from 68 to 82 (fish: 80
to 83).  ``probe=0`` ranks by the descriptors alone (what the explorer's
instant advice layer uses).
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
        if self.ranked == "obj":
            method = "every object position's model trained and scored on the marked image only (probe)"
        else:
            method = ("weighted rank combination of image-only descriptors"
                      + (f", then the best {self.settings.probe} re-ranked by their model's fit on the marked image"
                         f" ({self.settings.rerank})" if self.settings.probe else ""))
        return {
            "image_stem": self.image_stem, "target": self.settings.target,
            f"{fixed}_row": int(self.obj[0]), f"{fixed}_col": int(self.obj[1]),
            "radius": self.radius, "seconds": round(self.seconds, 4), "n_candidates": len(self.centres),
            "settings": self.settings.to_dict(), "method": method, "weights": self.weights,
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


def _marked(settings: AdviceSettings, dataset: Dataset | None) -> tuple[Dataset, int]:
    ds = dataset if dataset is not None else load_dataset(settings.dataset, n_images=settings.n_images)
    marked = split_dataset(len(ds), seed=settings.seed).marked
    if not 0 <= settings.image < len(marked):
        raise DatasetError(f"marked image {settings.image} does not exist: the split has {len(marked)} marked images (0..{len(marked) - 1})")
    return ds, marked[settings.image]


def advise(settings: AdviceSettings | None = None, *, data: Dataset | None = None,
           weights: dict[str, float] | None = None, **kwargs: Any) -> Advice:
    """Rank background positions for one object marker.

    Parameters
    ----------
    settings : AdviceSettings, optional
        Or give its fields as keyword arguments (``advise(dataset="eggs", split=2)``).
    data : Dataset, optional
        Already loaded data (otherwise ``settings.dataset`` is loaded).  Only
        the marked image and its mask are read.
    weights : dict of str to float, optional
        Descriptor weights; default :func:`default_weights` of the dataset's name.

    Returns
    -------
    Advice

    Raises
    ------
    ConfigError
        If both or neither of ``split`` and ``obj`` are given, or ``top`` < 1.
    DatasetError, MarkerError
        If the data or the marker do not fit.
    """
    settings = settings if settings is not None else AdviceSettings(**({"split": None} if "obj" in kwargs else {}) | kwargs)
    if (settings.split is None) == (settings.obj is None):
        raise ConfigError("give exactly one of split (--split) and obj (--object ROW,COL)")
    if settings.top < 1:
        raise ConfigError(f"top (--top) must be an integer >= 1, got {settings.top!r}")
    if settings.target not in ("background", "object"):
        raise ConfigError(f"target (--for) must be 'background' or 'object', got {settings.target!r}")
    if settings.target == "object":
        return _advise_object(settings, data)
    if settings.probe < 0 or settings.rerank not in ("probe", "mix"):
        raise ConfigError(f"probe (--probe) must be >= 0 and rerank (--rerank) 'probe' or 'mix', got {settings.probe!r}, {settings.rerank!r}")
    ds, idx = _marked(settings, data)
    image, mask = ds.images[idx], np.asarray(ds.masks[idx], dtype=bool)  # the ONLY mask read
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
    if settings.probe > 0:
        score, fit = _probe(settings, image, mask, obj, centres, radius, score)
    order = np.lexsort((centres[:, 1], centres[:, 0], -score))  # best first; ties in raster order
    seconds = time.perf_counter() - t0
    desc["marked_fit"] = fit
    return Advice(ds.stems[idx], image, obj, radius, centres[order], score[order],
                  {k: v[order] for k, v in desc.items()}, w, seconds, settings)


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
    """Rank object positions inside the object for one fixed background marker, by the marked-image probe."""
    from flimexplore.analysis.probe import marked_fit

    if (settings.split is None) == (settings.background is None):
        raise ConfigError("object advice: give exactly one of split (--split) and background (--background ROW,COL)")
    ds, idx = _marked(settings, dataset)
    image, mask = ds.images[idx], np.asarray(ds.masks[idx], dtype=bool)  # the ONLY mask read
    radius = int(settings.radius if settings.radius is not None else ds.radius)
    t0 = time.perf_counter()
    if settings.background is not None:
        bg = _given_marker(settings.background, mask, ds.stems[idx], on_object=False)
    else:
        bg = background_for_split(mask, radius, settings.seed, settings.image, int(settings.split))
    centres = dense_positions(mask, bg, radius, settings.spacing, on_object=True)
    seeds = [int(np.random.SeedSequence([settings.seed, settings.image, int(r), int(c)]).generate_state(1)[0]) for r, c in centres]
    fit = marked_fit(image, mask, centres, bg, radius, seeds, settings.epochs, settings.lr, settings.device)
    inside = ndimage.distance_transform_edt(mask)[centres[:, 0], centres[:, 1]]
    order = np.lexsort((centres[:, 1], centres[:, 0], -fit))  # best first; ties in raster order
    desc = {"marked_fit": fit[order], "depth_in_object": inside[order].astype(np.float64)}
    return Advice(ds.stems[idx], image, bg, radius, centres[order], fit[order], desc, {}, time.perf_counter() - t0, settings)


def _probe(settings: AdviceSettings, image: NDArray, mask: NDArray, obj: NDArray, centres: NDArray,
           radius: int, score: NDArray) -> tuple[NDArray, NDArray]:
    """Re-rank the ``settings.probe`` best candidates by their model's fit on the marked image.

    Probed candidates get scores in [1.5, 2], above every unprobed one
    (whose descriptor scores are at most 1).
    """
    from flimexplore.analysis.probe import marked_fit

    k = min(settings.probe, len(centres))
    best = np.lexsort((centres[:, 1], centres[:, 0], -score))[:k]
    seeds = [int(np.random.SeedSequence([settings.seed, settings.image, int(r), int(c)]).generate_state(1)[0]) for r, c in centres[best]]
    fit = np.full(len(centres), np.nan)
    fit[best] = marked_fit(image, mask, obj, centres[best], radius, seeds, settings.epochs, settings.lr, settings.device)
    if settings.rerank == "mix":
        inner = 0.5 * (rankdata(fit[best]) - 1) / max(k - 1, 1) + 0.5 * (rankdata(score[best]) - 1) / max(k - 1, 1)
    else:
        inner = fit[best] + 1e-6 * (rankdata(score[best]) - 1) / max(k - 1, 1)  # descriptor score breaks ties
    out = score.copy()
    out[best] = 1.5 + 0.5 * (inner - inner.min()) / max(float(np.ptp(inner)), 1e-12)
    return out, fit
