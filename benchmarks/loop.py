"""Robot users of the annotation loop on every bundled dataset: markers needed, curve areas, seconds per step (issue 18, part 4).

For fish, eggs, fundus and nuclei (marked image 0, seed 0, 20 epochs, the
dataset's radius) the three policies of ``flimexplore simulate`` (random,
advised, error) add markers from 2 to 10, 5 repeats each, refitting after
every marker.  Per dataset and policy this reports: NoC at 0.80/0.85/0.90
(markers needed to first reach that validation Dice; 11 = not reached;
mean, Student t 95 % interval over repeats, repeats that reached it), the
area under the validation (and test) Dice curve, the paired difference of
areas between policies (repeat ``r`` of every policy shares its start, seeds
and model training, so differences are paired by repeat), and seconds per
refit step (train + score one model on the validation and test images) and
per marker decision.  The loops are stored in ``--cache`` and resumed; the
timings are those of the run that computed each step (``timed_now`` says how
many steps this run computed).

    python benchmarks/loop.py [--quick] [--cache DIR] [--datasets fish,eggs,fundus,nuclei] [--repeats 5]
        [--max-markers 10] [--candidates 8] [--threads N] [--device cpu]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common
import numpy as np

DATASETS = ["fish", "eggs", "fundus", "nuclei"]
CACHE = Path(__file__).resolve().parent / "results" / "loop_cache"
TARGET_S = 0.3
"""Interactive budget of one refit step at 128x128 (issue 18)."""
PAIRS = (("advised", "error"), ("advised", "random"), ("error", "random"))


def run_dataset(name: str, cache: Path, settings: dict[str, Any], device: str, log: Any) -> tuple[Any, int]:
    """The loops of one dataset (resumed from ``cache``) and how many refit steps this run computed."""
    from flimexplore.loop.config import LoopConfig
    from flimexplore.loop.run import simulate
    from flimexplore.study.config import StudyConfig

    study = StudyConfig(dataset=name, seed=0, image=0, epochs=settings["epochs"], n_images=settings.get("n_images"))
    cfg = LoopConfig(study=study, max_markers=settings["max_markers"], repeats=settings["repeats"],
                     candidates=settings["candidates"])
    gen = simulate(cfg, cache / name, device=device)
    first = None
    while True:
        try:
            ev = next(gen)
        except StopIteration as stop:
            return stop.value, ev.total - (first or 0)
        if first is None:
            first = ev.done
            log(f"{name}: {ev.message}")
        elif ev.done % max(1, ev.total // 10) == 0:
            log(f"{name}: {ev.done}/{ev.total} steps; {ev.message}")


def paired(result: Any, a: str, b: str) -> dict[str, Any] | None:
    """Area of policy ``a`` minus area of ``b``, paired by repeat: mean and 95 % t interval."""
    from flimexplore.study.repeats import mean_interval

    s = result.summary()["policies"]
    if a not in s or b not in s:
        return None
    diff = np.array(s[a]["area"]["per_repeat"]) - np.array(s[b]["area"]["per_repeat"])
    mean, _, lo, hi = mean_interval(diff)
    verdict = (f"{a} above {b}" if np.isfinite(lo) and lo > 0 else f"{b} above {a}" if np.isfinite(hi) and hi < 0
               else "no difference shown")
    return {"pair": f"{a}-{b}", "mean": round(mean, 4), "lo": _r(lo), "hi": _r(hi), "verdict": verdict}


def _r(v: float) -> float | None:
    return round(float(v), 4) if np.isfinite(v) else None


def summarise(name: str, result: Any, computed: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows (dataset x policy) and the dataset's summary."""
    summary = result.summary()
    rows = []
    steps = {p: [s for (q, _), run in result.runs.items() if q == p for s in run["steps"]] for p in summary["policies"]}
    for policy, s in summary["policies"].items():
        row: dict[str, Any] = {"dataset": name, "policy": policy, "repeats": s["n_repeats"],
                               "area": s["area"]["mean"], "area_lo": s["area"]["lo"], "area_hi": s["area"]["hi"],
                               "test_area": s["test_area"]["mean"],
                               "refit_s_median": round(float(np.median([x["refit_s"] for x in steps[policy]])), 4),
                               "policy_s_median": round(float(np.median([x["policy_s"] for x in steps[policy]
                                                                          if x["step"] < result.config.max_markers - 2])), 4)}
        for n in s["noc"]:
            t = f"{round(100 * n['target'])}"
            row |= {f"noc{t}": n["mean"], f"noc{t}_lo": n["lo"], f"noc{t}_hi": n["hi"], f"reached{t}": n["n_reached"]}
        rows.append(row)
    best = max(rows, key=lambda r: r["area"])
    comparisons = [c for a, b in PAIRS if (c := paired(result, a, b)) is not None]
    refit = [x["refit_s"] for p in steps for x in steps[p]]
    ctx = result.context.study
    return rows, {
        "best_area": best["policy"], "comparisons": comparisons, "refit_s_median": round(float(np.median(refit)), 4),
        "refit_s_p90": round(float(np.percentile(refit, 90)), 4), "steps": len(refit), "timed_now": computed,
        "image": ctx.stem, "shape": list(ctx.mask.shape), "radius": result.context.radius,
        "n_val_images": len(ctx.split.val), "n_test_images": len(ctx.split.test),
    }


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("loop", __doc__.splitlines()[0])
    p.add_argument("--cache", type=Path, default=None,
                   help=f"folder of the stored loops, resumable (default: {CACHE}; --quick: a temporary folder)")
    p.add_argument("--datasets", default=",".join(DATASETS), help="datasets (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=5, help="repeats per policy (default: %(default)s)")
    p.add_argument("--max-markers", type=int, default=10, help="markers at the end of a run (default: %(default)s)")
    p.add_argument("--candidates", type=int, default=8, help="candidates the advised policy probes (default: %(default)s)")
    args = p.parse_args(argv)
    threads = _common.setup_threads(args.threads)
    device = _common.device("loop", args.device)
    if device is None:
        return 2
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.1f} s] {msg}", flush=True)

    if args.quick:
        datasets = ["fish"]
        settings = {"n_images": 16, "epochs": 3, "max_markers": 3, "repeats": 2, "candidates": 2}
    else:
        datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
        settings = {"epochs": 20, "max_markers": args.max_markers, "repeats": args.repeats, "candidates": args.candidates}
    cache = args.cache or (Path(tempfile.mkdtemp(prefix="loop_quick_")) if args.quick else CACHE)
    rows, per = [], {}
    for name in datasets:
        result, computed = run_dataset(name, cache, settings, device, log)
        r, s = summarise(name, result, computed)
        rows += r
        per[name] = s
    small = [s["refit_s_median"] for s in per.values() if s["shape"] == [128, 128]]
    out = {
        "rows": rows, "per_dataset": per, "settings": settings | {"seed": 0, "image": 0, "targets": [0.8, 0.85, 0.9]},
        "target_s": TARGET_S, "meets_target": bool(small) and max(small) <= TARGET_S,
        "machine": _common.machine(device), "threads": threads, "quick": bool(args.quick),
        "wall_s": round(time.perf_counter() - t0, 1), "peak_rss_mb": _common.peak_rss_mb(), "cache": str(cache),
    }
    print(_common.table(rows, ["dataset", "policy", "noc80", "noc85", "noc90", "reached90", "area", "area_lo", "area_hi",
                               "test_area", "refit_s_median", "policy_s_median"]))
    print()
    for name, s in per.items():
        said = "; ".join(f"{c['pair']} {c['mean']:+.3f} [{c['lo']}, {c['hi']}]: {c['verdict']}" for c in s["comparisons"])
        print(f"{name}: best area {s['best_area']}; {said}; refit median {s['refit_s_median']} s ({s['timed_now']} of "
              f"{s['steps']} steps timed now)")
    print(f"refit step at 128x128: median <= {TARGET_S} s: {out['meets_target']}")
    _common.write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
