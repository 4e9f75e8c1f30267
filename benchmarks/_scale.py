"""W2 (paper-sized data) and the Dask comparison of ``benchmarks/sweep.py``.

W2 is the ``eggs`` preset (the Schisto stand-in) drawn at 400x400 with 632
images (316 test, 3 marked, 313 validation), 5 object x 30 background
markers per marked image, 3 marked images: 450 models.  Every measurement
point runs in its own process, so that its peak resident memory is its own:

* ``full``: the whole W2 protocol as one ``flimexplore sweep`` command in a
  child process (wall time and the child's peak RSS; ``--w2-out DIR`` keeps
  the sweep folder, and a rerun with it resumes);
* ``side``: the same number of validation images at sides 128, 256, 400;
* ``val``: 400x400 with 42, 122, 313 and 629 validation images (the last
  is twice W2's image set: memory must not grow with it)
  (``--w2-models`` models of marked image 0 per point).

``--workers 2`` times the same small sweep in this process and on a
2-worker ``LocalCluster`` and reports the ratio.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import _common

W2_IMAGES, W2_SIZE, W2_MODELS_FULL = 632, 400, 3 * 5 * 30
W1_S_PER_MODEL_FILE = _common.RESULTS / "sweep.json"


def point(size: int, n_images: int, models: int, device: str, threads: int | None) -> dict[str, Any]:
    """Prepare one study (eggs, marked image 0) and train/score ``models`` models; runs in a child process."""
    args = [sys.executable, __file__, "--point", json.dumps([size, n_images, models, device, threads])]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"point {size}x{size}, {n_images} images failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _point_main(spec: str) -> None:
    size, n_images, models, device, threads = json.loads(spec)
    _common.setup_threads(threads)
    from flimexplore.study.config import StudyConfig
    from flimexplore.sweep.worker import compute_models

    cfg = StudyConfig(dataset="eggs", n_images=n_images, size=size, splits=1, n_bg=models)
    t0 = time.perf_counter()
    compute_models(cfg, [], device=device)  # prepares the data (drawing, split, Lab tensors)
    prepare_s = time.perf_counter() - t0
    res = compute_models(cfg, list(range(models)), device=device, model_chunk=models)
    line = {
        "size": size, "n_images": n_images, "n_val": _n_val(n_images),
        "models": models, "prepare_s": prepare_s, "models_s": res.seconds,
        "s_per_model": res.seconds / models, "peak_rss_mb": _common.peak_rss_mb(),
        "best_val_dice": max(r["val_dice"] for r in res.rows),
    }
    print(json.dumps(line))


def _n_val(n_images: int) -> int:
    from flimexplore.data import split_dataset

    return len(split_dataset(n_images).val)


def full_sweep(out: Path, quick: bool, device: str, threads: int | None) -> dict[str, Any]:
    """Run the whole W2 protocol with ``flimexplore sweep`` in a child process; wall time and peak RSS.

    The sweep is the user's command, unchanged: 3 marked images x 5 object
    x 30 background markers of ``eggs`` at 400x400 with 632 images.  A
    rerun with the same ``out`` resumes it (the JSON then says how many
    models this run trained, and the time covers only those).
    """
    import os

    size, n_images, images, splits, n_bg = (96, 14, "0", 1, 2) if quick else (W2_SIZE, W2_IMAGES, "0,1,2", 5, 30)
    cmd = [sys.executable, "-m", "flimexplore", "sweep", "--dataset", "eggs", "--size", str(size),
           "--n-images", str(n_images), "--images", images, "--splits", str(splits), "--n-bg", str(n_bg),
           "--device", device, "--out", str(out)]
    if quick:
        cmd += ["--epochs", "3"]
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)  # torch reads it at start
    resumed = (out / "sweep.csv").exists() or any(out.glob("*/results.csv")) if out.exists() else False
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    with open(out.parent / f"{out.name}.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        tail = (out.parent / f"{out.name}.log").read_text()[-3000:]
        raise SystemExit(f"the W2 sweep failed (log {out.parent / f'{out.name}.log'}):\n{tail}")
    report = json.loads((out / "sweep.json").read_text())
    n_models = len(images.split(",")) * splits * n_bg
    return {
        "command": " ".join(["flimexplore", *cmd[3:]]),
        "models": n_models, "resumed": bool(resumed), "wall_s": wall, "s_per_model": wall / n_models,
        "peak_rss_mb": usage.ru_maxrss / 1024, "load_avg_1min_before": round(load0, 2),
        "load_avg_1min_after": round(os.getloadavg()[0], 2), "sweep_json": report,
    }


def run_w2(args: Any, device: str, save: Any) -> dict[str, Any]:
    """The full W2 sweep, then the scaling tables; ``save(partial)`` is called after every step.

    The result so far is saved after each step, so an interrupted run
    still leaves what it measured.
    """
    import shutil
    import tempfile

    m = 2 if args.quick else args.w2_models
    big, n_big, sides, n_side, vals = (
        (96, 14, (64, 96), 10, (10,)) if args.quick else (W2_SIZE, W2_IMAGES, (128, 256, 400), 90, (90, 250))
    )
    out: dict[str, Any] = {
        "workload": "quick" if args.quick else "W2", "dataset": "eggs", "size": big, "n_images": n_big,
        "n_val": _n_val(n_big), "models_measured": m, "models_full": W2_MODELS_FULL, "complete": False,
        "by_side": [], "by_val": [],
    }
    if getattr(args, "val_points", None):  # only these validation-size points (no full sweep, no side points)
        return run_val_points(args, device, save, m, big)
    keep = Path(args.w2_out) if args.w2_out else None
    folder = keep or Path(tempfile.mkdtemp(prefix="flimexplore-w2-")) / "w2"
    try:
        out["full"] = full_sweep(folder, args.quick, device, args.threads)
    finally:
        if keep is None:
            shutil.rmtree(folder.parent, ignore_errors=True)
    save(out)
    if getattr(args, "full_only", False):
        full = out["full"]
        out |= {"complete": True, "s_per_model": full["s_per_model"], "peak_rss_mb": full["peak_rss_mb"],
                "w2_peak_rss_mb": full["peak_rss_mb"],
                "note": "full only: the whole W2 sweep as one `flimexplore sweep` command (time per model includes "
                        "drawing and preparing the data of each marked image); no scaling points"}
        print(f"W2 on {device}: {full['wall_s'] / 60:.1f} min for {full['models']} models "
              f"({full['s_per_model']:.3g} s per model), peak RSS {full['peak_rss_mb']:.0f} MiB")
        return out
    # beyond W2: twice its images, to show that memory does not grow with the validation set
    n_beyond = 2 * n_big
    specs = [(s, n_side) for s in sides] + [(big, n) for n in vals if (big, n) not in [(s, n_side) for s in sides]]
    specs += [(big, n_big), (big, n_beyond)]
    done: dict[tuple[int, int], dict[str, Any]] = {}
    # --jobs > 1 runs points side by side (each in its own process): on a shared, loaded machine
    # that gets the run done; the times then include the points' contention with each other.
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(point, s, n, m, device, args.threads): (s, n) for s, n in specs}
        for fut in as_completed(futures):
            done[futures[fut]] = fut.result()
            out["by_side"] = [done[(s, n_side)] for s in sides if (s, n_side) in done]
            out["by_val"] = [done[(big, n)] for n in (*vals, n_big, n_beyond) if (big, n) in done]
            save(out)
    side, by_val, full = out["by_side"], out["by_val"], out["full"]
    out |= {
        "complete": True,
        "s_per_model": full["s_per_model"],
        "peak_rss_mb": max(p["peak_rss_mb"] for p in [*side, *by_val, full]),
        "w2_peak_rss_mb": full["peak_rss_mb"],
        "ratio_largest_to_smallest_side": side[-1]["s_per_model"] / side[0]["s_per_model"],
        "ratio_largest_to_smallest_val": by_val[-1]["s_per_model"] / by_val[0]["s_per_model"],
        **(relate_w1({**out, "s_per_model": full["s_per_model"]}) if W1_S_PER_MODEL_FILE.exists() else {}),
        "note": "full: the whole W2 sweep as one `flimexplore sweep` command (time per model includes drawing "
                "and preparing the data of each marked image); by_side/by_val: one chunk of "
                f"{m} models of marked image 0 per point, data preparation timed apart",
    }
    print(f"W2 on {device}: {full['wall_s'] / 60:.1f} min for {full['models']} models "
          f"({full['s_per_model']:.3g} s per model), peak RSS {full['peak_rss_mb']:.0f} MiB")
    cols = ["size", "n_images", "n_val", "models", "prepare_s", "s_per_model", "peak_rss_mb"]
    print(f"\nby image side ({n_side} images):\n" + _common.table(side, cols))
    print(f"\nby validation size ({big}x{big}):\n" + _common.table(by_val, cols))
    return out


def run_val_points(args: Any, device: str, save: Any, models: int, size: int) -> dict[str, Any]:
    """Re-measure chosen validation-size points (``--val-points 632,1264``), one process each."""
    sizes = [int(v) for v in str(args.val_points).split(",")]
    out: dict[str, Any] = {"workload": "W2 validation-size points", "dataset": "eggs", "size": size,
                           "models_measured": models, "by_val": []}
    for n in sizes:
        out["by_val"].append(point(size, n, models, device, args.threads))
        save(out)
    out["peak_rss_mb"] = max(p["peak_rss_mb"] for p in out["by_val"])
    cols = ["size", "n_images", "n_val", "models", "prepare_s", "s_per_model", "peak_rss_mb"]
    print(f"by validation size ({size}x{size}):\n" + _common.table(out["by_val"], cols))
    return out


def relate_w1(w2: dict[str, Any], w1_json: Path = W1_S_PER_MODEL_FILE) -> dict[str, Any]:
    """W2's time per model against W1's from ``w1_json`` (a ``sweep.py`` run on the same machine).

    W1 (fish, 128x128, 87 scored images, 150 models) is timed by ``sweep.py``
    without data preparation; W2's ``full`` time per model includes drawing
    and preparing each marked image's data, so the ratio is an upper bound
    of the per-model engine cost ratio.  The pixel x scored-image ratio of
    the two workloads is given beside it: what a cost linear in both predicts.
    """
    if not w1_json.exists():
        raise SystemExit(f"{w1_json} is missing: run `python benchmarks/sweep.py --json {w1_json}` first")
    w1 = json.loads(w1_json.read_text())
    w1_s = w1["batched_s"] / w1["n_models"]
    scored = w2["n_images"] - 3
    return {
        "w1_json": w1_json.name,
        "w1_s_per_model_from_sweep_json": w1_s,
        "w1_machine": w1.get("machine"),
        "ratio_to_w1_per_model": w2["s_per_model"] / w1_s,
        "pixels_x_images_ratio": (w2["size"] / 128) ** 2 * scored / 87,
    }


def run_workers(args: Any, device: str) -> dict[str, Any]:
    """The same small sweep in this process and on a LocalCluster of ``--workers`` workers.

    The cluster runs it twice, with one task per chunk of models and with
    one task per study (each into a fresh folder), to choose the default
    granularity by measurement.
    """
    import shutil
    import tempfile

    from flimexplore.study.config import StudyConfig
    from flimexplore.sweep import dask_client, read_sweep, run_sweep_all

    cfg = StudyConfig(n_images=30 if args.quick else 90, splits=1 if args.quick else 2,
                      n_bg=4 if args.quick else 16, epochs=3 if args.quick else 20)
    images = "0,1" if args.quick else "all"
    chunk = 4 if args.quick else 16
    root = Path(tempfile.mkdtemp(prefix="flimexplore-bench-"))
    timings: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        run_sweep_all(["fish"], images, cfg, root / "inproc", device=device, model_chunk=chunk)
        timings["in_process_s"] = time.perf_counter() - t0
        for granularity in ("chunk", "study"):  # a fresh cluster each: no prepared data left over
            t0 = time.perf_counter()
            client = dask_client(workers=args.workers, gpu=device.startswith("cuda"))
            timings[f"cluster_start_{granularity}_s"] = time.perf_counter() - t0
            try:
                t0 = time.perf_counter()
                res = run_sweep_all(["fish"], images, cfg, root / granularity, executor=client, device=device,
                                    model_chunk=chunk, granularity=granularity)
                timings[f"dask_{granularity}_s"] = time.perf_counter() - t0
            finally:
                cluster = client.cluster
                client.close()
                cluster.close()
        ref = read_sweep(root / "inproc")
        same = all(
            len(ref) == len(other) and all(abs(x["val_dice"] - y["val_dice"]) <= 1e-6 for x, y in zip(ref, other, strict=True))
            for other in (read_sweep(root / "chunk"), read_sweep(root / "study"))
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    out = {
        "workload": "workers", "config": cfg.to_dict(), "images": images, "model_chunk": chunk,
        "n_models": res.computed, "workers": args.workers, **timings,
        "speedup_chunk": timings["in_process_s"] / timings["dask_chunk_s"],
        "speedup_study": timings["in_process_s"] / timings["dask_study_s"],
        "identical": bool(same), "peak_rss_mb": _common.peak_rss_mb(),
    }
    cols = ["n_models", "workers", "in_process_s", "dask_chunk_s", "dask_study_s", "cluster_start_chunk_s",
            "speedup_chunk", "speedup_study", "identical"]
    print(_common.table([out], cols))
    return out


if __name__ == "__main__" and sys.argv[1:2] == ["--point"]:
    _point_main(sys.argv[2])
