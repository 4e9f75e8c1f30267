"""A whole `flimexplore study` process, this checkout against an older commit, and where its time goes.

The command is the one a user runs: ``python -m flimexplore study --dataset DIR --splits 5 --n-bg 30
--radius 3 --out NEW_DIR`` on a 90-image fish folder (written once from the preset as PNG files),
in a fresh process each time, so start-up, imports, reading the folder, the study and the figures
all count.  The baseline is an older commit checked out with ``git worktree`` next to this one
(default 15d1d90, the code before the subpackage, FLIM-settings, ImageStore and packed-mask work)
and run with the same Python and packages.  The two alternate over ``--rounds`` rounds (medians);
then each is profiled once, phase by phase: importing the command line, the study engine
(``evaluate``: train, encode, score) and the end of the study (figures and summary).

    python benchmarks/process.py [--baseline COMMIT] [--rounds 5] [--json PATH] [--quick]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PROFILE = r"""
import cProfile, json, pstats, sys, tempfile, time
t0 = time.perf_counter()
from flimexplore.cli import main
imported = time.perf_counter() - t0
pr = cProfile.Profile(); pr.enable()
main(sys.argv[1:] + ["--out", tempfile.mkdtemp()])
pr.disable()
phases = {"import_cli_s": imported}
for (path, line, name), row in pstats.Stats(pr).stats.items():
    if name == "evaluate" and "context.py" in path:
        phases["engine_evaluate_s"] = row[3]
    if name in ("_finish", "write_outputs") and ("study" in path):
        phases["figures_and_summary_s"] = row[3]
print(json.dumps(phases))
"""


def fish_folder(root: Path, n: int) -> Path:
    """The fish preset's first ``n`` images written as a folder dataset (PNG images and masks)."""
    import imageio.v3 as iio

    from flimexplore.data import load_dataset

    data = load_dataset("fish", n_images=n)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    for stem, image, mask in zip(data.stems, data.images, data.masks, strict=True):
        iio.imwrite(root / "images" / f"{stem}.png", np.rint(np.asarray(image) * 255).astype(np.uint8))
        iio.imwrite(root / "masks" / f"{stem}.png", (np.asarray(mask) * 255).astype(np.uint8))
    return root


def run(code: Path, args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one study process running the package at ``code``."""
    env = dict(os.environ, PYTHONPATH=str(code))
    t0 = time.perf_counter()
    # cwd too: ``python -m`` and ``-c`` put the working folder ahead of PYTHONPATH on sys.path.
    proc = subprocess.Popen([sys.executable, "-m", "flimexplore", *args, "--out", tempfile.mkdtemp()], env=env,
                            cwd=code, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the study at {code} failed")
    return wall, usage.ru_maxrss / 1024


def profile(code: Path, args: list[str]) -> dict[str, float]:
    """Seconds of each phase (import, engine, figures) in one profiled study process running ``code``."""
    env = dict(os.environ, PYTHONPATH=str(code))
    out = subprocess.run([sys.executable, "-c", PROFILE, *args], env=env, cwd=code, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("process", __doc__.splitlines()[0])
    p.add_argument("--baseline", default="15d1d90", help="the older commit (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds (default: %(default)s)")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="process_"))
    base = work / "baseline"
    added = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.baseline],
                           capture_output=True, text=True)
    if added.returncode != 0:
        raise SystemExit(f"cannot check out the baseline {args.baseline} next to {ROOT}: {added.stderr.strip()} "
                         "(a shallow clone lacks old commits: `git fetch --unshallow`, or pass --baseline HEAD)")
    try:
        n, splits, n_bg = (20, 1, 4) if args.quick else (90, 5, 30)
        folder = fish_folder(work / "fish", n)
        study = ["study", "--dataset", str(folder), "--splits", str(splits), "--n-bg", str(n_bg), "--radius", "3",
                 "--quiet"] + (["--epochs", "3"] if args.quick else [])
        codes = {"now": ROOT, "baseline": base}
        for code in codes.values():
            run(code, study)  # warm-up: file caches, first imports
        walls: dict[str, list[float]] = {k: [] for k in codes}
        peaks: dict[str, list[float]] = {k: [] for k in codes}
        for _ in range(1 if args.quick else args.rounds):
            for name, code in codes.items():
                w, m = run(code, study)
                walls[name].append(w)
                peaks[name].append(m)
        phases = {name: profile(code, study) for name, code in codes.items()}
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], capture_output=True)
    med = {k: float(np.median(v)) for k, v in walls.items()}
    rows = [{"code": k, "wall_s_median": med[k], "wall_s_min": min(walls[k]), "wall_s_max": max(walls[k]),
             "peak_rss_mb_median": float(np.median(peaks[k])), **phases[k]} for k in codes]
    print(_common.table(rows, ["code", "wall_s_median", "wall_s_min", "wall_s_max", "peak_rss_mb_median", "import_cli_s",
                               "engine_evaluate_s", "figures_and_summary_s"]))
    print(f"now / baseline (medians): {med['now'] / med['baseline']:.3f}")
    result: dict[str, Any] = {
        "rows": rows, "walls": walls, "ratio": med["now"] / med["baseline"], "baseline": args.baseline,
        "command": " ".join(["python -m flimexplore", *study, "--out NEW_DIR"]), "rounds": args.rounds,
        "machine": _common.machine("cpu"), "quick": bool(args.quick),
        "peak_rss_mb": max(r["peak_rss_mb_median"] for r in rows),
    }
    _common.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
