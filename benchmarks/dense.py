"""Dense marker map: every admissible background position on a grid, for one object marker.

Runs the real command line, ``flimexplore study --dense --splits 1``, on
the fish preset (one 128x128 marked image; by default the preset's 60
images: 27 validation, 30 test) with a grid spacing of the marker radius,
in a subprocess, and times it end to end (start-up, data, every model,
results, heatmap).  Target: under 60 s on the 2-core CPU.

    python benchmarks/dense.py [--device cpu|cuda] [--json PATH] [--spacing PX] [--quick]
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common

TARGET_S = 60.0


def _preset_size(name: str) -> int | None:
    """Images a named dataset loads by default."""
    from flimexplore.data import list_datasets

    return next((d.n_images for d in list_datasets() if d.name == name), None)


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("dense", __doc__.splitlines()[0])
    p.add_argument(
        "--spacing", type=int, default=None, help="grid spacing in px (default: the marker radius)"
    )
    p.add_argument("--n-images", type=int, default=None, help="dataset size (default: the preset's)")
    args = p.parse_args(argv)
    threads = _common.setup_threads(args.threads)
    info = _common.machine(args.device)

    command = [
        sys.executable,
        "-m",
        "flimexplore",
        "study",
        "--dense",
        "--splits",
        "1",
        "--device",
        args.device,
        "--quiet",
    ]
    if args.quick:
        command += ["--n-images", "8", "--dense-spacing", "24", "--epochs", "2"]
    else:
        if args.spacing is not None:
            command += ["--dense-spacing", str(args.spacing)]
        if args.n_images is not None:
            command += ["--n-images", str(args.n_images)]
    env = dict(os.environ)
    if args.threads is not None:
        env["OMP_NUM_THREADS"] = str(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "dense"
        t0 = time.perf_counter()
        proc = subprocess.run(
            [*command, "--out", str(out)], capture_output=True, text=True, env=env, check=False
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print(f"dense: the study failed ({proc.returncode}):\n{proc.stderr}", file=sys.stderr)
            return 1
        summary = json.loads((out / "summary.json").read_text())
        heatmaps = sorted(f.name for f in out.glob("heatmap_split*.png"))
    n = summary["n_models"]
    result: dict[str, Any] = {
        "command": " ".join(command[1:]),
        "n_models": n,
        "n_images": summary["config"]["n_images"] or _preset_size(summary["config"]["dataset"]),
        "spacing": summary["config"]["dense_spacing"] or summary["config"]["radius"],
        "device": summary["device"],
        "threads": threads if args.threads is not None else "default",
        "wall_s": wall,
        "study_s": summary["elapsed_s"],
        "models_per_s": n / summary["elapsed_s"],
        "val_dice_min": summary["val_dice_min"],
        "val_dice_max": summary["val_dice_max"],
        "heatmaps": heatmaps,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "target_s": TARGET_S,
        "machine": info,
    }
    result["meets_target"] = bool(wall < TARGET_S)
    print(f"dense map, one split, on {result['device']} ({info['cpu']}, load {info['load_avg_1min']})")
    print(f"  {result['command']}")
    print(
        _common.table(
            [result], ["n_models", "n_images", "spacing", "wall_s", "study_s", "models_per_s", "peak_rss_mb"]
        )
    )
    print(f"\ntarget: under {TARGET_S:g} s end to end: {'met' if result['meets_target'] else 'NOT met'}")
    _common.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
