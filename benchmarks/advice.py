"""Marker advice against random markers and the dense map (issue 8, part 5).

For every bundled dataset, marked image and object marker (split) this
compares the validation Dice of the advisor's top-1 and top-5 background
positions with 30 random admissible background markers (an ordinary study,
``n_bg=30``, same seed: the same object markers) and with the best position
of a dense study.  Advice weights are fitted leave-one-image-out on the
random studies: the weights used for an image never saw that image's Dice.

The Dice of an advised position is looked up in the dense study when that
split has one, else trained exactly as the dense study would (same object
marker, same centre, same model seed ``model_seed(seed, image, split, k)``
with ``k`` the centre's index on the dense grid).  Studies are stored in
``--cache`` and resumed, see ``_advice_collect.py``.

    python benchmarks/advice.py [--quick] [--cache DIR] [--collect-only] [--write-weights]
        [--dense-splits N] [--threads N]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _advice_collect as col
import _common
import numpy as np

DATASETS = ["fish", "eggs", "fundus", "nuclei"]
CACHE = Path(__file__).resolve().parent / "results" / "advice_cache"
WEIGHTS = Path(__file__).resolve().parents[1] / "flimexplore" / "analysis" / "advice_weights.json"
N_RANDOM = 30
PROBE = 64
SEED = 0


def _cases(cache: Path, datasets: list[str], images: int, extra: dict[str, Any]) -> dict[tuple[str, int], Any]:
    """Per marked image: the loaded dataset, and per split the random markers' descriptors and Dice."""
    from flimexplore.analysis.descriptors import position_descriptors
    from flimexplore.data import load_dataset, split_dataset
    from flimexplore.study.store import read_results

    out = {}
    for ds in datasets:
        data = load_dataset(ds, n_images=extra.get("n_images"))
        for k in range(images):
            folder = col.study_dir(cache, ds, k, "random")
            if not (folder / "results.csv").exists():
                continue
            idx = split_dataset(len(data), seed=SEED).marked[k]
            rows = read_results(folder / "results.csv")
            splits = {}
            for s in sorted({r["split"] for r in rows}):
                rr = [r for r in rows if r["split"] == s]
                obj = np.array([rr[0]["obj_row"], rr[0]["obj_col"]])
                bg = np.array([[r["bg_row"], r["bg_col"]] for r in rr])
                desc = position_descriptors(data.images[idx], data.masks[idx], obj, bg, rr[0]["radius"])
                splits[s] = (desc, np.array([r["val_dice"] for r in rr]), obj)
            out[(ds, k)] = (data, splits)
    return out


def _dense_lookup(cache: Path, ds: str, k: int) -> tuple[dict[tuple[int, int, int], float], dict[str, float] | None]:
    """Validation Dice of every stored dense model by (split, bg_row, bg_col), and the dense timing."""
    from flimexplore.study.store import read_results

    folder = col.study_dir(cache, ds, k, "dense")
    if not (folder / "results.csv").exists():
        return {}, None
    rows = read_results(folder / "results.csv")
    return {(r["split"], r["bg_row"], r["bg_col"]): r["val_dice"] for r in rows}, col.timing(folder)


def _pct(values: np.ndarray, x: float) -> float:
    """Percentile of ``x`` among ``values`` (ties count half)."""
    return float(100 * ((values < x).mean() + 0.5 * (values == x).mean()))


VARIANTS = {
    "same_dataset": "descriptors only; weights fitted on the other marked images of the same dataset (leave-one-image-out)",
    "other_datasets": "descriptors only; weights fitted on the other datasets only (leave-one-dataset-out: a new kind of image)",
    "same_dataset+probe": "same_dataset, then the best 64 re-ranked by their model's fit on the marked image",
    "same_dataset+mix": "same_dataset, then the best 64 re-ranked by the mean rank of that fit and the descriptor score",
    "other_datasets+probe": "other_datasets, then the best 64 re-ranked by their model's fit on the marked image",
}


def _weights(cases: dict, ds: str, k: int, variant: str) -> dict[str, float]:
    from flimexplore.analysis.advice import fit_weights

    if variant.startswith("same_dataset"):
        keys = [key for key in cases if key[0] == ds and key != (ds, k)]
    else:
        keys = [key for key in cases if key[0] != ds]
    w = fit_weights([(d, y) for key in keys for d, y, _ in cases[key][1].values()])
    return w if any(w.values()) else {"bg_std": 1.0}  # nothing to learn from: plain texture


