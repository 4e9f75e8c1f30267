"""What a finished (or stopped) study produced: its rows, fits and parameters, its heatmaps and its summary."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from flimexplore.errors import ConfigError
from flimexplore.markers import (
    MarkerGroups,
    MarkerPixels,
    MarkerSet,
    ObjectMarkerSet,
)
from flimexplore.study.config import StudyConfig
from flimexplore.study.context import StudyContext
from flimexplore.study.heatmap import HeatLayer, paint_heatmap, paint_pixels
from flimexplore.study.marked import ImageMarkers
from flimexplore.study.plan import USER_SPLIT
from flimexplore.study.readout_summary import readout_summary
from flimexplore.study.readout_table import TRAINED
from flimexplore.study.repeats import varied
from flimexplore.study.uncertainty import ALPHA, position_summary

__all__ = ["StudyResult"]


@dataclass
class StudyResult:
    """Everything a finished (or stopped) study produced.

    Attributes
    ----------
    config : StudyConfig
        Resolved settings.
    markers : list of MarkerSet, of MarkerGroups or of ObjectMarkerSet
        One per split (:class:`ObjectMarkerSet` when the study varies the
        object marker; ``flimexplore score`` of a seeds file gives a
        :class:`MarkerPixels`).
    rows : list of dict
        One per finished model (columns of :data:`flimexplore.study.store.COLUMNS`);
        the model of the user's own markers (if any) is last, with ``split``
        and ``bg_index`` -1 and the marked pixels nearest each class's centre
        as its object and background positions.
    arrays : dict of int to dict
        Parameters of each finished model, keyed by model id.
    device : str
    elapsed_s : float
    complete : bool
        False when the study was stopped before its last model.
    context : StudyContext
    fits : list of dict
        Every fit of every finished model (columns of
        :data:`flimexplore.study.store.FIT_COLUMNS`), sorted by model and
        repeat; with one fit per model, one per row.
    readouts : list of dict
        With other readouts (``config.decoders``, ``config.attention``): the
        rows of ``results.csv``, one per model and readout, with a ``decoder``
        column and the attention scores (:mod:`flimexplore.study.readouts`);
        empty otherwise.  ``rows`` stays the trained layer's.
    """

    config: StudyConfig
    markers: list[MarkerSet] | list[MarkerGroups] | list[ObjectMarkerSet] | list[MarkerPixels]
    rows: list[dict[str, Any]]
    arrays: dict[int, dict[str, NDArray]] = field(repr=False)
    device: str
    elapsed_s: float
    complete: bool
    context: StudyContext = field(repr=False)
    fits: list[dict[str, Any]] = field(default_factory=list, repr=False)
    readouts: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def decoder_rows(self, decoder: str = TRAINED) -> list[dict[str, Any]]:
        """The rows of one readout: from :attr:`readouts` when the study has them, else ``rows`` (trained only)."""
        if not self.readouts:
            if decoder != TRAINED:
                raise ConfigError(f"this study has no {decoder!r} readout; run it with --decoders {TRAINED},{decoder}")
            return self.rows
        rows = [r for r in self.readouts if r["decoder"] == decoder]
        if not rows and decoder not in self.config.decoders:
            raise ConfigError(f"this study has no {decoder!r} readout (it has {', '.join(self.config.decoders)})")
        return rows

    def for_decoder(self, decoder: str) -> StudyResult:
        """The same study seen through one readout: ``rows`` are that readout's (heatmaps, columns, figures)."""
        return replace(self, rows=self.decoder_rows(decoder))

    def column(self, name: str, split: int | None = None) -> NDArray:
        """One results column as an array (optionally of one split; -1 is the user's model)."""
        return np.array([r[name] for r in self.rows if split is None or r["split"] == split])

    def heatmap(self, split: int, metric: str = "val_dice") -> HeatLayer:
        """The paper's heatmap of one split's varied markers (every disk of a model in its score).

        The varied markers are the background markers, or the object markers
        of a ``vary="object"`` study.  ``split = -1`` paints the background
        pixels of the user's own markers.
        """
        shape = self.context.mask.shape
        rows = [r for r in self.rows if r["split"] == split]
        if split == USER_SPLIT:
            markers = self.context.user_markers
            score = rows[0][metric] if rows else float("nan")
            return paint_pixels(shape, markers[markers[:, 2] == 0, :2] if markers is not None else np.zeros((0, 2)), score)
        ms = self.markers[split]
        if isinstance(ms, ImageMarkers):  # markers on several marked images: those of the study's marked image
            ms = ms.pixels_on(self.config.image)
        if isinstance(ms, MarkerPixels):
            return paint_pixels(shape, ms.bg, rows[0][metric] if rows else float("nan"))
        if isinstance(ms, ObjectMarkerSet):
            centres = np.array([[r["obj_row"], r["obj_col"]] for r in rows]).reshape(-1, 2)
            return paint_heatmap(shape, centres, np.array([r[metric] for r in rows]), self.config.radius)
        if isinstance(ms, MarkerGroups):
            centres = np.concatenate([ms.bg[r["bg_index"]] for r in rows]).reshape(-1, 2)
            scores = np.repeat([r[metric] for r in rows], ms.bg.shape[1])
            return paint_heatmap(shape, centres, scores, self.config.radius)
        centres = np.array([[r["bg_row"], r["bg_col"]] for r in rows]).reshape(-1, 2)
        return paint_heatmap(shape, centres, np.array([r[metric] for r in rows]), self.config.radius)

    def summary(self) -> dict[str, Any]:
        """Summary numbers (what ``summary.json`` holds).

        Minimum, maximum and mean are over the sampled models; the model of
        the user's markers, if any, is reported apart as ``user_markers``.
        """
        val = np.array([r["val_dice"] for r in self.rows if r["split"] >= 0])
        ctx = self.context
        out: dict[str, Any] = {
            "n_models": len(self.rows),
            "complete": self.complete,
            "device": self.device,
            "elapsed_s": round(self.elapsed_s, 3),
            "config": self.config.to_dict(),
            "n_val_images_without_object": ctx.without_object("val"),
            "n_test_images_without_object": ctx.without_object("test"),
        }
        user = [r for r in self.rows if r["split"] == USER_SPLIT]
        if user and ctx.user_markers is not None:
            labels = ctx.user_markers[:, 2]
            out["user_markers"] = {
                "source": ctx.user_markers_source, "model": user[0]["model"],
                "n_object_pixels": int((labels == 1).sum()), "n_background_pixels": int((labels == 0).sum()),
                "val_dice": user[0]["val_dice"], "test_dice": user[0]["test_dice"],
            }
        if self.config.repeats > 1 and self.complete:
            out["repeats"] = self.repeat_summary()
        if self.readouts:
            out["readouts"] = readout_summary(self.readouts, self.config.decoders)
        if len(val):
            test = np.array([r["test_dice"] for r in self.rows if r["split"] >= 0])
            out |= {
                "val_dice_min": float(val.min()), "val_dice_max": float(val.max()),
                "val_dice_mean": float(val.mean()), "test_dice_min": float(test.min()),
                "test_dice_max": float(test.max()), "test_dice_mean": float(test.mean()),
                "splits": [
                    {"split": s, "n_models": int(len(self.column("val_dice", s))),
                     "val_dice_min": float(self.column("val_dice", s).min()),
                     "val_dice_max": float(self.column("val_dice", s).max())}
                    for s in range(self.config.splits) if len(self.column("val_dice", s))
                ],
            }
        return out


    def repeat_summary(self) -> dict[str, Any]:
        """What the repeated fits say (``summary.json["repeats"]``): spread, position share, ties with the best.

        Per split (one fixed marker and its varied markers) and over all
        sampled models: :func:`~flimexplore.study.uncertainty.position_summary`;
        ``rank_agreement_halves`` is Spearman's rho between the markers' mean
        Dice over the first and over the second half of the fits.
        """
        from scipy.stats import spearmanr

        cfg, n_rep = self.config, self.config.repeats
        sampled = [f for f in self.fits if f["split"] >= 0 and f["repeat"] < n_rep]
        rows = [r for r in self.rows if r["split"] >= 0]
        what = "object markers" if cfg.vary == "object" else "background markers"
        sd = np.array([r["val_dice_sd"] for r in rows], dtype=np.float64)
        width = np.array([r["val_dice_hi"] - r["val_dice_lo"] for r in rows], dtype=np.float64)
        out: dict[str, Any] = {
            "n_repeats": n_rep, "repeat_over": cfg.repeat_over, "varied": list(varied(cfg.repeat_over, cfg.clustering)),
            "interval": f"Student t, 95 %, {n_rep - 1} df, of each marker's mean validation Dice over its fits",
            "ties": f"Welch t-test against the best marker, two-sided, Holm-corrected, alpha {ALPHA}",
            "val_dice_sd_median": _rounded(np.nanmedian(sd)) if len(sd) else None,
            "val_dice_sd_max": _rounded(np.nanmax(sd)) if len(sd) else None,
            "interval_width_median": _rounded(np.nanmedian(width)) if len(width) else None,
        }
        half = n_rep // 2
        by_model: dict[int, list[float]] = {}
        for f in sorted(sampled, key=lambda f: (f["model"], f["repeat"])):
            by_model.setdefault(f["model"], []).append(f["val_dice"])
        full = [v for v in by_model.values() if len(v) == n_rep]
        if len(full) > 2:
            a, b = np.array([np.mean(v[:half]) for v in full]), np.array([np.mean(v[half:]) for v in full])
            rho = spearmanr(a, b).statistic if np.ptp(a) > 0 and np.ptp(b) > 0 else float("nan")
            out["rank_agreement_halves"] = _rounded(rho)
        out["all_models"] = position_summary(sampled, n_rep, seed=cfg.seed, what="models")
        out["splits"] = [
            {"split": s} | (position_summary([f for f in sampled if f["split"] == s], n_rep, seed=cfg.seed, what=what) or {})
            for s in range(len(self.markers))
        ]
        return out


def _rounded(value: float) -> float | None:
    return round(float(value), 6) if math.isfinite(float(value)) else None
