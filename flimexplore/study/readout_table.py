"""The rows of a study's readouts: which readouts exist, their columns, and ``results.csv`` as a join.

A study always trains its decision layer (the ``trained`` readout, scored
per fit by :mod:`flimexplore.study.store`).  ``--decoders`` adds the LIDS
adaptive decoders, which read the same models' FLIM features without
training (:mod:`flimexplore.engine.decoders`); ``--attention`` (implied by
any decoder) adds where each readout's evidence lies.  Their numbers are
kept per model in ``readouts.csv`` (:data:`READOUT_COLUMNS`, one row per
model and readout) and ``results.csv`` is rendered as the join
(:func:`join_readouts`): one row per (model, readout), with a ``decoder``
column and the attention columns after the usual ones.

Plain rows in, plain rows out: no torch, no files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "ATTENTION_COLUMNS", "READOUTS", "READOUT_COLUMNS", "READOUT_SCORES", "TRAINED", "join_readouts",
    "joined_columns", "other_readouts", "readouts_asked",
]

TRAINED = "trained"
"""The decision layer every study trains (paper: the validation Dice of a 1x1 layer trained by backpropagation)."""
READOUTS = (TRAINED, "vanilla", "probability", "mean", "labeled")
"""Every readout, in the order rows and figures list them (the adaptive decoders as :data:`flimexplore.engine.decoders.DECODERS`)."""
ATTENTION_COLUMNS = ("pointing", "mass_in_object")
"""Mean over the validation images with object (NaN when none has one)."""
READOUT_SCORES = (
    "val_dice", "val_jaccard", "val_sensitivity", "val_specificity",
    "test_dice", "test_jaccard", "test_sensitivity", "test_specificity",
)
READOUT_COLUMNS = ("model", "decoder", *READOUT_SCORES, *ATTENTION_COLUMNS)
"""``readouts.csv``: one row per (model, readout); the ``trained`` row's scores are fit 0's, recounted from its CAM."""
_NO_INTERVAL = {"val_dice_sd": math.nan, "val_dice_lo": math.nan, "val_dice_hi": math.nan, "n_repeats": 1}


def other_readouts(decoders: Sequence[str], attention: bool) -> bool:
    """Whether a study reads its models in more ways than its trained layer (``readouts.csv`` exists)."""
    return tuple(decoders) != (TRAINED,) or bool(attention)


def readouts_asked(decoders: Sequence[str]) -> tuple[str, ...]:
    """The readouts whose rows a study stores: the trained layer (always) and the asked decoders, in order."""
    return tuple(r for r in READOUTS if r == TRAINED or r in decoders)


def joined_columns(base: Sequence[str]) -> tuple[str, ...]:
    """Columns of ``results.csv`` with other readouts: the usual ones, ``decoder``, the attention scores."""
    return (*base, "decoder", *ATTENTION_COLUMNS)


def join_readouts(
    rows: Mapping[int, Mapping[str, Any]],
    readouts: Mapping[tuple[int, str], Mapping[str, Any]],
    decoders: Sequence[str],
    base: Sequence[str],
) -> list[dict[str, Any]]:
    """One row per (model, readout): ``results.csv`` of a study with other readouts.

    Parameters
    ----------
    rows : dict of int to dict
        The trained layer's row of each model (``results.csv`` columns ``base``).
    readouts : dict of (int, str) to dict
        ``readouts.csv`` rows keyed by ``(model, decoder)``.
    decoders : sequence of str
        The study's readouts; rows follow :data:`READOUTS` order.
    base : sequence of str
        Columns of the trained rows (with the interval columns for repeated fits).

    Returns
    -------
    list of dict
        By model, then readout.  A model is listed once every readout of it
        is stored.  The ``trained`` rows are the trained layer's (means over
        fits) plus its attention scores; a decoder's row keeps the model's
        place and seed, takes its own scores, has ``best_epoch`` 0 (nothing
        is trained) and, with repeated fits, ``n_repeats`` 1 and no interval
        (a decoder reads fit 0's encoder, deterministically).

    Examples
    --------
    >>> row = {"model": 0, "best_epoch": 3, "val_dice": 0.5}
    >>> extra = {"val_dice": 0.25, "pointing": 1.0, "mass_in_object": 0.5}
    >>> out = join_readouts({0: row}, {(0, "trained"): extra, (0, "mean"): extra}, ("trained", "mean"),
    ...                     ("model", "best_epoch", "val_dice"))
    >>> [(r["decoder"], r["best_epoch"], r["val_dice"], r["pointing"]) for r in out]
    [('trained', 3, 0.5, 1.0), ('mean', 0, 0.25, 1.0)]
    """
    names = readouts_asked(decoders)
    out = []
    for m in sorted(rows):
        if any((m, d) not in readouts for d in names):
            continue
        for d in names:
            extra = readouts[(m, d)]
            row = {k: rows[m][k] for k in base}
            if d != TRAINED:
                row |= {k: extra[k] for k in READOUT_SCORES if k in row} | {"best_epoch": 0}
                row |= {k: v for k, v in _NO_INTERVAL.items() if k in row}
            row |= {"decoder": d} | {k: extra[k] for k in ATTENTION_COLUMNS}
            out.append(row)
    return out
