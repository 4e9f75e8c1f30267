"""The standard sweep W1: the batched engine against the one-model-at-a-time reference.

W1 is the default ``fish`` preset with 90 images (45 test, 3 marked, 42
validation, 128x128), marked image 0, 5 object markers x 30 background
markers = 150 models, 20 epochs.  Both paths run in this process on the
same prepared data; the script checks that they give the same per-model
scores, prints a table and writes JSON.  It then profiles one chunk of 32
models phase by phase and reports the achieved GFLOP/s of each phase beside
the measured float32 matrix-product peak of the same device and threads.

    python benchmarks/sweep.py [--device cpu|cuda] [--json PATH] [--threads N] [--quick]
    python benchmarks/sweep.py --workload W2 [--w2-out DIR]      # paper-sized data (see _scale.py)
    python benchmarks/sweep.py --workers 2                       # Dask LocalCluster vs in-process
"""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path
from typing import Any

import _common
import numpy as np

TARGET_SPEEDUP = 20.0
TARGET_DICE_DIFF = 1e-3


def _config(quick: bool):
    from flimexplore.study.config import StudyConfig

    if quick:
        return StudyConfig(n_images=10, splits=1, n_bg=3, epochs=3)
    return StudyConfig(n_images=90)


def _compare(batched, sequential) -> dict[str, Any]:
    """Largest per-model differences between two study results."""
    b = {r["model"]: r for r in batched.rows}
    s = {r["model"]: r for r in sequential.rows}
    if b.keys() != s.keys():
        raise SystemExit("the two paths did not produce the same models")
    keys = sorted(b)
    diff = {
        f"max_abs_{part}_{metric}_diff": max(
            abs(b[k][f"{part}_{metric}"] - s[k][f"{part}_{metric}"]) for k in keys
        )
        for part in ("val", "test")
        for metric in ("dice", "jaccard", "sensitivity", "specificity")
    }
    diff["max_abs_dice_diff"] = max(diff["max_abs_val_dice_diff"], diff["max_abs_test_dice_diff"])
    diff["best_epoch_mismatches"] = sum(b[k]["best_epoch"] != s[k]["best_epoch"] for k in keys)
    return diff


