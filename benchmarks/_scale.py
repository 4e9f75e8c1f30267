"""W2 (paper-sized data) and the Dask comparison of ``benchmarks/sweep.py``.

W2 is the ``eggs`` preset (the Schisto stand-in) drawn at 400x400 with 632
images (316 test, 3 marked, 313 validation), 5 object x 30 background
markers per marked image, 3 marked images: 450 models.  Every measurement
point runs in its own process, so that its peak resident memory is its own:

* ``w2``: one chunk of models of marked image 0 at the full W2 size; the
  time per model times 450 estimates the full W2 (``--w2-models`` sets the
  chunk; the full W2 was not run on the shared 2-core machine);
* ``side``: the same number of validation images at sides 128, 256, 400;
* ``val``: 400x400 with 42, 122 and 313 validation images.

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


def run_w2(args: Any, device: str, save: Any) -> dict[str, Any]:
    """The W2 estimate and the scaling tables; ``save(partial)`` is called after every point.

    The result so far is saved after each point, so an interrupted run
    still leaves its measured points.
    """
    m = 2 if args.quick else args.w2_models
    big, n_big, sides, n_side, vals = (
        (96, 14, (64, 96), 10, (10,)) if args.quick else (W2_SIZE, W2_IMAGES, (128, 256, 400), 90, (90, 250))
    )
    out: dict[str, Any] = {
        "workload": "quick" if args.quick else "W2", "dataset": "eggs", "size": big, "n_images": n_big,
        "n_val": _n_val(n_big), "models_measured": m, "models_full": W2_MODELS_FULL, "complete": False,
        "by_side": [], "by_val": [],
    }
    specs = [(s, n_side) for s in sides] + [(big, n) for n in vals if (big, n) not in [(s, n_side) for s in sides]]
    specs.append((big, n_big))
    done: dict[tuple[int, int], dict[str, Any]] = {}
    # --jobs > 1 runs points side by side (each in its own process): on a shared, loaded machine
    # that gets the run done; the times then include the points' contention with each other.
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(point, s, n, m, device, args.threads): (s, n) for s, n in specs}
        for fut in as_completed(futures):
            done[futures[fut]] = fut.result()
            out["by_side"] = [done[(s, n_side)] for s in sides if (s, n_side) in done]
            out["by_val"] = [done[(big, n)] for n in (*vals, n_big) if (big, n) in done]
            save(out)
    w2 = done[(big, n_big)]
    w1 = json.loads(W1_S_PER_MODEL_FILE.read_text()) if W1_S_PER_MODEL_FILE.exists() else None
    w1_s = w1["batched_s"] / w1["n_models"] if w1 else None
    side = out["by_side"]
    out |= {
        "complete": True,
        "s_per_model": w2["s_per_model"], "prepare_s": w2["prepare_s"],
        "full_w2_estimate_s": w2["s_per_model"] * W2_MODELS_FULL + 3 * w2["prepare_s"],
        "peak_rss_mb": max(p["peak_rss_mb"] for p in [*side, *out["by_val"]]),
        "w2_peak_rss_mb": w2["peak_rss_mb"],
        "w1_s_per_model_from_sweep_json": w1_s,
        "ratio_to_w1_per_model": w2["s_per_model"] / w1_s if w1_s else None,
        "ratio_largest_to_smallest_side": side[-1]["s_per_model"] / side[0]["s_per_model"],
        "note": f"W2 time per model measured on one chunk of {m} models of marked image 0 and multiplied by 450 "
                "(plus one data preparation per marked image); the full W2 was not run on this shared machine",
    }
    print(f"W2 on {device}: {out['s_per_model']:.3g} s per model, estimate {out['full_w2_estimate_s'] / 60:.1f} min "
          f"for 450 models; peak RSS {out['peak_rss_mb']:.0f} MB")
    cols = ["size", "n_images", "n_val", "models", "prepare_s", "s_per_model", "peak_rss_mb"]
    print(f"\nby image side ({n_side} images):\n" + _common.table(side, cols))
    print(f"\nby validation size ({big}x{big}):\n" + _common.table(out["by_val"], cols))
    return out


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
        t0 = time.perf_counter()
        client = dask_client(workers=args.workers, gpu=device.startswith("cuda"))
        timings["cluster_start_s"] = time.perf_counter() - t0
        try:
            for granularity in ("chunk", "study"):
                client.restart()  # no prepared data left over from the previous run
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
    cols = ["n_models", "workers", "in_process_s", "dask_chunk_s", "dask_study_s", "cluster_start_s",
            "speedup_chunk", "speedup_study", "identical"]
    print(_common.table([out], cols))
    return out


if __name__ == "__main__" and sys.argv[1:2] == ["--point"]:
    _point_main(sys.argv[2])
