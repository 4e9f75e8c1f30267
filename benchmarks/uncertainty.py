"""How noisy is one marker's Dice, how much does position matter, and what do repeated fits cost (issue 17).

For every data set (the 3 presets, nuclei, and the cluttered-background
folder ``benchmarks/data/clutter``) this runs marked image 0 with the
paper's protocol (5 object markers x 30 background markers, 20 epochs) and
``--repeats 5`` (every random choice of a model re-drawn; with the default
farthest-point clustering that is the decision layer's initialisation), and
reports from the study's own ``summary.json`` and ``repeats.csv``:

* the seed standard deviation of a marker's validation Dice (median, max);
* rank agreement between the two halves of the fits (Spearman's rho of the
  markers' mean Dice over fits 0-1 and over fits 2-4), pooled and per object marker;
* the share of the Dice variance explained by position (ICC with its
  bootstrap interval) and how many markers tie with the best, per object marker;
* the cost: the same study with R = 1 and R = 5 timed in this one process on
  the same prepared data, alternating over ``--rounds`` rounds (median), and
  where the extra time goes (one chunk of 32 models timed phase by phase:
  encoders, decision layers, validation scoring, test scoring).

    python benchmarks/uncertainty.py [--quick] [--rounds 2] [--datasets fish,nuclei] [--json PATH] [--threads N]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import _common
import numpy as np

CLUTTER = str(Path(__file__).resolve().parent / "data" / "clutter")
DATASETS = ["fish", "eggs", "fundus", "nuclei", CLUTTER]
REPEATS = 5


def _name(ds: str) -> str:
    return Path(ds).name


def _halves_rho(fits: list[dict[str, Any]], repeats: int, split: int | None = None) -> float:
    from scipy.stats import spearmanr

    by: dict[int, list[float]] = {}
    for f in sorted(fits, key=lambda f: (f["model"], f["repeat"])):
        if split is None or f["split"] == split:
            by.setdefault(f["model"], []).append(f["val_dice"])
    half = repeats // 2
    a = np.array([np.mean(v[:half]) for v in by.values()])
    b = np.array([np.mean(v[half:]) for v in by.values()])
    return float(spearmanr(a, b).statistic) if np.ptp(a) > 0 and np.ptp(b) > 0 else float("nan")


def phases(ctx: Any, repeats: tuple[int, ...], device: str) -> dict[str, float]:
    """Seconds of one chunk of 32 models, phase by phase (what ``StudyContext._score`` does)."""
    import torch

    from flimexplore.engine.batched import model_pixels, score_models, train_models
    from flimexplore.engine.decision import head_gap
    from flimexplore.study.repeats import cluster_seeds, decision_seeds
    from flimexplore.study.run import model_table, plan_markers

    table = model_table(ctx, plan_markers(ctx))[:32]
    cfg, r = ctx.config, ctx.config.radius
    obj = model_pixels(np.stack([t.obj for t in table]), r, ctx.mask.shape, ctx.device)
    bg = model_pixels(np.stack([t.bg for t in table]), r, ctx.mask.shape, ctx.device)
    seeds = decision_seeds([t.seed for t in table], repeats, cfg.repeat_over)
    cseeds = cluster_seeds(cfg.cluster_seed, repeats, cfg.repeat_over, cfg.clustering)
    out = {}
    t0 = time.perf_counter()
    trained = train_models(ctx.marked, obj, bg, seeds if len(repeats) > 1 else [s[0] for s in seeds],
                           epochs=cfg.epochs, lr=cfg.lr, settings=cfg.flim(), cluster_seeds=cseeds)
    _common.synchronize(device)
    out["encoders_and_decision_s"] = time.perf_counter() - t0
    a, c = head_gap(trained.params, trained.bn)
    m = len(trained.bank)
    t0 = time.perf_counter()
    score_models(trained.bank, a.reshape(m, -1, a.shape[-1]), c.reshape(m, -1), ctx.val_groups)
    _common.synchronize(device)
    out["validation_scoring_s"] = time.perf_counter() - t0
    pick = torch.zeros(a.shape[0], dtype=torch.long)
    idx = torch.arange(a.shape[0])
    t0 = time.perf_counter()
    score_models(trained.bank, a[idx, pick].reshape(m, -1, a.shape[-1]), c[idx, pick].reshape(m, -1), ctx.test_groups)
    _common.synchronize(device)
    out["test_scoring_s"] = time.perf_counter() - t0
    return out


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("uncertainty", __doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=2, help="timing rounds of R = 1 and R = 5 (default: %(default)s)")
    p.add_argument("--datasets", default=None, help="comma-separated data sets (default: the 3 presets, nuclei, clutter)")
    args = p.parse_args(argv)
    threads = _common.setup_threads(args.threads)
    device = _common.device("uncertainty", args.device)
    if device is None:
        return 2

    from flimexplore.study.config import StudyConfig
    from flimexplore.study.context import StudyContext
    from flimexplore.study.run import run_study_all

    datasets = args.datasets.split(",") if args.datasets else DATASETS
    if args.quick:
        datasets = ["fish"]
    rows, per_split = [], []
    for ds in datasets:
        base = (StudyConfig(dataset=ds, n_images=12, splits=2, n_bg=4, epochs=3) if args.quick
                else StudyConfig(dataset=ds, splits=5, n_bg=30))
        ctx1 = StudyContext(base, device)
        ctx5 = StudyContext(base.replace(repeats=REPEATS), device, dataset=ctx1.dataset)
        run_study_all(ctx1.config, None, device=device, context=ctx1)  # warm-up: allocations, lazy imports
        times: dict[int, list[float]] = {1: [], REPEATS: []}
        result = None
        for _ in range(1 if args.quick else max(1, args.rounds)):
            for n, ctx in ((1, ctx1), (REPEATS, ctx5)):  # in memory: no figures or files in the timing
                dt, res = _common.timed(lambda ctx=ctx: run_study_all(ctx.config, None, device=device, context=ctx), device)
                times[n].append(dt)
                if n == REPEATS:
                    result = res
        summary = result.summary()["repeats"]
        cost = {n: float(np.median(v)) for n, v in times.items()}
        ph = {f"r{n}": phases(ctx, tuple(range(n)), device) for n, ctx in ((1, ctx1), (REPEATS, ctx5))}
        row = {
            "dataset": _name(ds), "models": len(result.rows), "repeats": REPEATS,
            "seed_sd_median": summary["val_dice_sd_median"], "seed_sd_max": summary["val_dice_sd_max"],
            "interval_width_median": summary["interval_width_median"],
            "rank_agreement_halves": _halves_rho(result.fits, REPEATS),
            "icc_all": summary["all_models"]["icc"], "icc_all_lo": summary["all_models"]["icc_lo"],
            "icc_all_hi": summary["all_models"]["icc_hi"],
            "icc_split_median": float(np.median([s["icc"] for s in summary["splits"] if "icc" in s])),
            "tied_median": float(np.median([s["n_tied_with_best"] for s in summary["splits"] if "icc" in s])),
            "r1_s": cost[1], f"r{REPEATS}_s": cost[REPEATS], "cost_ratio": cost[REPEATS] / cost[1],
            "phases": ph, "times": times,
        }
        rows.append(row)
        for s in summary["splits"]:
            if "icc" in s:
                per_split.append({"dataset": _name(ds), "split": s["split"], "icc": s["icc"], "icc_lo": s["icc_lo"],
                                  "icc_hi": s["icc_hi"], "tied": s["n_tied_with_best"], "n": s["n_markers"],
                                  "rank_agreement_halves": _halves_rho(result.fits, REPEATS, s["split"]),
                                  "verdict": s["verdict"]})
        print(f"{_name(ds)}: sd median {row['seed_sd_median']:.4f} max {row['seed_sd_max']:.4f}, rho halves "
              f"{row['rank_agreement_halves']:.2f}, ICC {row['icc_all']:.2f}, R={REPEATS} costs {row['cost_ratio']:.2f}x R=1",
              flush=True)
    print(_common.table(rows, ["dataset", "models", "seed_sd_median", "seed_sd_max", "interval_width_median",
                               "rank_agreement_halves", "icc_all", "icc_split_median", "tied_median", "r1_s",
                               f"r{REPEATS}_s", "cost_ratio"]))
    print(_common.table(per_split, ["dataset", "split", "icc", "icc_lo", "icc_hi", "tied", "n", "rank_agreement_halves"]))
    _common.write_json(args.json, {
        "rows": rows, "splits": per_split, "machine": _common.machine(device), "threads": threads, "quick": bool(args.quick),
        "protocol": "marked image 0, 5 object x 30 background markers, 20 epochs, seed 0; repeats 5 over 'both' "
                    "(farthest clustering: the decision layer's initialisation)",
        "peak_rss_mb": _common.peak_rss_mb(),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
