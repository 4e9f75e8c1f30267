"""Do the readouts agree, and does a good Dice come with attention on the object? (``analyse`` of issue 19).

For a study run with other readouts (``study --decoders``, ``--attention``;
its ``results.csv`` has a ``decoder`` column) this relates, over the
sampled markers (the user's own, split -1, left out):

- each readout's attention scores (``pointing``, ``mass_in_object``) to
  its own validation Dice and to the trained layer's (the paper's score),
- every pair of readouts' per-marker Dice (validation and test),

as Spearman's rho with the seeded percentile bootstrap interval of
:func:`flimexplore.analysis.correlate.bootstrap_spearman`, over all
sampled markers and per split; agreement also gives the top-5 overlap
(:func:`flimexplore.study.readout_summary.top_overlap`).
:func:`disagreements` lists the markers whose Dice rank and attention rank
differ most.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from flimexplore.analysis.correlate import N_BOOT, bootstrap_spearman, verdict
from flimexplore.study.readout_summary import TOP_K, by_readout, top_overlap
from flimexplore.study.readout_table import ATTENTION_COLUMNS, TRAINED

__all__ = ["disagreements", "readout_report"]


def _pair(a: Mapping[int, float], b: Mapping[int, float]) -> tuple[np.ndarray, np.ndarray]:
    common = sorted(set(a) & set(b))
    return np.array([a[m] for m in common], dtype=np.float64), np.array([b[m] for m in common], dtype=np.float64)


def _scopes(rows: Sequence[Mapping[str, Any]]) -> list[int | None]:
    return [None, *sorted({int(r["split"]) for r in rows if r["split"] >= 0})]


def readout_report(
    rows: Sequence[Mapping[str, Any]], n_boot: int = N_BOOT, seed: int = 0
) -> dict[str, Any]:
    """Attention against Dice, and agreement between readouts, with bootstrap intervals.

    Parameters
    ----------
    rows : sequence of dict
        ``results.csv`` rows of a study with other readouts (one per model and readout).
    n_boot, seed : optional
        Of :func:`~flimexplore.analysis.correlate.bootstrap_spearman`.

    Returns
    -------
    dict
        ``readouts`` (in order), ``attention`` (records ``readout, score,
        dice_of, split, rho, lo, hi, n, level``; ``dice_of`` is ``"own"`` or
        ``"trained"``; ``split`` None is every sampled marker), ``agreement``
        (records ``a, b, part, split, rho, lo, hi, n, level, top5_overlap``)
        and ``verdicts`` (per readout: does more mass on the object go with
        a higher Dice of the readout?).
    """
    names = list(dict.fromkeys(r["decoder"] for r in rows))
    attention, agreement, verdicts = [], [], {}
    for d in names:
        for score in ATTENTION_COLUMNS:
            for dice_of in ("own", "trained"):
                if dice_of == "trained" and d == TRAINED:
                    continue
                for split in _scopes(rows):
                    x, y = _pair(by_readout(rows, score, d, split), by_readout(rows, "val_dice", d if dice_of == "own" else TRAINED, split))
                    c = bootstrap_spearman(x, y, n_boot=n_boot, seed=seed)
                    attention.append({"readout": d, "score": score, "dice_of": dice_of, "split": split} | c.to_dict())
                    if score == "mass_in_object" and dice_of == "own" and split is None:
                        verdicts[d] = verdict(c, "positive", f"{d}: mass of evidence on the object vs its validation Dice")
    for a, b in combinations(names, 2):
        for part in ("val", "test"):
            for split in _scopes(rows):
                xa, xb = by_readout(rows, f"{part}_dice", a, split), by_readout(rows, f"{part}_dice", b, split)
                c = bootstrap_spearman(*_pair(xa, xb), n_boot=n_boot, seed=seed)
                top = top_overlap(xa, xb)
                agreement.append({"a": a, "b": b, "part": part, "split": split} | c.to_dict()
                                 | {f"top{TOP_K}_overlap": None if not np.isfinite(top) else round(top, 6)})
    return {"readouts": names, "attention": attention, "agreement": agreement, "verdicts": verdicts,
            "n_boot": n_boot, "seed": seed}


def disagreements(
    rows: Sequence[Mapping[str, Any]], readout: str = TRAINED, score: str = "mass_in_object", k: int = 5
) -> list[dict[str, Any]]:
    """The sampled markers whose Dice and attention disagree most under one readout.

    Each marker's validation Dice and its attention ``score`` are turned into
    percentile ranks among the sampled markers (average ranks, 0 worst, 1
    best); the gap is ``dice_rank - score_rank``: positive for a marker with
    a good Dice whose evidence lies off the object, negative for the reverse.
    Markers with a NaN score are left out.

    Parameters
    ----------
    rows : sequence of dict
        ``results.csv`` rows with a ``decoder`` column.
    readout : str, optional
    score : {"mass_in_object", "pointing"}, optional
    k : int, optional

    Returns
    -------
    list of dict
        Up to ``k`` records ``model, split, obj_row, obj_col, bg_row, bg_col,
        val_dice, <score>, dice_rank, score_rank, gap``, largest ``|gap|`` first.

    Examples
    --------
    >>> rows = [{"model": m, "decoder": "trained", "split": 0, "obj_row": 0, "obj_col": 0, "bg_row": m, "bg_col": 0,
    ...          "val_dice": d, "mass_in_object": s} for m, (d, s) in enumerate([(0.9, 0.1), (0.5, 0.5), (0.1, 0.9)])]
    >>> [(r["model"], r["gap"]) for r in disagreements(rows, k=2)]
    [(0, 1.0), (2, -1.0)]
    """
    from scipy.stats import rankdata

    mine = [r for r in rows if r["decoder"] == readout and r["split"] >= 0 and np.isfinite(r[score])]
    if len(mine) < 2:
        return []
    dice = (rankdata([r["val_dice"] for r in mine]) - 1) / (len(mine) - 1)
    att = (rankdata([r[score] for r in mine]) - 1) / (len(mine) - 1)
    out = []
    for r, dr, sr in zip(mine, dice, att, strict=True):
        out.append({k_: r[k_] for k_ in ("model", "split", "obj_row", "obj_col", "bg_row", "bg_col", "val_dice", score)}
                   | {"dice_rank": round(float(dr), 6), "score_rank": round(float(sr), 6), "gap": round(float(dr - sr), 6)})
    return sorted(out, key=lambda r: (-abs(r["gap"]), r["model"]))[:k]
