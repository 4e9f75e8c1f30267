"""Marker advice against random markers, with repeated fits as ground truth, and its reliability (issue 17).

For every data set (the 3 presets, nuclei and the cluttered-background folder
``benchmarks/data/clutter``), 3 marked images x 3 object markers (splits):

* ground truth: an ordinary study with 30 random admissible background
  markers per split and ``--repeats 5``, so every marker's Dice is the mean
  of 5 fits (one fit's Dice carries its seed's noise);
* the advice for the split's object marker (``flimexplore.advise``, default
  settings unless a variant says otherwise), its reliability and whether it
  abstains;
* its top-5 positions trained as a study would, 5 fits each (model seeds
  ``model_seed(seed, image, split, 10_000 + rank)``, never the probe's);
* the top-5 percentile: where the top-5 mean Dice falls among the 30 random
  markers' mean Dice (ties count half; 50 = random), and the gain over
  their median.

Per data set the script reports the mean percentile, the share of cases
that abstain and whether each abstention was right (the advice's top-5,
computed anyway, did not beat the random median by more than
``ABSTAIN_GAIN`` Dice or reached less than the 60th percentile), whether
position matters there (the random study's own position share, median over
splits) and Spearman's rho of the reliability (the probe's position share)
with the achieved percentile over image-splits.  Descriptor weights are
fitted leave-one-image-out on the other images' random studies (a weighting
never saw the image it ranks).  Time: one advice against the dense study of
the same image, whose cost is its number of candidates times the measured
cost of one study model (a chunk of 32 timed on the same data).  With
``--vary object`` the same is done for object markers (``study --vary object``
with up to 30 object markers per split, object advice for the split's fixed
background marker).

    python benchmarks/advice.py [--quick] [--vary background|object] [--datasets ...] [--variants ...]
        [--cache DIR] [--write-weights] [--json PATH]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common
import numpy as np

CLUTTER = str(Path(__file__).resolve().parent / "data" / "clutter")
DATASETS = ["fish", "eggs", "fundus", "nuclei", CLUTTER]
CACHE = Path(__file__).resolve().parent / "results" / "advice_cache"
WEIGHTS = Path(__file__).resolve().parents[1] / "flimexplore" / "analysis" / "advice_weights.json"
N_RANDOM = 30
REPEATS = 5
SEED = 0
IMAGES, SPLITS = 3, 3
VARIANTS = {
    "default": ({}, "descriptors pick half of 192 candidates, the rest spread over the image; each probed with 5 "
                    "decision seeds on the split's other marked images; ranked by the mean probe Dice"),
    "marked": ({"probe_on": "marked"}, "as default, but probed on the marked image itself (the image it was fitted to)"),
    "one_seed": ({"probe_on": "marked", "heads": 1}, "the previous advisor: probed with one seed on the marked image "
                                                     "(no reliability)"),
    "descriptors": ({"probe": 0}, "descriptors only, no probe (no reliability)"),
    "no_budget": ({"budget": None}, "as default, but up to 192 candidates probed, whatever it costs (object advice "
                                    "always does)"),
}


def _name(ds: str) -> str:
    return Path(ds).name


def _pct(values: np.ndarray, x: float) -> float:
    """Percentile of ``x`` among ``values`` (ties count half)."""
    return float(100 * ((values < x).mean() + 0.5 * (values == x).mean()))


def ground_truth(ds: str, image: int, vary: str, cache: Path, device: str, extra: dict[str, Any]) -> Any:
    """The random study (resumable in ``cache``) with repeated fits."""
    from flimexplore.study.config import StudyConfig
    from flimexplore.study.run import run_study_all

    cfg = StudyConfig(dataset=ds, image=image, splits=SPLITS, n_bg=extra.get("n_random", N_RANDOM), seed=SEED,
                      repeats=extra.get("repeats", REPEATS), vary=vary,
                      **{k: v for k, v in extra.items() if k in ("n_images", "epochs")})
    for n in range(cfg.n_bg, 4, -1):  # small objects hold fewer object markers
        try:
            return run_study_all(cfg.replace(n_bg=n), cache / f"{_name(ds)}_img{image}_{vary}", device=device)
        except Exception as err:  # noqa: BLE001 - MarkerError: fewer markers fit; retried with fewer
            if "fit" not in str(err) or n <= 5:
                raise
    raise RuntimeError("unreachable")


def model_cost(result: Any, device: str) -> float:
    """Seconds of one study model (one fit) on this image: a chunk of 32 models timed."""
    from flimexplore.study.run import model_table, plan_markers

    ctx = result.context
    one = ctx.__class__(ctx.config.replace(repeats=1), device, dataset=ctx.dataset)
    table = model_table(one, plan_markers(one))[:32]
    obj, bg = np.stack([t.obj for t in table]), np.stack([t.bg for t in table])
    one.evaluate(obj[:2], bg[:2], [t.seed for t in table[:2]])  # warm-up
    dt, _ = _common.timed(lambda: one.evaluate(obj, bg, [t.seed for t in table]), device)
    return dt / len(table)


def score_positions_trained(result: Any, split: int, centres: np.ndarray, fixed: np.ndarray, vary: str) -> np.ndarray:
    """Mean validation Dice over 5 fits of the given positions (as a study trains them)."""
    from flimexplore.study.run import model_seed

    ctx = result.context
    seeds = [model_seed(SEED, ctx.config.image, split, 10_000 + k) for k in range(len(centres))]
    fixed = np.repeat(np.asarray(fixed)[None], len(centres), 0)
    obj, bg = (centres, fixed) if vary == "object" else (fixed, centres)
    scores = ctx.evaluate(obj, bg, seeds)
    return scores.val["dice"]


def weights_without(studies: dict[tuple[str, int], Any], ds: str, image: int) -> dict[str, float]:
    """Descriptor weights fitted on the other marked images of the same data set (leave-one-image-out)."""
    from flimexplore.analysis.advice import fit_weights
    from flimexplore.analysis.descriptors import position_descriptors

    cases = []
    for (d, k), res in studies.items():
        if d != ds or k == image:
            continue
        for s in range(len(res.markers)):
            rows = [r for r in res.rows if r["split"] == s]
            bg = np.array([[r["bg_row"], r["bg_col"]] for r in rows])
            desc = position_descriptors(res.context.image, res.context.mask, res.markers[s].obj, bg, res.config.radius)
            cases.append((desc, np.array([r["val_dice"] for r in rows])))
    w = fit_weights(cases) if cases else {}
    return w if any(w.values()) else {"bg_std": 1.0}


def evaluate(datasets: list[str], vary: str, variants: list[str], cache: Path, device: str, extra: dict[str, Any],
             log: Any) -> dict[str, Any]:
    from flimexplore.analysis.advice import AdviceSettings, advise
    from flimexplore.analysis.reliability import ABSTAIN_GAIN

    rows: list[dict[str, Any]] = []
    truth: dict[str, list[float]] = {}
    for ds in datasets:
        studies = {(ds, k): ground_truth(ds, k, vary, cache, device, extra) for k in range(extra.get("images", IMAGES))}
        log(f"{_name(ds)}: ground truth ready")
        for (_, k), res in studies.items():
            cost = model_cost(res, device)
            summary = res.repeat_summary()
            weights = weights_without(studies, ds, k) if vary == "background" else None
            for s, ms in enumerate(res.markers):
                split_truth = next(x for x in summary["splits"] if x["split"] == s)
                truth.setdefault(_name(ds), []).append(split_truth.get("icc", float("nan")))
                sampled = [r for r in res.rows if r["split"] == s]
                random_dice = np.array([r["val_dice"] for r in sampled])
                fixed = np.asarray(ms.background if vary == "object" else ms.obj)
                for variant in variants:
                    changes = VARIANTS[variant][0] | {k2: v for k2, v in extra.items() if k2 in ("probe", "epochs")
                                                      and k2 not in VARIANTS[variant][0]}
                    base = dict(dataset=ds, image=k, seed=SEED, n_images=extra.get("n_images"), device=device,
                                target=vary, radius=res.config.radius)
                    where = dict(split=None, background=tuple(int(v) for v in fixed)) if vary == "object" else \
                        dict(split=None, obj=tuple(int(v) for v in fixed))
                    adv = advise(AdviceSettings(**base, **where, **changes), data=res.context.dataset, weights=weights)
                    top = adv.top(5)
                    dice = score_positions_trained(res, s, top, fixed, vary)
                    t5 = float(dice.mean())
                    med = float(np.median(random_dice))
                    rel = adv.reliability
                    row = {
                        "vary": vary, "variant": variant, "dataset": _name(ds), "image": k, "split": s,
                        "n_candidates": len(adv.centres), "n_random": len(random_dice),
                        "top5_dice": [round(float(d), 6) for d in dice], "top5_mean_dice": t5, "top1_dice": float(dice[0]),
                        "random_median": med, "random_min": float(random_dice.min()), "random_max": float(random_dice.max()),
                        "top5_pct": _pct(random_dice, t5), "top1_pct": _pct(random_dice, float(dice[0])),
                        "top5_gain": t5 - med, "position_share_truth": split_truth.get("icc"),
                        "reliability": None if rel is None else rel["position_share"],
                        "probe_gain": None if rel is None else rel["probe_gain"],
                        "probe_gain_cv": None if rel is None else rel.get("probe_gain_cv"),
                        "gain_p": None if rel is None else rel["gain_p"],
                        "abstain": bool(adv.abstains), "reason": None if rel is None else rel["reason"],
                        "advice_s": adv.seconds, "dense_s": cost * len(adv.centres),
                    }
                    row["abstain_right"] = (bool(row["top5_gain"] < ABSTAIN_GAIN or row["top5_pct"] < 60.0)
                                            if row["abstain"] else None)
                    rows.append(row)
                    log(f"{variant} {_name(ds)} img{k} split{s}: top-5 {t5:.3f} (pct {row['top5_pct']:.0f}, gain "
                        f"{row['top5_gain']:+.3f}) reliability {row['reliability']} abstain {row['abstain']} "
                        f"({adv.seconds:.1f} s vs dense {row['dense_s']:.0f} s)")
    return {"rows": rows, "position_share_truth": truth,
            "per_dataset": {v: summarise([r for r in rows if r["variant"] == v]) for v in variants}}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from scipy.stats import spearmanr

    out: dict[str, Any] = {}
    groups = {ds: [r for r in rows if r["dataset"] == ds] for ds in dict.fromkeys(r["dataset"] for r in rows)}
    groups["all"] = rows
    for ds, rs in groups.items():
        rel = [(r["reliability"], r["top5_pct"]) for r in rs if r["reliability"] is not None]
        trusted = [r for r in rs if not r["abstain"]]
        abstained = [r for r in rs if r["abstain"]]
        x, y = np.array([a for a, _ in rel], float), np.array([b for _, b in rel], float)
        out[ds] = {
            "cases": len(rs),
            "top5_pct_mean": float(np.mean([r["top5_pct"] for r in rs])),
            "top5_pct_mean_trusted": float(np.mean([r["top5_pct"] for r in trusted])) if trusted else None,
            "top1_pct_mean": float(np.mean([r["top1_pct"] for r in rs])),
            "top5_gain_mean": float(np.mean([r["top5_gain"] for r in rs])),
            "abstained": len(abstained),
            "abstained_right": sum(bool(r["abstain_right"]) for r in abstained),
            "reliability_rho_pct": float(spearmanr(x, y).statistic) if len(rel) > 2 and np.ptp(x) > 0 and np.ptp(y) > 0
            else None,
            "position_share_truth_median": float(np.nanmedian([r["position_share_truth"] for r in rs
                                                               if r["position_share_truth"] is not None])),
            "advice_over_dense": float(np.median([r["advice_s"] / r["dense_s"] for r in rs])),
        }
    return out


def write_weights(datasets: list[str], cache: Path, device: str, extra: dict[str, Any]) -> None:
    """Fit the shipped descriptor weights on every stored random study (means of repeated fits)."""
    from flimexplore.analysis.advice import MIN_RHO, fit_weights
    from flimexplore.analysis.descriptors import position_descriptors

    per: dict[str, list] = {}
    for ds in datasets:
        for k in range(extra.get("images", IMAGES)):
            res = ground_truth(ds, k, "background", cache, device, extra)
            for s, ms in enumerate(res.markers):
                rows = [r for r in res.rows if r["split"] == s]
                bg = np.array([[r["bg_row"], r["bg_col"]] for r in rows])
                desc = position_descriptors(res.context.image, res.context.mask, ms.obj, bg, res.config.radius)
                per.setdefault(_name(ds), []).append((desc, np.array([r["val_dice"] for r in rows])))
    doc = {
        "method": f"mean Spearman rho of each descriptor with the mean validation Dice of {REPEATS} fits over "
                  f"random-marker studies (|rho| < {MIN_RHO} -> 0)",
        "fitted_on": sorted(per), "n_random": N_RANDOM, "repeats": REPEATS, "seed": SEED,
        "written_by": "python benchmarks/advice.py --write-weights",
        "pooled": fit_weights([c for cases in per.values() for c in cases]),
        "per_dataset": {ds: fit_weights(cases) for ds, cases in per.items()},
    }
    WEIGHTS.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {WEIGHTS}")


def markdown(result: dict[str, Any]) -> str:
    """The RESULTS.md table of one result."""
    lines = ["| variant | data set | cases | top-5 pct | top-5 pct (trusted) | top-1 pct | top-5 gain | abstained (right) | "
             "rho(reliability, pct) | position share (truth) | advice / dense time |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for var, per in result["per_dataset"].items():
        for ds, v in per.items():
            t = f"{v['top5_pct_mean_trusted']:.1f}" if v["top5_pct_mean_trusted"] is not None else "–"
            rho = f"{v['reliability_rho_pct']:+.2f}" if v["reliability_rho_pct"] is not None else "–"
            lines.append(f"| {var} | {ds} | {v['cases']} | **{v['top5_pct_mean']:.1f}** | {t} | {v['top1_pct_mean']:.1f} | "
                         f"{v['top5_gain_mean']:+.3f} | {v['abstained']} ({v['abstained_right']}) | {rho} | "
                         f"{v['position_share_truth_median']:.2f} | 1/{1 / v['advice_over_dense']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("advice", __doc__.splitlines()[0])
    p.add_argument("--vary", choices=("background", "object"), default="background", help="which marker to advise")
    p.add_argument("--datasets", default=None, help="comma-separated data sets (default: presets, nuclei, clutter)")
    p.add_argument("--variants", nargs="+", default=None, choices=list(VARIANTS), help="advice variants (default: all)")
    p.add_argument("--cache", type=Path, default=None, help=f"stored ground-truth studies, resumable (default: {CACHE})")
    p.add_argument("--write-weights", action="store_true", help=f"fit the shipped weights into {WEIGHTS.name} and stop")
    args = p.parse_args(argv)
    threads = _common.setup_threads(args.threads)
    device = _common.device("advice", args.device)
    if device is None:
        return 2
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.1f} s] {msg}", flush=True)

    datasets = args.datasets.split(",") if args.datasets else DATASETS
    variants = args.variants or (["default", "marked", "one_seed", "descriptors"] if args.vary == "background"
                                 else ["default", "marked"])
    extra: dict[str, Any] = {}
    if args.quick:
        datasets, variants = ["fish"], ["default", "descriptors"]
        extra = {"n_images": 10, "epochs": 3, "images": 2, "n_random": 6, "repeats": 2, "probe": 8}
    cache = args.cache or (Path(tempfile.mkdtemp(prefix="advice_quick_")) if args.quick else CACHE)
    if args.write_weights:
        write_weights(datasets, cache, device, extra)
        return 0
    result = evaluate(datasets, args.vary, variants, cache, device, extra, log)
    result |= {"machine": _common.machine(device), "threads": threads, "quick": bool(args.quick), "vary": args.vary,
               "n_random": extra.get("n_random", N_RANDOM), "repeats": extra.get("repeats", REPEATS), "seed": SEED,
               "variants": {v: VARIANTS[v][1] for v in variants}, "peak_rss_mb": _common.peak_rss_mb(),
               "seconds": time.perf_counter() - t0}
    print(_common.table(
        [{"variant": var, "dataset": k, **v} for var, per in result["per_dataset"].items() for k, v in per.items()],
        ["variant", "dataset", "cases", "top5_pct_mean", "top5_pct_mean_trusted", "top1_pct_mean", "top5_gain_mean",
         "abstained", "abstained_right", "reliability_rho_pct", "position_share_truth_median", "advice_over_dense"],
    ))
    print()
    print(markdown(result))
    _common.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
