"""What ``benchmarks/gpu.sh`` runs: W1 and W2 on a device, CPU agreement, tf32/bf16 Dice change.

Every timing synchronises the device before and after (``_common.timed``).
W2 runs until ``--budget-s`` is spent; when it stops early, the JSON says so
and gives the measured time per model and the estimate for all 450 models.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common

AGREE = 1e-3


def _configs(quick: bool):
    from flimexplore.study.config import StudyConfig

    if quick:
        return (StudyConfig(n_images=10, splits=1, n_bg=3, epochs=3),
                StudyConfig(dataset="eggs", n_images=14, size=96, splits=1, n_bg=2, epochs=3), "0")
    return StudyConfig(n_images=90), StudyConfig(dataset="eggs", n_images=632, size=400), "all"


def _w1(config, device: str, precision: str = "fp32"):
    from flimexplore.study.run import run_study_all

    run_study_all(config.replace(splits=1, n_bg=2), None, device=device, precision=precision)  # warm-up
    return _common.timed(lambda: run_study_all(config, None, device=device, precision=precision), device)


def _max_diff(a, b) -> float:
    return max(abs(x[f"{p}_dice"] - y[f"{p}_dice"]) for x, y in zip(a.rows, b.rows, strict=True) for p in ("val", "test"))


def _w2(config, images: str, device: str, budget_s: float) -> dict[str, Any]:
    from flimexplore.sweep import run_sweep

    out = Path(tempfile.mkdtemp(prefix="flimexplore-gpu-w2-"))
    t0 = time.perf_counter()
    first = None
    last = None
    try:
        gen = run_sweep([config.dataset], images, config, out, device=device)
        while True:
            try:
                ev = next(gen)
            except StopIteration:
                break
            _common.synchronize(device)
            if ev.computed and first is None:
                first = (time.perf_counter(), ev.computed)  # after the first chunk: data prepared, kernels warm
            last = (time.perf_counter(), ev)
            if time.perf_counter() - t0 > budget_s:
                gen.close()
                break
    finally:
        shutil.rmtree(out, ignore_errors=True)
    now, ev = last
    per_model = (now - first[0]) / (ev.computed - first[1]) if first and ev.computed > first[1] else None
    return {
        "models_done": ev.computed, "models_total": ev.total, "complete": ev.done == ev.total,
        "wall_s": now - t0, "s_per_model_steady": per_model,
        "estimate_all_s": per_model * ev.total + (first[0] - t0) if per_model else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("gpu", "W1 and W2 on a GPU, CPU agreement, tf32/bf16 Dice change")
    p.set_defaults(device="cuda")
    p.add_argument("--budget-s", type=float, default=None, help="seconds for W2 (default: 240, quick: 60)")
    args = p.parse_args(argv)
    threads = _common.setup_threads(args.threads)
    if args.device == "cpu" and not args.quick:
        print("gpu.sh: on the CPU only --quick is meant to run (use benchmarks/sweep.py for CPU numbers)", file=sys.stderr)
    device = _common.device("gpu", args.device)
    if device is None:
        return 2
    w1_cfg, w2_cfg, w2_images = _configs(args.quick)
    result: dict[str, Any] = {"device": device, "threads": threads, "quick": args.quick,
                              "machine": _common.machine(device)}
    dev_s, dev = _w1(w1_cfg, device)
    cpu_s, cpu = (dev_s, dev) if device == "cpu" else _w1(w1_cfg, "cpu")
    diff = _max_diff(dev, cpu)
    result["w1"] = {"n_models": len(dev.rows), "seconds": dev_s, "s_per_model": dev_s / len(dev.rows),
                    "cpu_seconds": cpu_s, "speedup_vs_cpu": cpu_s / dev_s,
                    "max_abs_dice_diff_vs_cpu": diff, "agrees_with_cpu": diff <= AGREE}
    result["precision"] = {}
    for prec in ("tf32", "bf16"):
        if not device.startswith("cuda"):
            result["precision"][prec] = {"skipped": "CUDA only"}
            continue
        s, res = _w1(w1_cfg, device, prec)
        result["precision"][prec] = {"seconds": s, "max_abs_dice_change_vs_fp32": _max_diff(res, dev)}
    budget = args.budget_s if args.budget_s is not None else (60.0 if args.quick else 240.0)
    result["w2"] = _w2(w2_cfg, w2_images, device, budget) | {"budget_s": budget}
    result["peak_rss_mb"] = _common.peak_rss_mb()
    if device.startswith("cuda"):
        import torch

        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    w1, w2 = result["w1"], result["w2"]
    print(f"W1 on {device}: {w1['seconds']:.2f} s for {w1['n_models']} models ({w1['speedup_vs_cpu']:.1f}x the CPU), "
          f"max Dice diff vs CPU {w1['max_abs_dice_diff_vs_cpu']:.2g} ({'OK' if w1['agrees_with_cpu'] else 'DISAGREES'})")
    for prec, r in result["precision"].items():
        print(f"  {prec}: " + (r["skipped"] if "skipped" in r else
                               f"{r['seconds']:.2f} s, max Dice change {r['max_abs_dice_change_vs_fp32']:.2g}"))
    print(f"W2: {w2['models_done']}/{w2['models_total']} models in {w2['wall_s']:.1f} s; steady "
          f"{w2['s_per_model_steady'] or float('nan'):.3g} s per model")
    _common.write_json(args.json, result)
    return 0 if w1["agrees_with_cpu"] else 1


if __name__ == "__main__":
    sys.exit(main())