def phase_profile(ctx, device: str, n_models: int = 32) -> list[dict[str, Any]]:
    """Time and count the arithmetic of each phase for one chunk of models.

    Phases: ``train`` (kernels, marked-image encoding, 20 Adam steps),
    ``conv`` (FLIM encoding of every validation and test image), ``score``
    (gap maps, upsampling, thresholding and counting for every epoch on the
    validation set and the best epoch on the test set).  FLOPs are the
    arithmetic the engine performs (multiply-adds count 2):

    * conv: ``2 * 27 * 16 B * H * W`` per image (the band GEMMs);
    * train: per model and epoch ``4 * 16 * H * W`` for the gap map and its
      gradient (two small GEMMs) plus about ``20 * H * W`` elementwise for
      the loss and ``dL/dgap``;
    * score: per map ``2 * 16 * h * w`` for the gap (16 multiply-adds per
      pooled pixel), about ``3 * H * W`` for the exact 2x upsampling passes,
      ``H * W`` compares and ``4 * H * W`` for the counting products.
    """
    import torch

    from flimexplore.engine.batched import model_pixels
    from flimexplore.engine.decision import count_outcomes, head_gap, train_decision
    from flimexplore.engine.flim import encode, learn_banks
    from flimexplore.engine.scores import metrics_from_counts
    from flimexplore.study.run import model_seed, plan_markers

    cfg = ctx.config
    ms = plan_markers(ctx)
    table = [(s, k, m.obj, bg) for s, m in enumerate(ms) for k, bg in enumerate(m.bg)][:n_models]
    obj = np.stack([t[2] for t in table])
    bg = np.stack([t[3] for t in table])
    seeds = [model_seed(cfg.seed, cfg.image, t[0], t[1]) for t in table]
    b = len(table)
    shape = ctx.mask.shape
    hw = shape[0] * shape[1]
    e = cfg.epochs

    def train():
        bank = learn_banks(
            ctx.marked.images[0],
            model_pixels(obj, cfg.radius, shape, ctx.device),
            model_pixels(bg, cfg.radius, shape, ctx.device),
        )
        pooled = encode(ctx.marked.images[0][None], bank)[0]
        params, bn, _ = train_decision(pooled, ctx.marked.masks[0], seeds, epochs=e, lr=cfg.lr)
        return bank, head_gap(params, bn)

    t_train, (bank, (a, c)) = _common.timed(train, device)
    t_conv = t_score = 0.0
    n_conv = n_maps = 0
    val_counts = []
    for heads, groups in ((None, ctx.val_groups), ("best", ctx.test_groups)):
        if heads == "best":
            best = metrics_from_counts(np.stack(val_counts, axis=2))["dice"].mean(axis=2).argmax(axis=1)
            pick = torch.as_tensor(best, device=a.device)
            idx = torch.arange(b, device=a.device)
            a, c = a[idx, pick][:, None], c[idx, pick][:, None]
        for g in groups:
            for i in range(len(g.index)):
                images, masks = g.images[i : i + 1], g.masks[i : i + 1]
                dt, feats = _common.timed(partial(encode, images, bank), device)
                t_conv += dt
                dt, counts = _common.timed(partial(count_outcomes, feats, a, c, masks), device)
                t_score += dt
                n_conv += 1
                n_maps += a.shape[0] * a.shape[1]
                if heads is None:
                    val_counts.append(counts[:, :, 0].cpu().numpy())
    pooled_hw = ((shape[0] + 1) // 2) * ((shape[1] + 1) // 2)
    flops = {
        "train": b * e * (4 * 16 + 20) * hw,
        "conv": n_conv * 2 * 27 * 16 * b * hw,
        "score": n_maps * (2 * 16 * pooled_hw + 8 * hw),
    }
    times = {"train": t_train, "conv": t_conv, "score": t_score}
    return [
        {"phase": k, "seconds": times[k], "gflop": flops[k] / 1e9, "gflop_per_s": flops[k] / times[k] / 1e9}
        for k in ("train", "conv", "score")
    ]


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("sweep", __doc__.splitlines()[0])
    p.add_argument(
        "--repeat",
        type=int,
        default=4,
        help="batched runs, half before and half after the "
        "sequential one; the median is reported (default: %(default)s)",
    )
    p.add_argument("--workload", choices=("W1", "W2"), default="W1", help="W1 (default) or paper-sized W2")
    p.add_argument("--w2-models", type=int, default=32, help="models measured per W2 point (default: %(default)s)")
    p.add_argument("--w2-out", default=None, help="keep the full W2 sweep's folder here (a rerun resumes it)")
    p.add_argument("--val-points", default=None, metavar="N,N",
                   help="with --workload W2: only measure these image counts at 400x400 (no full sweep)")
    p.add_argument("--full-only", action="store_true",
                   help="with --workload W2: the whole W2 sweep only, not the scaling points after it")
    p.add_argument("--relate-w1", metavar="W1_JSON", nargs="?", const=str(_common.RESULTS / "sweep.json"),
                   help="recompute the W2 JSON's ratio to W1 from a W1 run on the same machine "
                   "(default: results/sweep.json)")
    p.add_argument("--jobs", type=int, default=1, help="W2 points run side by side (default: %(default)s)")
    p.add_argument("--workers", type=int, default=None, help="compare a sweep on N Dask workers with in-process")
    args = p.parse_args(argv)
    threads = _common.setup_threads(args.threads)
    if args.relate_w1:
        import json

        import _scale

        path = args.json if args.json != _common.RESULTS / "sweep.json" else _common.RESULTS / "sweep_w2.json"
        data = json.loads(path.read_text())
        data |= _scale.relate_w1(data, Path(args.relate_w1))
        _common.write_json(path, data)
        print(f"W2 / W1 per model: {data['ratio_to_w1_per_model']:.1f}x "
              f"(pixels x scored images: {data['pixels_x_images_ratio']:.1f}x)")
        return 0
    if args.workload == "W2" or args.workers:
        return _scale_main(args)

    from flimexplore.study.context import StudyContext
    from flimexplore.study.run import plan_markers, run_study_all

    device = _common.device("sweep", args.device)
    if device is None:
        return 2
    config = _config(args.quick)
    info = _common.machine(device)
    ctx = StudyContext(config, device)
    warm = plan_markers(ctx)[0]
    ctx.evaluate(np.stack([warm.obj] * 2), warm.bg[:2], [1, 2])  # first calls allocate and load kernels

    def batched_run():
        dt, res = _common.timed(lambda: run_study_all(config, None, device=device, context=ctx), device)
        batched_times.append(dt)
        return res

    # The batched runs bracket the long sequential one, so that both see the
    # same machine (a shared machine's load drifts over minutes).
    batched_times: list[float] = []
    runs = 1 if args.quick else max(1, args.repeat)
    for _ in range((runs + 1) // 2):
        batched = batched_run()
    sequential_s, sequential = _common.timed(
        lambda: run_study_all(config, None, device=device, engine="sequential", context=ctx), device
    )
    for _ in range(runs // 2):
        batched = batched_run()
    batched_s = float(np.median(batched_times))
    n = len(batched.rows)
    result: dict[str, Any] = {
        "workload": "W1" if not args.quick else "quick",
        "config": config.to_dict(),
        "n_models": n,
        "n_val": len(ctx.split.val),
        "n_test": len(ctx.split.test),
        "device": device,
        "threads": threads,
        "sequential_s": sequential_s,
        "sequential_s_per_model": sequential_s / n,
        "batched_s": batched_s,
        "batched_runs_s": batched_times,
        "speedup": sequential_s / batched_s,
        "models_per_s": n / batched_s,
        **_compare(batched, sequential),
    }
    phases = phase_profile(ctx, device, n_models=4 if args.quick else 32)
    peak = _common.matmul_peak_gflops(device, size=512 if args.quick else 2048)
    for ph in phases:
        ph["percent_of_matmul_peak"] = 100 * ph["gflop_per_s"] / peak
    result |= {
        "phases_32_models": phases,
        "matmul_peak_gflop_per_s": peak,
        "peak_rss_mb": _common.peak_rss_mb(),
        "machine": info | {"load_avg_1min_after": round(os.getloadavg()[0], 2)},
    }
    result["meets_target"] = bool(
        result["speedup"] >= TARGET_SPEEDUP and result["max_abs_dice_diff"] <= TARGET_DICE_DIFF
    )

    print(f"W1 sweep on {device} ({info['cpu']}, {threads} threads, load {info['load_avg_1min']})")
    print(
        _common.table(
            [result],
            [
                "n_models",
                "sequential_s",
                "batched_s",
                "speedup",
                "models_per_s",
                "max_abs_dice_diff",
                "best_epoch_mismatches",
                "peak_rss_mb",
            ],
        )
    )
    print(
        f"\nphases of one chunk of {4 if args.quick else 32} models; float32 matmul peak {peak:.1f} GFLOP/s"
    )
    print(_common.table(phases, ["phase", "seconds", "gflop", "gflop_per_s", "percent_of_matmul_peak"]))
    print(
        f"\ntarget: speedup >= {TARGET_SPEEDUP:g} with Dice diff <= {TARGET_DICE_DIFF:g}: "
        f"{'met' if result['meets_target'] else 'NOT met'}"
    )
    _common.write_json(args.json, result)
    return 0


def _scale_main(args) -> int:
    import _scale

    device = _common.device("sweep", args.device)
    if device is None:
        return 2
    info = _common.machine(device)
    default = _common.RESULTS / ("sweep_workers.json" if args.workers else "sweep_w2.json")
    path = args.json if args.json != _common.RESULTS / "sweep.json" else default

    def save(result):
        result["machine"] = info | {"load_avg_1min_after": round(os.getloadavg()[0], 2)}
        _common.write_json(path, result)

    save(_scale.run_workers(args, device) if args.workers else _scale.run_w2(args, device, save))
    return 0


if __name__ == "__main__":
    sys.exit(main())
