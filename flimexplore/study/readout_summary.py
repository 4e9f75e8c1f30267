"""What the other readouts say (``summary.json["readouts"]``): Dice ranges and agreement between readouts.

Agreement of two readouts is measured on the per-marker validation (and
test) Dice of the same models: Spearman's rho (average ranks; NaN when a
readout gives every marker the same Dice or fewer than 3 markers are
compared) and the *top-5 overlap*, the share of the 5 best markers of one
readout that are also among the 5 best of the other (ties broken by model
id; undefined, None, when 5 or fewer markers are compared: all of them are the top).  Both over all sampled
models and per split (one object marker with its background markers; per
background marker with ``--vary object``).  The model of the user's own
markers (split -1) is left out.  :mod:`flimexplore.analysis.readouts` adds
bootstrap intervals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from flimexplore.study.readout_table import ATTENTION_COLUMNS, readouts_asked

__all__ = ["TOP_K", "by_readout", "rank_agreement", "readout_agreement", "readout_summary", "top_overlap"]

TOP_K = 5
PARTS = ("val", "test")


def by_readout(rows: Sequence[Mapping[str, Any]], column: str, decoder: str, split: int | None = None) -> dict[int, float]:
    """``column`` of each sampled model (split >= 0) under one readout, keyed by model id."""
    return {
        int(r["model"]): float(r[column]) for r in rows
        if r["decoder"] == decoder and r["split"] >= 0 and (split is None or r["split"] == split)
    }


def top_overlap(a: Mapping[int, float], b: Mapping[int, float], k: int = TOP_K) -> float:
    """Share of the ``k`` best models of ``a`` that are among the ``k`` best of ``b`` (same models only).

    NaN when at most ``k`` models are compared (every one is in both tops).

    Examples
    --------
    >>> top_overlap({0: 0.9, 1: 0.8, 2: 0.1}, {0: 0.2, 1: 0.9, 2: 0.8}, k=2)
    0.5
    """
    common = sorted(set(a) & set(b))
    if len(common) <= k:
        return math.nan

    def best(x: Mapping[int, float]) -> set[int]:
        return set(sorted(common, key=lambda m: (-x[m], m))[:k])

    return len(best(a) & best(b)) / k


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(spearmanr(x, y).statistic)


def rank_agreement(a: Mapping[int, float], b: Mapping[int, float], k: int = TOP_K) -> dict[str, Any]:
    """Spearman's rho and top-``k`` overlap of two readouts' scores of the same models.

    Returns
    -------
    dict
        ``n`` (models in both), ``rho`` and ``top5_overlap`` (None where undefined).
    """
    common = sorted(set(a) & set(b))
    x, y = np.array([a[m] for m in common]), np.array([b[m] for m in common])
    return {"n": len(common), "rho": _rounded(_spearman(x, y)), f"top{k}_overlap": _rounded(top_overlap(a, b, k))}


def readout_agreement(rows: Sequence[Mapping[str, Any]], decoders: Sequence[str]) -> list[dict[str, Any]]:
    """Agreement of every pair of readouts, per data part (validation, test Dice), overall and per split.

    Parameters
    ----------
    rows : sequence of dict
        ``results.csv`` rows of a study with other readouts (a ``decoder`` column).
    decoders : sequence of str

    Returns
    -------
    list of dict
        Records ``{"a", "b", "part", "split", "n", "rho", "top5_overlap"}``;
        ``split`` None is every sampled model.
    """
    names = readouts_asked(decoders)
    splits = sorted({int(r["split"]) for r in rows if r["split"] >= 0})
    out = []
    for a, b in combinations(names, 2):
        for part in PARTS:
            for split in (None, *splits):
                x = by_readout(rows, f"{part}_dice", a, split)
                y = by_readout(rows, f"{part}_dice", b, split)
                out.append({"a": a, "b": b, "part": part, "split": split} | rank_agreement(x, y))
    return out


def readout_summary(rows: Sequence[Mapping[str, Any]], decoders: Sequence[str]) -> dict[str, Any]:
    """``summary.json["readouts"]``: per readout its Dice and attention over sampled models, and their agreement."""
    names = readouts_asked(decoders)
    per: dict[str, Any] = {}
    for d in names:
        entry: dict[str, Any] = {"n_models": len(by_readout(rows, "val_dice", d))}
        for column in ("val_dice", "test_dice"):
            v = np.array(list(by_readout(rows, column, d).values()))
            if len(v):
                entry |= {f"{column}_min": _rounded(v.min()), f"{column}_max": _rounded(v.max()),
                          f"{column}_mean": _rounded(v.mean())}
        for column in ATTENTION_COLUMNS:
            v = np.array(list(by_readout(rows, column, d).values()))
            v = v[np.isfinite(v)]
            entry[f"{column}_mean"] = _rounded(v.mean()) if len(v) else None
        per[d] = entry
    return {
        "readouts": list(names),
        "binarisation": "trained: logit gap > 0; decoders: saliency as uint8 levels, Otsu threshold, strictly above (LIDS)",
        "attention": "pointing (the map's maximum on the object) and mass_in_object (share of positive evidence on "
                     "the object), means over validation images with object",
        "reads": "each model's stored encoder and decision layer (fit 0's); adaptive decoders are deterministic",
        "per_readout": per,
        "agreement": readout_agreement(rows, decoders),
        "agreement_note": f"Spearman rho of per-marker Dice and top-{TOP_K} overlap, per pair of readouts, "
                          "validation and test, all sampled markers (split null) and per split",
    }


def _rounded(value: float) -> float | None:
    return round(float(value), 6) if math.isfinite(float(value)) else None
