"""Does the best marker depend on how the features are read, and what does each readout cost (issue 19).

For the 3 presets and nuclei this runs marked image 0 with the paper's
protocol (5 object markers x 30 background markers, 20 epochs) and
``--decoders trained,vanilla,probability,mean,labeled`` (attention implied),
and reports per data set and readout:

* the validation Dice range of the markers (min, max, mean);
* agreement with the trained layer: Spearman's rho of the per-marker
  validation Dice and the top-5 overlap (from the study's ``summary.json``);
* Spearman's rho between the readout's Dice and each attention score
  (``pointing``, ``mass_in_object``), over the sampled markers;
* seconds per model, measured on one chunk of 32 models of the study
  (median over ``--rounds``): for the trained layer its full cost (FLIM
  encoder, 20-epoch decision layer, validation scoring at every epoch, test
  scoring: ``StudyContext.evaluate``); for a decoder, reading stored models
  with it alone (encoding the validation and test images, decoding,
  binarising, counting: ``score_readouts`` with that decoder), and its
  marginal cost inside the one pass a study makes (that, minus the same
  pass with the trained head alone).  ``one_pass`` is what a study with all
  readouts and attention pays per model on top of training.

    python benchmarks/readouts.py [--quick] [--rounds 3] [--datasets fish,nuclei] [--json PATH] [--threads N]
"""

from __future__ import annotations

import sys
from typing import Any

import _common
import numpy as np

DATASETS = ["fish", "eggs", "fundus", "nuclei"]
CHUNK = 32


def _rho(x: list[float], y: list[float]) -> float | None:
    from flimexplore.analysis.correlate import spearman

    r = spearman(x, y)
    return round(r, 4) if np.isfinite(r) else None


def costs(ctx: Any, result: Any, n: int, rounds: int, device: str) -> dict[str, float]:
    """Seconds per model of each readout on the first ``n`` models (median over ``rounds``)."""
    from flimexplore.engine.readouts import score_readouts
    from flimexplore.study.readout_table import READOUTS
    from flimexplore.study.readouts import _heads
    from flimexplore.study.run import model_table, plan_markers

    table = model_table(ctx, plan_markers(ctx))[:n]
    obj, bg = np.stack([t.obj for t in table]), np.stack([t.bg for t in table])
    seeds = [t.seed for t in table]
    bank, a, c = _heads([result.arrays[m] for m in range(len(table))], ctx)
    groups = (ctx.val_groups, ctx.test_groups)

    def passes(decoders: tuple[str, ...], attention: bool) -> Any:
        return [score_readouts(bank, g, a, c, decoders, attention=attention and k == 0) for k, g in enumerate(groups)]

    work = {
        "trained_full": lambda: ctx.evaluate(obj, bg, seeds),
        "head_pass": lambda: passes((), False),
        "one_pass": lambda: passes(READOUTS[1:], True),
        "one_pass_no_attention": lambda: passes(READOUTS[1:], False),
    }
    work |= {f"alone_{d}": (lambda d=d: passes((d,), False)) for d in READOUTS[1:]}
    times: dict[str, list[float]] = {k: [] for k in work}
    for _ in range(rounds):
        for k, fn in work.items():
            times[k].append(_common.timed(fn, device)[0])
    return {k: float(np.median(v)) / len(table) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("readouts", __doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="timing rounds (median) (default: %(default)s)")
    p.add_argument("--datasets", default=None, help="comma-separated data sets (default: the 3 presets and nuclei)")
    args = p.parse_args(argv)
    threads = _common.setup_threads(args.threads)
    device = _common.device("readouts", args.device)
    if device is None:
        return 2

    from flimexplore.study.config import StudyConfig
    from flimexplore.study.context import StudyContext
    from flimexplore.study.readout_table import READOUTS, TRAINED
    from flimexplore.study.run import run_study_all

    datasets = args.datasets.split(",") if args.datasets else DATASETS
    if args.quick:
        datasets = ["fish"]
    rows, timing = [], []
    for ds in datasets:
        base = (StudyConfig(dataset=ds, n_images=12, splits=1, n_bg=4, epochs=2, decoders=READOUTS) if args.quick
                else StudyConfig(dataset=ds, splits=5, n_bg=30, decoders=READOUTS))
        ctx = StudyContext(base, device)
        dt, result = _common.timed(lambda ctx=ctx: run_study_all(ctx.config, None, device=device, context=ctx), device)
        summary = result.summary()["readouts"]
        n = 4 if args.quick else CHUNK
        cost = costs(ctx, result, n, 1 if args.quick else max(1, args.rounds), device)
        cost["study_s"] = dt
        timing.append({"dataset": ds, "models_timed": n} | {k: round(v, 5) for k, v in cost.items()})
        agree = {a["b"]: a for a in summary["agreement"]
                 if a["a"] == TRAINED and a["part"] == "val" and a["split"] is None}
        for d in READOUTS:
            mine = [r for r in result.decoder_rows(d) if r["split"] >= 0]
            dice = [r["val_dice"] for r in mine]
            entry = summary["per_readout"][d]
            row = {
                "dataset": ds, "decoder": d, "models": len(mine),
                "val_dice_min": entry["val_dice_min"], "val_dice_max": entry["val_dice_max"],
                "val_dice_mean": entry["val_dice_mean"],
                "rho_trained": 1.0 if d == TRAINED else agree[d]["rho"],
                "top5_overlap": 1.0 if d == TRAINED else agree[d]["top5_overlap"],
                "rho_dice_pointing": _rho(dice, [r["pointing"] for r in mine]),
                "rho_dice_mass": _rho(dice, [r["mass_in_object"] for r in mine]),
                "pointing_mean": entry["pointing_mean"], "mass_in_object_mean": entry["mass_in_object_mean"],
            }
            if d == TRAINED:
                row["s_per_model"] = cost["trained_full"]
                row["marginal_s_per_model"] = cost["head_pass"]
            else:
                row["s_per_model"] = cost[f"alone_{d}"]
                row["marginal_s_per_model"] = cost[f"alone_{d}"] - cost["head_pass"]
            row["cost_vs_trained"] = row["s_per_model"] / cost["trained_full"]
            rows.append(row)
        print(f"{ds}: {len(result.rows)} models in {dt:.1f} s; trained {cost['trained_full']:.4f} s/model, "
              f"one pass of every readout {cost['one_pass']:.4f} s/model", flush=True)
    print(_common.table(rows, ["dataset", "decoder", "models", "val_dice_min", "val_dice_max", "rho_trained",
                               "top5_overlap", "rho_dice_pointing", "rho_dice_mass", "s_per_model",
                               "marginal_s_per_model", "cost_vs_trained"]))
    print(_common.table(timing, ["dataset", "models_timed", "trained_full", "head_pass", "one_pass",
                                 "one_pass_no_attention", "study_s"]))
    _common.write_json(args.json, {
        "rows": rows, "timing": timing, "machine": _common.machine(device), "threads": threads, "quick": bool(args.quick),
        "protocol": "marked image 0, 5 object x 30 background markers, 20 epochs, seed 0, decoders "
                    "trained,vanilla,probability,mean,labeled (attention implied); costs per model on one chunk of "
                    "32 models: trained_full = encoder + 20-epoch decision layer + validation scoring at every epoch "
                    "+ test scoring; alone_<d> = reading stored models with decoder d alone on validation and test "
                    "images (encode, decode, binarise, count); head_pass = the same with the trained head only; "
                    "one_pass = every decoder and attention in one pass",
        "peak_rss_mb": _common.peak_rss_mb(),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