def evaluate(cache: Path, datasets: list[str], images: int, device: str, extra: dict[str, Any], log: Any) -> dict[str, Any]:
    from flimexplore.analysis.advice import AdviceSettings, advise
    from flimexplore.study.context import StudyContext
    from flimexplore.study.run import dense_positions, model_seed

    cases = _cases(cache, datasets, images, extra)
    spacing = extra.get("dense_spacing")
    rows = []
    for (ds, k), (data, splits) in cases.items():
        lookup, dense_t = _dense_lookup(cache, ds, k)
        trained_cache = cache / f"advised_{ds}_img{k}.json"  # Dice of advised positions trained here (not dense rows)
        stored = json.loads(trained_cache.read_text()) if trained_cache.exists() else {}
        lookup |= {tuple(int(v) for v in key.split(",")): d for key, d in stored.items() if tuple(int(v) for v in key.split(",")) not in lookup}
        ctx = None
        for variant in extra.get("variants", VARIANTS):
            weights = _weights(cases, ds, k, variant)
            for s, (_, random_dice, obj) in splits.items():
                rerank = variant.split("+")[1] if "+" in variant else "probe"
                adv = advise(AdviceSettings(dataset=ds, image=k, split=s, seed=SEED, n_images=extra.get("n_images"), spacing=spacing,
                                            probe=extra.get("probe", PROBE) if "+" in variant else 0, rerank=rerank, epochs=extra.get("epochs", 20),
                                            device=device), data=data, weights=weights)
                assert (adv.obj == obj).all(), "advice and study disagree on the object marker"
                top = adv.top(5)
                dice = [lookup.get((s, int(c[0]), int(c[1]))) for c in top]
                trained = 0
                if any(v is None for v in dice):
                    grid = dense_positions(data.masks[split_index(data, k)], obj, adv.radius, spacing)
                    index = {(int(r), int(c)): i for i, (r, c) in enumerate(grid)}
                    study_extra = {key: v for key, v in extra.items() if key in ("n_images", "epochs", "dense_spacing")}
                    ctx = ctx or StudyContext(col.config(ds, k, "dense", 1, N_RANDOM, SEED, **study_extra), device, dataset=data)
                    need = [i for i, v in enumerate(dice) if v is None]
                    seeds = [model_seed(SEED, k, s, index[(int(top[i][0]), int(top[i][1]))]) for i in need]
                    scores = ctx.evaluate(np.repeat(obj[None], len(need), 0), top[need], seeds)
                    for j, i in enumerate(need):
                        dice[i] = round(float(scores.val["dice"][j]), 6)
                        lookup[(s, int(top[i][0]), int(top[i][1]))] = dice[i]  # not a dense row: kept out of dense_best below
                        stored[f"{s},{int(top[i][0])},{int(top[i][1])}"] = dice[i]
                    trained = len(need)
                    trained_cache.write_text(json.dumps(stored))
                dense_all = [r["val_dice"] for r in _dense_rows(cache, ds, k) if r["split"] == s]
                complete = len(dense_all) == len(adv.centres)
                dense_s = dense_t["seconds"] / dense_t["models"] * len(adv.centres) if dense_t and dense_t["models"] else None
                med = float(np.median(random_dice))
                t5 = float(np.mean(dice))
                row = {
                    "variant": variant, "dataset": ds, "image": k, "split": s, "n_candidates": len(adv.centres),
                    "top1_dice": dice[0], "top5_mean_dice": t5, "top5_dice": dice,
                    "random_median": med, "random_min": float(random_dice.min()), "random_max": float(random_dice.max()),
                    "top1_pct": _pct(random_dice, dice[0]), "top5_pct": _pct(random_dice, t5),
                    "top1_gain": dice[0] - med, "top5_gain": t5 - med, "top1_beats_median": bool(dice[0] > med),
                    "dense_best": max(dense_all) if complete else None,
                    "advice_s": adv.seconds, "dense_s": dense_s, "advised_trained": trained, "weights": weights,
                }
                rows.append(row)
                log(f"{variant} {ds} img{k} split{s}: top1 {dice[0]:.3f} top5 {t5:.3f} random median {med:.3f} "
                    f"(pct {row['top1_pct']:.0f}/{row['top5_pct']:.0f}) dense best {row['dense_best']}")
    variants = {v: VARIANTS[v] for v in extra.get("variants", VARIANTS)}
    return {"rows": rows, "variants": variants,
            "per_dataset": {v: _summarise([r for r in rows if r["variant"] == v]) for v in variants}}


