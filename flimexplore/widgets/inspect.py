"""What the explorer computes about one model or one marker pair (NumPy in, NumPy out).

These functions call the engine (:class:`~flimexplore.study.context.StudyContext`,
:mod:`flimexplore.analysis.projections`) on a finished :class:`~flimexplore.study.run.StudyResult`;
the explorer's :mod:`~flimexplore.widgets.app` calls them when the user
clicks, and notebooks call them directly (paper Fig. 4).  No widget here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from flimexplore.analysis.projections import feature_projection, patch_projection
from flimexplore.engine.scores import metrics_from_counts
from flimexplore.errors import MarkerError
from flimexplore.markers import MarkerSet, marker_pixels, validate_markers
from flimexplore.study.readout_table import TRAINED
from flimexplore.study.readouts import readout_maps
from flimexplore.study.repeats import interval_columns
from flimexplore.study.run import StudyResult, model_seed

__all__ = [
    "ModelDetail", "PairScore", "model_detail", "pair_detail", "pair_from_markers", "pair_markers", "pick_models",
    "score_markers",
    "score_pair",
]

USER_BG_INDEX = 1_000_000
"""``bg_index`` used to derive the seed of a user pair that matches no sampled marker."""


@dataclass(frozen=True, eq=False)
class ModelDetail:
    """One model of a study, ready to draw (paper Fig. 4 and the explorer's detail view).

    Attributes
    ----------
    model : int
    row : dict
        Its results row (``val_dice``, ``val_jaccard``, ...).
    label : str
        Short caption, e.g. ``"fish, high"``.
    marked : ndarray of shape (H, W, 3)
        The marked image; ``obj`` and ``bg`` are its marker centres ``(row, col)``.
    obj, bg : ndarray of shape (2,), int64
    radius : int
    val_image : int
        Position of the shown image in the validation set.
    image : ndarray of shape (H', W', 3)
    truth, pred : ndarray of shape (H', W'), bool
        Ground truth and the model's prediction on that image (under ``readout``).
    image_scores : dict of str to float
        Dice, Jaccard, sensitivity and specificity on that image.
    patches, features : dict or None
        t-SNE tables (:func:`~flimexplore.analysis.projections.patch_projection`,
        :func:`~flimexplore.analysis.projections.feature_projection`); None when not computed.
    evidence : ndarray of shape (H', W'), float32, or None
        The readout's evidence map on that image (:func:`flimexplore.study.readouts.readout_maps`):
        the trained layer's logit gap (its exact CAM) or a decoder's saliency.
    readout : str
        ``"trained"`` or the adaptive decoder whose row, prediction and evidence these are.
    """

    model: int
    row: dict[str, Any]
    label: str
    marked: NDArray[np.float32]
    obj: NDArray[np.int64]
    bg: NDArray[np.int64]
    radius: int
    val_image: int
    image: NDArray[np.float32]
    truth: NDArray[np.bool_]
    pred: NDArray[np.bool_]
    image_scores: dict[str, float]
    patches: dict[str, NDArray] | None
    features: dict[str, NDArray] | None
    evidence: NDArray[np.float32] | None = None
    readout: str = TRAINED


@dataclass(frozen=True, eq=False)
class PairScore:
    """Scores of one user-placed marker pair and where it falls among the sampled markers.

    Attributes
    ----------
    obj, bg : tuple of int
        Marker centres ``(row, col)``.
    split : int
        Split whose sampled models it is compared with first (its object marker when not moved).
    val, test : dict of str to float
        Mean validation and test scores at the best epoch.
    rank : int
        1 + the number of sampled models with a higher validation Dice (1 = best).
    n : int
        Number of sampled models.
    percentile : float
        Percentage of sampled models with a validation Dice at most this pair's.
    best_epoch : int
        1-based epoch with the best mean validation Dice.
    arrays : dict of str to ndarray, optional
        The trained model's parameters (for :func:`pair_detail`).
    """

    obj: tuple[int, int]
    bg: tuple[int, int]
    split: int
    val: dict[str, float]
    test: dict[str, float]
    rank: int
    n: int
    percentile: float
    best_epoch: int = 0
    arrays: dict[str, NDArray] | None = None
    fit_dice: tuple[float, ...] = ()

    def row(self, model: int = -2) -> dict[str, Any]:
        """The pair as a results row (the columns the detail view reads; with the interval columns for several fits)."""
        out: dict[str, Any] = {
            "model": int(model), "split": self.split, "bg_index": -1, "obj_row": self.obj[0], "obj_col": self.obj[1],
            "bg_row": self.bg[0], "bg_col": self.bg[1], "best_epoch": self.best_epoch,
        }
        out |= {f"val_{k}": v for k, v in self.val.items()} | {f"test_{k}": v for k, v in self.test.items()}
        if len(self.fit_dice) > 1:
            out |= interval_columns(np.asarray(self.fit_dice))
        return out

    def interval_text(self) -> str:
        """`` (95 % CI lo-hi over R fits)`` for several fits, else empty."""
        if len(self.fit_dice) < 2:
            return ""
        r = self.row()
        return f" (95 % CI {r['val_dice_lo']:.3f}-{r['val_dice_hi']:.3f} over {len(self.fit_dice)} fits)"

    @property
    def dice(self) -> float:
        """Validation Dice of the pair."""
        return self.val["dice"]


def pick_models(result: StudyResult, split: int | None = None) -> dict[str, int]:
    """Model ids with the highest, the median and the lowest validation Dice (paper Fig. 4 rows).

    Returns
    -------
    dict
        ``{"high": id, "medium": id, "low": id}``.
    """
    rows = [r for r in result.rows if split is None or r["split"] == split]
    if not rows:
        raise MarkerError("the study has no finished model to pick from")
    order = sorted(rows, key=lambda r: (r["val_dice"], r["model"]))
    return {"high": order[-1]["model"], "medium": order[len(order) // 2]["model"], "low": order[0]["model"]}


def _row(result: StudyResult, model: int, decoder: str = TRAINED) -> dict[str, Any]:
    rows = result.decoder_rows(decoder)
    for r in rows:
        if r["model"] == model:
            return r
    raise MarkerError(f"model {model} is not among the {len(rows)} finished models of this study")


def model_detail(
    result: StudyResult,
    model: int,
    *,
    val_image: int = 0,
    projections: bool = True,
    max_images: int | None = 2,
    n_superpixels: int | None = None,
    label: str = "",
    seed: int = 0,
    decoder: str = TRAINED,
) -> ModelDetail:
    """Prediction, evidence map, per-image scores and t-SNE projections of one finished model.

    Parameters
    ----------
    result : StudyResult
    model : int
        Model id (the ``model`` column).
    val_image : int
        Which validation image to predict (wraps around).
    projections : bool
        Compute the two t-SNE projections (the slow part, about a second each).
    max_images : int or None
        Validation images used for the feature projection.
    n_superpixels : int or None
        Superpixels per image of the feature projection (None: the dataset's suggestion, as in the
        paper; with few images, more superpixels put more centres on the small objects).
    label : str
        Caption stored in the detail.
    seed : int
        t-SNE seed.
    decoder : str
        The readout: ``"trained"`` (the decision layer) or one of the study's adaptive decoders; the
        row, the prediction and the evidence map are that readout's.

    Returns
    -------
    ModelDetail
    """
    return _detail(result, _row(result, model, decoder), result.arrays[model], val_image, projections, max_images,
                   n_superpixels, label, seed, decoder)


def pair_detail(
    result: StudyResult,
    score: PairScore,
    *,
    val_image: int = 0,
    projections: bool = True,
    max_images: int | None = 2,
    n_superpixels: int | None = None,
    label: str = "your pair",
    seed: int = 0,
) -> ModelDetail:
    """:func:`model_detail` of your own marker pair (scored by :func:`score_pair`); its model id is -2."""
    if score.arrays is None:
        raise MarkerError("this pair score has no trained model to inspect; score it again with score_pair")
    row = score.row() | {"radius": int(result.config.radius)}
    return _detail(result, row, score.arrays, val_image, projections, max_images, n_superpixels, label, seed)


def _detail(
    result: StudyResult, row: dict[str, Any], arrays: dict[str, NDArray], val_image: int, projections: bool,
    max_images: int | None, n_superpixels: int | None, label: str, seed: int, decoder: str = TRAINED,
) -> ModelDetail:
    ctx = result.context
    val = list(ctx.split.val)
    k = int(val_image) % len(val)
    image, truth = ctx.dataset.images[val[k]], ctx.dataset.masks[val[k]]
    evidence, pred = readout_maps(ctx, arrays, image, decoder)
    counts = np.array([(pred & truth).sum(), (pred & ~truth).sum(), (~pred & truth).sum(), (~pred & ~truth).sum()])
    scores = {name: float(v) for name, v in metrics_from_counts(counts).items()}
    obj = np.array([row["obj_row"], row["obj_col"]], dtype=np.int64)
    bg = np.array([row["bg_row"], row["bg_col"]], dtype=np.int64)
    return ModelDetail(
        model=int(row["model"]), row=dict(row), label=label, marked=ctx.image, obj=obj, bg=bg,
        radius=int(row["radius"]), val_image=k, image=image, truth=truth, pred=pred, image_scores=scores,
        patches=patch_projection(ctx, arrays, obj, bg, seed) if projections else None,
        features=feature_projection(ctx, arrays, n_superpixels, max_images, seed) if projections else None,
        evidence=evidence, readout=decoder,
    )


def _pair_seed(result: StudyResult, obj: NDArray, bg: NDArray, split: int) -> int:
    """The seed of the sampled model with these markers, or a fresh one for a new pair."""
    for r in result.rows:
        if (r["obj_row"], r["obj_col"], r["bg_row"], r["bg_col"]) == (*obj.tolist(), *bg.tolist()):
            return int(r["seed"])
    cfg = result.config
    return model_seed(cfg.seed, cfg.image, split, USER_BG_INDEX)


def score_pair(result: StudyResult, obj: ArrayLike, bg: ArrayLike, split: int = 0) -> PairScore:
    """Train and score the model of one object/background marker pair (the single-model fast path).

    Parameters
    ----------
    result : StudyResult
        The study to compare with (its data, settings and sampled Dice).
    obj, bg : array_like of shape (2,), int
        Marker centres ``(row, col)``; the object centre must lie on the
        object and the background centre on the background.
    split : int
        Split the pair belongs to (for its seed when it matches no sampled pair).

    Returns
    -------
    PairScore

    Raises
    ------
    MarkerError
        If a centre is outside the image or on the wrong class.
    """
    ctx = result.context
    o = np.asarray(obj, dtype=np.int64).reshape(2)
    b = np.asarray(bg, dtype=np.int64).reshape(2)
    validate_markers(MarkerSet(o, b[None], result.config.radius), ctx.mask)
    scores = ctx.evaluate(o[None], b[None], [_pair_seed(result, o, b, split)])
    val = {k: float(v[0]) for k, v in scores.val.items()}
    sampled = np.array([r["val_dice"] for r in result.rows])
    rank = 1 + int((sampled > val["dice"]).sum())
    pct = 100.0 * float((sampled <= val["dice"]).mean()) if len(sampled) else 100.0
    return PairScore(
        obj=(int(o[0]), int(o[1])), bg=(int(b[0]), int(b[1])), split=int(split), val=val,
        test={k: float(v[0]) for k, v in scores.test.items()}, rank=rank, n=len(sampled), percentile=pct,
        best_epoch=int(scores.best_epoch[0]), arrays={k: v[0] for k, v in scores.arrays.items()},
        fit_dice=_fit_dice(scores),
    )


def score_markers(result: StudyResult, markers: ArrayLike, split: int = 0) -> PairScore:
    """Train and score the model of whole user markers (scribbles, several strokes per class).

    Parameters
    ----------
    result : StudyResult
    markers : array_like of shape (N, 3), int
        Seeds rows ``(row, col, label)``; every pixel of a label is used.
    split : int
        Split it is compared with (for the seed).

    Returns
    -------
    PairScore
        ``obj`` and ``bg`` are the centres of the largest marker of each label, for display.

    Raises
    ------
    MarkerError
        If a label has no pixel or a pixel lies outside the marked image.
    """
    m = np.asarray(markers, dtype=np.int64).reshape(-1, 3)
    obj_px, bg_px = m[m[:, 2] == 1, :2], m[m[:, 2] == 0, :2]
    if not len(obj_px) or not len(bg_px):
        raise MarkerError("the markers need object (label 1) and background (label 0) pixels to train a model")
    cfg = result.config
    seed = model_seed(cfg.seed, cfg.image, split, USER_BG_INDEX + 1)
    scores = result.context.evaluate_markers([obj_px], [bg_px], [seed])
    val = {k: float(v[0]) for k, v in scores.val.items()}
    sampled = np.array([r["val_dice"] for r in result.rows if r["split"] >= 0])
    obj, bg = pair_from_markers(m, cfg.radius, result.context.mask.shape)
    return PairScore(
        obj=obj, bg=bg, split=int(split), val=val, test={k: float(v[0]) for k, v in scores.test.items()},  # type: ignore[arg-type]
        rank=1 + int((sampled > val["dice"]).sum()), n=len(sampled),
        percentile=100.0 * float((sampled <= val["dice"]).mean()) if len(sampled) else 100.0,
        best_epoch=int(scores.best_epoch[0]), arrays={k: v[0] for k, v in scores.arrays.items()},
        fit_dice=_fit_dice(scores),
    )


def _fit_dice(scores: Any) -> tuple[float, ...]:
    """Validation Dice of each fit of the first scored model (one value without repeats)."""
    if scores.fits is None:
        return (float(scores.val["dice"][0]),)
    return tuple(round(float(v), 6) for v in scores.fits.val["dice"][0])


def pair_markers(obj: ArrayLike | None, bg: ArrayLike | None, radius: int, shape: tuple[int, int]) -> NDArray[np.int64]:
    """Disk pixels of an object and a background marker as LIDS seeds rows ``(row, col, label)``.

    Examples
    --------
    >>> pair_markers((2, 2), None, 1, (5, 5)).tolist()
    [[1, 2, 1], [2, 1, 1], [2, 2, 1], [2, 3, 1], [3, 2, 1]]
    """
    disks = [(marker_pixels(np.asarray(c), radius, shape), lab) for c, lab in ((obj, 1), (bg, 0)) if c is not None]
    parts = [np.column_stack([px, np.full(len(px), lab)]) for px, lab in disks]
    if not parts:
        raise MarkerError("there is no marker to save: place an object or a background marker first")
    return np.concatenate(parts).astype(np.int64)


def pair_from_markers(
    markers: NDArray[np.integer], radius: int | None = None, shape: tuple[int, int] | None = None
) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """Object and background centres of seeds rows: the centre of the largest marker of each label.

    A marker is a connected component (8-adjacency) of the pixels of one
    label.  Its centre is the pixel whose disk of ``radius`` (clipped to
    ``shape``) matches it best, so disks cut by the image border keep their
    centre; without a radius it is the pixel nearest to the centroid.

    Examples
    --------
    >>> pair_from_markers(pair_markers((2, 2), (0, 7), 1, (9, 9)), 1, (9, 9))
    ((2, 2), (0, 7))
    """
    from scipy import ndimage

    m = np.asarray(markers, dtype=np.int64).reshape(-1, 3)
    out: list[tuple[int, int] | None] = []
    for label in (1, 0):
        px = m[m[:, 2] == label, :2]
        if not len(px):
            out.append(None)
            continue
        size = tuple(px.max(axis=0) + 1)
        grid = np.zeros(size, bool)
        grid[tuple(px.T)] = True
        comp, _ = ndimage.label(grid, structure=np.ones((3, 3)))
        ids = comp[tuple(px.T)]
        big = px[ids == np.bincount(ids).argmax()]
        fit = -((big - big.mean(axis=0)) ** 2).sum(axis=1)
        if radius is not None and shape is not None:
            fit = fit * 1e-6 + np.array([_disk_match(c, radius, shape, grid) for c in big])
        centre = big[int(np.argmax(fit))]
        out.append((int(centre[0]), int(centre[1])))
    return out[0], out[1]


def _disk_match(centre: NDArray, radius: int, shape: tuple[int, int], grid: NDArray[np.bool_]) -> int:
    """Pixels of the clipped disk at ``centre`` inside the marker, minus those outside it."""
    disk = marker_pixels(centre, radius, shape)
    inside = (disk[:, 0] < grid.shape[0]) & (disk[:, 1] < grid.shape[1])
    hits = int(grid[tuple(disk[inside].T)].sum())
    return 2 * hits - len(disk)
