"""The other readouts of a study's models: LIDS adaptive decoders and attention scores.

Every model of a study is trained (its decision layer, the ``trained``
readout).  ``--decoders`` also reads each model's FLIM features with the
training-free adaptive decoders of the LIDS code
(:mod:`flimexplore.engine.decoders`, FIELD_NOTES section 2), and
``--attention`` (implied by any decoder) scores where each readout's
evidence lies (:mod:`flimexplore.engine.attention`, FIELD_NOTES section 9).

What is read.  The model's stored parameters: fit 0's encoder and fit 0's
decision layer at its best epoch (the ``models/*.npz`` of the study).  With
repeated fits that re-draw only the decision layer, every fit shares that
encoder, so an adaptive decoder (which has no random choice) gives exactly
one readout per model: its row has ``n_repeats`` 1 and no interval.  With
``--repeat-over clustering|both`` under ``--clustering kmeans++`` the fits
have encoders of their own, but the decoders still read fit 0's; their
spread over encoders is not measured.  The trained layer's attention is
fit 0's too (its CAM at its best epoch), while its Dice is the mean over fits.

How it is scored.  A decoder's saliency map is cut the LIDS way (uint8
levels, Otsu, strictly above; :func:`flimexplore.engine.otsu.binarise`)
and scored like the trained layer: mean per-image Dice, Jaccard,
sensitivity and specificity on the validation and the test images.
``pointing`` and ``mass_in_object`` are means over the validation images
with object; an image without object has nothing to point at and does not
count (NaN when no validation image holds object).  One encoding pass per
image set serves every readout (:func:`flimexplore.engine.readouts.score_readouts`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from flimexplore.engine.batched import DEFAULT_MEMORY_MB, prepare_images
from flimexplore.engine.decision import DecisionParams, head_gap
from flimexplore.engine.precision import precision_scope
from flimexplore.engine.readouts import score_readouts
from flimexplore.engine.scores import metrics_from_counts
from flimexplore.study.context import StudyContext, unpack_models
from flimexplore.study.readout_table import ATTENTION_COLUMNS, READOUT_COLUMNS, TRAINED, readouts_asked
from flimexplore.study.store import ResultStore

__all__ = ["compute_readouts", "read_out", "readout_maps", "readouts_to_do"]


def readouts_to_do(
    models: Iterable[int], stored: Mapping[tuple[int, str], Any], decoders: Sequence[str]
) -> list[int]:
    """The models (in order) that lack a stored row of some readout of ``decoders``.

    Examples
    --------
    >>> readouts_to_do([0, 1, 2], {(0, "trained"): 1, (0, "mean"): 1, (1, "trained"): 1}, ("trained", "mean"))
    [1, 2]
    """
    names = readouts_asked(decoders)
    return [int(m) for m in models if any((int(m), d) not in stored for d in names)]


def _heads(arrays: Sequence[Mapping[str, NDArray]], ctx: StudyContext) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """The encoders and folded decision layers (at the stored epoch) of stored models."""
    bank, params, bn = unpack_models(list(arrays), ctx.device, ctx.config.flim())
    a, c = head_gap(DecisionParams(*(t[:, None] for t in params.astuple())), bn)
    return bank, a[:, 0], c[:, 0]


def compute_readouts(
    ctx: StudyContext,
    ids: Sequence[int],
    arrays: Mapping[int, Mapping[str, NDArray]],
    decoders: Sequence[str],
    memory_mb: float = DEFAULT_MEMORY_MB,
    precision: str = "fp32",
) -> list[dict[str, Any]]:
    """Read stored models out with every readout of ``decoders``: rows of ``readouts.csv``.

    Parameters
    ----------
    ctx : StudyContext
    ids : sequence of int
        Model ids, each with its parameters in ``arrays``.
    arrays : dict of int to dict
        Stored parameters by model id (fit 0's).
    decoders : sequence of str
        The study's readouts (``trained`` and adaptive decoders).
    memory_mb : float, optional
    precision : {"fp32", "tf32", "bf16"}, optional

    Returns
    -------
    list of dict
        One row per model and readout (columns :data:`~flimexplore.study.readout_table.READOUT_COLUMNS`),
        rounded as the tables store them.
    """
    if not len(ids):
        return []
    names = readouts_asked(decoders)
    adaptive = [d for d in names if d != TRAINED]
    with precision_scope(precision, ctx.device):
        bank, a, c = _heads([arrays[m] for m in ids], ctx)
        val = score_readouts(bank, ctx.val_groups, a, c, adaptive, memory_mb=memory_mb)
        test = score_readouts(bank, ctx.test_groups, a, c, adaptive, attention=False, memory_mb=memory_mb)
    scores = {f"val_{k}": v.mean(axis=2) for k, v in metrics_from_counts(val.counts.numpy()).items()}
    scores |= {f"test_{k}": v.mean(axis=2) for k, v in metrics_from_counts(test.counts.numpy()).items()}
    scores |= {name: _nanmean(getattr(val, name).numpy()) for name in ATTENTION_COLUMNS}
    rows = []
    for i, m in enumerate(ids):
        for j, d in enumerate(names):
            row: dict[str, Any] = {"model": int(m), "decoder": d}
            row |= {k: round(float(scores[k][i, j]), 6) for k in READOUT_COLUMNS[2:]}
            rows.append(row)
    return rows


def _nanmean(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Mean over the last axis of the finite values (NaN where there is none), without a warning."""
    ok = np.isfinite(x)
    n = ok.sum(axis=-1)
    total = np.where(ok, x, 0.0).sum(axis=-1)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def readout_maps(
    ctx: StudyContext, arrays: Mapping[str, NDArray], image: NDArray[np.floating], decoder: str = TRAINED
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """One stored model's evidence map and predicted mask on one image, for one readout.

    Parameters
    ----------
    ctx : StudyContext
    arrays : dict
        One model's stored parameters.
    image : ndarray of shape (H, W, 3), float in [0, 1]
    decoder : str, optional
        ``"trained"`` or an adaptive decoder.

    Returns
    -------
    evidence : ndarray of shape (H, W), float32
        The trained layer's logit gap (its exact CAM: positive is object), or
        the decoder's saliency in [0, 1].
    pred : ndarray of shape (H, W), bool
        ``evidence > 0`` for the trained layer (its prediction,
        :meth:`StudyContext.predict`); the LIDS binarisation of the saliency
        for a decoder.
    """
    from flimexplore.engine.attention import head_evidence
    from flimexplore.engine.decoders import decoder_labels, saliency
    from flimexplore.engine.flim import encode
    from flimexplore.engine.otsu import binarise

    bank, a, c = _heads([arrays], ctx)
    group = prepare_images([image], [np.zeros(image.shape[:2], bool)], ctx.device)[0]
    feats = encode(group.images[0:1], bank)
    size = tuple(group.images.shape[-2:])
    if decoder == TRAINED:
        gap = head_evidence(feats, a, c, size)[0, 0]
        return gap.cpu().numpy().astype(np.float32), (gap > 0).cpu().numpy()
    maps = saliency(feats, decoder_labels(bank), size, decoder)[0, 0]  # type: ignore[arg-type]
    return maps.cpu().numpy().astype(np.float32), binarise(maps)[0].cpu().numpy()



def read_out(
    ctx: StudyContext,
    ids: Sequence[int],
    arrays: Mapping[int, Mapping[str, NDArray]],
    stored: Mapping[tuple[int, str], dict[str, Any]],
    store: ResultStore | None = None,
    memory_mb: float = DEFAULT_MEMORY_MB,
    precision: str = "fp32",
) -> dict[tuple[int, str], dict[str, Any]]:
    """Compute the missing readouts of models ``ids`` and record them (in ``store``, if given).

    Returns
    -------
    dict of (int, str) to dict
        Every stored readout row after this one, keyed by ``(model, decoder)``.
    """
    need = readouts_to_do(ids, stored, ctx.config.decoders)
    rows = compute_readouts(ctx, need, arrays, ctx.config.decoders, memory_mb, precision)
    if store is not None:
        store.add_readouts(rows)
        return store.readouts()
    return dict(stored) | {(r["model"], r["decoder"]): r for r in rows}