def _dense_rows(cache: Path, ds: str, k: int) -> list[dict[str, Any]]:
    from flimexplore.study.store import read_results

    path = col.study_dir(cache, ds, k, "dense") / "results.csv"
    return read_results(path) if path.exists() else []


def split_index(data: Any, k: int) -> int:
    from flimexplore.data import split_dataset

    return split_dataset(len(data), seed=SEED).marked[k]


def _summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        rs = [r for r in rows if r["dataset"] == ds]
        dense = [r for r in rs if r["dense_best"] is not None]
        ratio = [r["advice_s"] / r["dense_s"] for r in rs if r["dense_s"]]
        out[ds] = {
            "cases": len(rs),
            "top1_pct_mean": float(np.mean([r["top1_pct"] for r in rs])),
            "top5_pct_mean": float(np.mean([r["top5_pct"] for r in rs])),
            "top1_gain_mean": float(np.mean([r["top1_gain"] for r in rs])),
            "top5_gain_mean": float(np.mean([r["top5_gain"] for r in rs])),
            "top1_beats_median_share": float(np.mean([r["top1_beats_median"] for r in rs])),
            "random_median_mean": float(np.mean([r["random_median"] for r in rs])),
            "top5_dice_mean": float(np.mean([r["top5_mean_dice"] for r in rs])),
            "dense_cases": len(dense),
            "dense_best_mean": float(np.mean([r["dense_best"] for r in dense])) if dense else None,
            "top5_dice_mean_dense_cases": float(np.mean([r["top5_mean_dice"] for r in dense])) if dense else None,
            "advice_s_median": float(np.median([r["advice_s"] for r in rs])),
            "dense_s_median": float(np.median([r["dense_s"] for r in rs if r["dense_s"]])) if ratio else None,
            "advice_over_dense": float(np.median(ratio)) if ratio else None,
            "meets_pct_target": bool(np.mean([r["top5_pct"] for r in rs]) >= 75.0),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("advice", __doc__.splitlines()[0])
    p.add_argument("--cache", type=Path, default=None, help=f"folder of the stored studies, resumable (default: {CACHE}; --quick: a temporary folder)")
    p.add_argument("--collect-only", action="store_true", help="only run the random and dense studies")
    p.add_argument("--no-collect", action="store_true", help="use the stored studies as they are")
    p.add_argument("--first-splits", type=int, default=1, help="dense splits of every image before the rest")
    p.add_argument("--dense-splits", type=int, default=5, help="dense splits per image (the rest are not run)")
    p.add_argument("--refresh", type=Path, default=None, metavar="JSON",
                   help="do not rank again: re-attach the dense studies now in --cache to the rows of JSON and re-summarise")
    p.add_argument("--write-weights", action="store_true", help=f"fit the shipped weights on every random study into {WEIGHTS.name}")
    args = p.parse_args(argv)
    threads = _common.setup_threads(args.threads)
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.1f} s] {msg}", flush=True)

    if args.cache is None:
        args.cache = Path(tempfile.mkdtemp(prefix="advice_quick_")) if args.quick else CACHE
    if args.quick:
        datasets, images, splits, extra = ["fish"], 1, 1, {"n_images": 8, "epochs": 2, "dense_spacing": 20}
        bench, n_random = {"probe": 8, "variants": ["same_dataset", "same_dataset+probe"]}, 10
    else:
        bench, n_random = {}, N_RANDOM
        datasets, images, splits, extra = DATASETS, 3, 5, {}
    if args.refresh is not None:
        result = json.loads(args.refresh.read_text())
        _attach_dense(result["rows"], args.cache)
        result["per_dataset"] = {v: _summarise([r for r in result["rows"] if r["variant"] == v]) for v in result["variants"]}
        if "rho" not in result:
            result["rho"] = correlations(args.cache, datasets, images, extra, args.device, log)
        return _report(result, args.json)
    if not args.no_collect:
        col.collect(args.cache, datasets, images, splits, n_random, SEED, args.device,
                    args.first_splits, log, dense_splits=min(args.dense_splits, splits), **extra)
    if args.collect_only:
        return 0
    if args.write_weights:
        write_weights(args.cache, datasets, images, extra)
    result = evaluate(args.cache, datasets, images, args.device, extra | bench, log)
    result["rho"] = correlations(args.cache, datasets, images, extra, args.device, log)
    result |= {"machine": _common.machine(args.device), "threads": threads, "quick": bool(args.quick),
               "n_random": n_random, "seed": SEED, "probe": bench.get("probe", PROBE), "settings": extra or "dataset defaults",
               "peak_rss_mb": _common.peak_rss_mb()}
    return _report(result, args.json)


