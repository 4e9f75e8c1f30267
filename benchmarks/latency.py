"""Interactive latency: the user moves one background marker, one model is trained and scored.

This is what the explorer does on every marker change
(``StudyContext.evaluate`` with one marker pair): learn the FLIM kernels,
train the decision layer for 20 epochs, score every epoch on the
validation set and the best one on the test set.  On W1's data (fish, 90
images: 42 validation, 45 test) it times one change per background marker
of the sampled splits and reports the median against the 0.3 s target.

    python benchmarks/latency.py [--device cpu|cuda] [--json PATH] [--changes N] [--quick]
"""

from __future__ import annotations

import sys
from typing import Any

import _common
import numpy as np

TARGET_S = 0.3


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("latency", __doc__.splitlines()[0])
    p.add_argument("--changes", type=int, default=40, help="marker changes to time (default: %(default)s)")
    args = p.parse_args(argv)
    threads = _common.setup_threads(args.threads)

    from flimexplore.study.config import StudyConfig
    from flimexplore.study.context import StudyContext
    from flimexplore.study.run import model_seed, plan_markers

    device = _common.device("latency", args.device)
    if device is None:
        return 2
    config = StudyConfig(n_images=14, splits=1, n_bg=4, epochs=3) if args.quick else StudyConfig(n_images=90)
    info = _common.machine(device)
    ctx = StudyContext(config, device)
    moves = [
        (ms.obj, bg, model_seed(config.seed, config.image, s, k))
        for s, ms in enumerate(plan_markers(ctx))
        for k, bg in enumerate(ms.bg)
    ]
    n = min(len(moves), 3 if args.quick else max(1, args.changes))
    for obj, bg, seed in moves[:2]:  # first calls allocate and load kernels
        ctx.evaluate(obj[None], bg[None], [seed])
    times = [
        _common.timed(lambda o=obj, b=bg, s=seed: ctx.evaluate(o[None], b[None], [s]), device)[0]
        for obj, bg, seed in moves[:n]
    ]
    result: dict[str, Any] = {
        "n_changes": n,
        "n_val": len(ctx.split.val),
        "n_test": len(ctx.split.test),
        "epochs": config.epochs,
        "device": device,
        "threads": threads,
        "median_s": float(np.median(times)),
        "p10_s": float(np.percentile(times, 10)),
        "p90_s": float(np.percentile(times, 90)),
        "min_s": float(min(times)),
        "max_s": float(max(times)),
        "target_s": TARGET_S,
        "times_s": times,
        "peak_rss_mb": _common.peak_rss_mb(),
        "machine": info,
    }
    result["meets_target"] = bool(result["median_s"] <= TARGET_S)
    print(
        f"one marker change = train + score one model, on {device} ({info['cpu']}, {threads} threads, "
        f"load {info['load_avg_1min']})"
    )
    print(
        _common.table(
            [result], ["n_changes", "n_val", "n_test", "median_s", "p10_s", "p90_s", "max_s", "peak_rss_mb"]
        )
    )
    print(f"\ntarget: median <= {TARGET_S:g} s: {'met' if result['meets_target'] else 'NOT met'}")
    _common.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
