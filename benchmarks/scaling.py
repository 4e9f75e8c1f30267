"""How the batched study's time and memory grow with the number of markers and of validation images.

Two sweeps on the fish preset (one object marker, 20 epochs):

* markers: 10, 30, 100, 300 background markers with W1's data (42
  validation and 45 test images);
* validation: 10, 20, 40, 80, 160 validation images (and as many test
  images plus 3, from the paper's split) with 30 background markers.

Each configuration runs in a fresh subprocess, so every peak RSS is that
configuration's own (``ru_maxrss`` of the child, data included); its time
is the fastest of ``--repeat`` runs of the study on the prepared data.  The
script prints the table and the growth exponent of time (the slope of
log time against log size; 1 is linear) and writes JSON.

    python benchmarks/scaling.py [--device cpu|cuda] [--json PATH] [--quick]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import _common
import numpy as np

MARKERS = (10, 30, 100, 300)
VALIDATION = (10, 20, 40, 80, 160)
RSS_LIMIT_MB = 3 * 1024


def _n_images(n_val: int) -> int:
    """Dataset size whose paper split (half test, 3 marked) leaves ``n_val`` validation images."""
    return 2 * (n_val + 3)


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one configuration in this process and measure it."""
    _common.setup_threads(spec["threads"])
    from flimexplore.study.config import StudyConfig
    from flimexplore.study.context import StudyContext
    from flimexplore.study.run import plan_markers, run_study_all

    config = StudyConfig(**spec["config"])
    ctx = StudyContext(config, spec["device"])
    warm = plan_markers(ctx)[0]
    ctx.evaluate(np.stack([warm.obj] * 2), warm.bg[:2], [1, 2])  # first calls allocate and load kernels
    runs = [
        _common.timed(lambda: run_study_all(config, None, device=spec["device"], context=ctx), spec["device"])
        for _ in range(spec["repeat"])
    ]
    seconds = min(t for t, _ in runs)
    result = runs[-1][1]
    return {
        "n_models": len(result.rows),
        "n_val": len(ctx.split.val),
        "n_test": len(ctx.split.test),
        "seconds": seconds,
        "peak_rss_mb": _common.peak_rss_mb(),
    }


def _run(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one configuration in a fresh Python process."""
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"scaling: configuration {spec['config']} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _slope(x: list[float], y: list[float]) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(_child(json.loads(sys.argv[2]))))
        return 0
    p = _common.parser("scaling", __doc__.splitlines()[0])
    p.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="runs per configuration; the fastest counts (default: %(default)s)",
    )
    args = p.parse_args(argv)
    threads = _common.setup_threads(args.threads)
    repeat = 1 if args.quick else max(1, args.repeat)


    device = _common.device("scaling", args.device)
    if device is None:
        return 2
    info = _common.machine(device)
    epochs = 3 if args.quick else 20
    markers = (2, 3) if args.quick else MARKERS
    validation = (2, 3) if args.quick else VALIDATION
    base = {"splits": 1, "epochs": epochs}
    specs = [("markers", m, base | {"n_images": 10 if args.quick else 90, "n_bg": m}) for m in markers]
    specs += [
        ("validation", v, base | {"n_images": _n_images(v), "n_bg": 2 if args.quick else 30})
        for v in validation
    ]

    rows = []
    t0 = time.perf_counter()
    for sweep, size, config in specs:
        row = {"sweep": sweep, "size": size}
        row |= _run({"config": config, "device": device, "threads": args.threads, "repeat": repeat})
        row["s_per_model"] = row["seconds"] / row["n_models"]
        row["ms_per_model_image"] = 1e3 * row["seconds"] / (row["n_models"] * (row["n_val"] + row["n_test"]))
        rows.append(row)
        print(f"  {sweep} {size}: {row['seconds']:.2f} s, {row['peak_rss_mb']:.0f} MiB", file=sys.stderr)

    growth = {}
    for sweep in ("markers", "validation"):
        part = [r for r in rows if r["sweep"] == sweep]
        x = [r["n_models"] if sweep == "markers" else r["n_val"] + r["n_test"] for r in part]
        growth[sweep] = _slope(x, [r["seconds"] for r in part])
    peak_markers = max(r["peak_rss_mb"] for r in rows if r["sweep"] == "markers")
    result: dict[str, Any] = {
        "device": device,
        "threads": threads,
        "epochs": epochs,
        "repeat": repeat,
        "rows": rows,
        "time_exponent_markers": growth["markers"],
        "time_exponent_images": growth["validation"],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in rows),
        "peak_rss_mb_largest_marker_count": peak_markers,
        "rss_limit_mb": RSS_LIMIT_MB,
        "meets_memory_target": bool(peak_markers < RSS_LIMIT_MB),
        "total_s": time.perf_counter() - t0,
        "machine": info,
    }
    print(
        f"scaling on {device} ({info['cpu']}, {threads} threads, load {info['load_avg_1min']}), "
        f"{epochs} epochs, one subprocess per row"
    )
    print(
        _common.table(
            rows,
            [
                "sweep",
                "size",
                "n_models",
                "n_val",
                "n_test",
                "seconds",
                "s_per_model",
                "ms_per_model_image",
                "peak_rss_mb",
            ],
        )
    )
    print(
        f"\ntime ~ models^{growth['markers']:.2f} (markers sweep), "
        f"time ~ images^{growth['validation']:.2f} (validation sweep, validation + test images); 1 is linear"
    )
    print(
        f"peak RSS at {markers[-1]} markers: {peak_markers:.0f} MiB (limit {RSS_LIMIT_MB} MiB): "
        f"{'met' if result['meets_memory_target'] else 'NOT met'}"
    )
    _common.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