def correlations(cache: Path, datasets: list[str], images: int, extra: dict[str, Any], device: str, log: Any) -> dict[str, Any]:
    """Per dataset: mean (and per-case) Spearman rho of every descriptor and of the probe with validation Dice.

    One case is one (marked image, object marker) with its ``N_RANDOM`` random background markers.
    """
    from scipy.stats import spearmanr

    from flimexplore.analysis.probe import marked_fit
    from flimexplore.study.store import read_results

    out: dict[str, Any] = {}
    for (ds, k), (data, splits) in _cases(cache, datasets, images, extra).items():
        rows = read_results(col.study_dir(cache, ds, k, "random") / "results.csv")
        idx = split_index(data, k)
        for s, (desc, dice, obj) in splits.items():
            rr = [r for r in rows if r["split"] == s]
            bg = np.array([[r["bg_row"], r["bg_col"]] for r in rr])
            fit = marked_fit(data.images[idx], data.masks[idx], obj, bg, rr[0]["radius"], [r["seed"] for r in rr],
                             extra.get("epochs", 20), device=device)
            for name, x in {**desc, "marked_fit": fit}.items():
                if np.ptp(x) > 0 and np.ptp(dice) > 0:
                    out.setdefault(ds, {}).setdefault(name, []).append(round(float(spearmanr(x, dice).statistic), 4))
        log(f"rho: {ds} img{k} done")
    return {ds: {name: {"mean": float(np.mean(v)), "share_positive": float(np.mean(np.array(v) > 0)), "cases": v}
                 for name, v in per.items()} for ds, per in out.items()}


def _attach_dense(rows: list[dict[str, Any]], cache: Path) -> None:
    """Fill ``dense_best`` and ``dense_s`` of every row from the dense studies stored now."""
    for (ds, k) in {(r["dataset"], r["image"]) for r in rows}:
        dense = _dense_rows(cache, ds, k)
        t = col.timing(col.study_dir(cache, ds, k, "dense"))
        for r in rows:
            if (r["dataset"], r["image"]) != (ds, k):
                continue
            dice = [d["val_dice"] for d in dense if d["split"] == r["split"]]
            r["dense_best"] = max(dice) if len(dice) == r["n_candidates"] else None
            r["dense_s"] = t["seconds"] / t["models"] * r["n_candidates"] if t and t["models"] else r.get("dense_s")
            if r["dense_best"] is not None:  # the advised positions' Dice as the dense study measured them
                by_pos = {(d["bg_row"], d["bg_col"]): d["val_dice"] for d in dense if d["split"] == r["split"]}
                r["dense_rank_top1"] = int(1 + sum(v > r["top1_dice"] for v in by_pos.values()))


def _report(result: dict[str, Any], path: Path) -> int:
    print(_common.table(
        [{"variant": var, "dataset": k, **v} for var, per in result["per_dataset"].items() for k, v in per.items()],
        ["variant", "dataset", "cases", "top1_pct_mean", "top5_pct_mean", "top1_gain_mean", "top5_gain_mean",
         "top1_beats_median_share", "dense_cases", "dense_best_mean", "top5_dice_mean_dense_cases", "advice_over_dense"],
    ))
    _common.write_json(path, result)
    return 0


def write_weights(cache: Path, datasets: list[str], images: int, extra: dict[str, Any]) -> None:
    """Fit the shipped advice weights on every stored random study: per dataset and pooled."""
    from flimexplore.analysis.advice import MIN_RHO, fit_weights

    cases = _cases(cache, datasets, images, extra)

    def pairs(keep: Any) -> list[tuple[Any, Any]]:
        return [(d, y) for key, (_, sp) in cases.items() if keep(key) for d, y, _ in sp.values()]

    doc = {
        "method": f"mean Spearman rho of each descriptor with validation Dice over random-marker studies (|rho| < {MIN_RHO} -> 0)",
        "fitted_on": sorted(f"{ds}_img{k}" for ds, k in cases), "n_random": N_RANDOM, "seed": SEED,
        "written_by": "python benchmarks/advice.py --write-weights",
        "pooled": fit_weights(pairs(lambda key: True)),
        "per_dataset": {ds: fit_weights(pairs(lambda key, ds=ds: key[0] == ds)) for ds in dict.fromkeys(k[0] for k in cases)},
    }
    WEIGHTS.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {WEIGHTS}")


if __name__ == "__main__":
    sys.exit(main())
