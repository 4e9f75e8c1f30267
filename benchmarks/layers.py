"""Cost of 2 and 3 FLIM layers on W1 (issue 10), against the paper's single layer.

W1 (see ``sweep.py``): the ``fish`` preset with 90 images, marked image 0,
5 object x 30 background markers = 150 models, 20 epochs.  The study runs
with ``--layers 1``, ``2`` and ``3`` (the decision layer reads the last
layer; every other setting the paper's) in this one process on the same
prepared data, alternating the settings over ``--repeat`` rounds, and
reports the median time of each and its ratio to one layer, with the
validation Dice range of the models.  Layer 1 uses the engine's banded
encoding; 2 and 3 layers the grouped-convolution layer path.

    python benchmarks/layers.py [--device cpu|cuda] [--json PATH] [--threads N] [--quick] [--repeat R]
"""

from __future__ import annotations

import os
import sys
from typing import Any

import _common
import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("layers", __doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=2, help="rounds over the three settings (default: %(default)s)")
    args = p.parse_args(argv)
    threads = _common.setup_threads(args.threads)

    from flimexplore.study.config import StudyConfig
    from flimexplore.study.context import StudyContext
    from flimexplore.study.run import plan_markers, run_study_all

    device = _common.device("layers", args.device)
    if device is None:
        return 2
    base = StudyConfig(n_images=10, splits=1, n_bg=3, epochs=3) if args.quick else StudyConfig(n_images=90)
    info = _common.machine(device)
    first = StudyContext(base, device)
    contexts = {}
    for n in (1, 2, 3):
        ctx = StudyContext(base.replace(layers=n), device, dataset=first.dataset)
        contexts[n] = ctx
        warm = plan_markers(ctx)[0]
        ctx.evaluate(np.stack([warm.obj] * 2), warm.bg[:2], [1, 2])  # first calls allocate and load kernels
    times: dict[int, list[float]] = {1: [], 2: [], 3: []}
    dice: dict[int, list[float]] = {}
    for _ in range(1 if args.quick else max(1, args.repeat)):
        for n, ctx in contexts.items():
            dt, res = _common.timed(lambda ctx=ctx: run_study_all(ctx.config, None, device=device, context=ctx), device)
            times[n].append(dt)
            dice[n] = [r["val_dice"] for r in res.rows]
    rows = []
    one = float(np.median(times[1]))
    for n in (1, 2, 3):
        d = np.asarray(dice[n])
        rows.append({
            "layers": n,
            "seconds": float(np.median(times[n])),
            "runs_s": times[n],
            "ratio_to_1_layer": float(np.median(times[n])) / one,
            "val_dice_min": float(d.min()),
            "val_dice_median": float(np.median(d)),
            "val_dice_max": float(d.max()),
            "n_models": len(d),
        })
    result: dict[str, Any] = {
        "workload": "W1" if not args.quick else "quick",
        "config": base.to_dict(),
        "device": device,
        "threads": threads,
        "rows": rows,
        "peak_rss_mb": _common.peak_rss_mb(),
        "machine": info | {"load_avg_1min_after": round(os.getloadavg()[0], 2)},
    }
    print(f"W1 with 1-3 FLIM layers on {device} ({info['cpu']}, {threads} threads, load {info['load_avg_1min']})")
    print(_common.table(rows, ["layers", "n_models", "seconds", "ratio_to_1_layer", "val_dice_min", "val_dice_median", "val_dice_max"]))
    _common.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
