"""Clustering quality (issue 10): k-means inertia against scikit-learn, and the Dice effect on W1.

1. *Inertia.*  For each preset (marked image 0, the study's sampled
   markers: 5 object markers and ``n_bg`` background markers each) the
   patches under every marker are clustered into 8 kernels by the engine's
   original farthest-point k-means, by seeded k-means++ with 10 restarts,
   and by scikit-learn's ``KMeans(n_clusters=8, n_init=10, random_state=0)``.
   The table gives each method's inertia divided by scikit-learn's (median
   and worst over the markers of the preset; below 1 is better).  The
   fraction of markers whose clusters libift would drop (< 5 % of the
   patches) is also given.
2. *Dice on W1.*  The W1 study (``sweep.py``) runs with the original
   clustering and with the candidates; the table gives min / median / max of
   the validation and test Dice of the 150 models.

    python benchmarks/clustering.py [--device cpu|cuda] [--json PATH] [--threads N] [--quick]
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

import _common
import numpy as np

PRESETS = ("fish", "eggs", "fundus", "nuclei")
CANDIDATES = {
    "original (farthest, 1 run)": {},
    "k-means++ x10": {"clustering": "kmeans++", "restarts": 10},
    "k-means++ x10, drop < 5 %": {"clustering": "kmeans++", "restarts": 10, "min_cluster_fraction": 0.05},
}


def _inertia(points, centroids) -> float:
    d = ((points[:, None, :] - centroids[None]) ** 2).sum(-1)
    return float(d.min(axis=1).sum())


def inertia_rows(quick: bool) -> list[dict[str, Any]]:
    import torch
    from sklearn.cluster import KMeans

    from flimexplore.engine.batched import model_pixels
    from flimexplore.engine.clustering import kmeans_farthest, kmeans_pp
    from flimexplore.engine.flim import marker_statistics, sample_patches
    from flimexplore.study.config import StudyConfig
    from flimexplore.study.context import StudyContext
    from flimexplore.study.run import plan_markers

    warnings.filterwarnings("ignore", message="Number of distinct clusters")  # flat regions: duplicate patches
    rows = []
    for name in PRESETS:
        cfg = StudyConfig(dataset=name, n_images=12, splits=2 if quick else 5, n_bg=3 if quick else None)
        ctx = StudyContext(cfg, "cpu")
        r, shape, image = ctx.config.radius, ctx.mask.shape, ctx.marked.images[0]
        ratios: dict[str, list[float]] = {"farthest": [], "kmeans++ x10": []}
        small = 0
        n_sets = 0
        for ms in plan_markers(ctx):
            obj = np.stack([ms.obj] * len(ms.bg))
            op, bp = model_pixels(obj, r, shape), model_pixels(ms.bg, r, shape)
            mean, std = marker_statistics(image, op, bp)
            # each model's object and background patches, normalised with that model's statistics
            sets = torch.cat([sample_patches(image, op, mean, std), sample_patches(image, bp, mean, std)])
            far, far_members = kmeans_farthest(sets, 8)
            pp, pp_members = kmeans_pp(sets, 8, restarts=10, seed=42)
            n = sets.shape[1]
            small += int(((pp_members < max(0.05 * n, 1)) & (pp_members > 0)).any(dim=1).sum())
            n_sets += len(sets)
            for i, p in enumerate(sets.numpy()):
                ref = _inertia(p, KMeans(n_clusters=8, n_init=10, random_state=0).fit(p).cluster_centers_)
                if ref <= 1e-9:  # identical patches (flat image region): every method is exact
                    continue
                ratios["farthest"].append(_inertia(p, far[i].numpy()) / ref)
                ratios["kmeans++ x10"].append(_inertia(p, pp[i].numpy()) / ref)
        for method, values in ratios.items():
            v = np.asarray(values)
            rows.append({
                "preset": name, "method": method, "n_markers": len(v),
                "median_ratio": float(np.median(v)), "worst_ratio": float(v.max()),
                "share_with_small_clusters": small / n_sets,
            })
    return rows


def dice_rows(quick: bool, device: str) -> list[dict[str, Any]]:
    from flimexplore.study.config import StudyConfig
    from flimexplore.study.context import StudyContext
    from flimexplore.study.run import run_study_all

    base = StudyConfig(n_images=10, splits=1, n_bg=3, epochs=3) if quick else StudyConfig(n_images=90)
    first = StudyContext(base, device)
    rows = []
    for label, change in CANDIDATES.items():
        ctx = StudyContext(base.replace(**change), device, dataset=first.dataset)
        dt, res = _common.timed(lambda ctx=ctx: run_study_all(ctx.config, None, device=device, context=ctx), device)
        row: dict[str, Any] = {"clustering": label, "settings": change, "n_models": len(res.rows), "seconds": dt}
        for part in ("val", "test"):
            d = np.asarray([r[f"{part}_dice"] for r in res.rows])
            row |= {f"{part}_dice_min": float(d.min()), f"{part}_dice_median": float(np.median(d)),
                    f"{part}_dice_max": float(d.max()), f"{part}_dice_mean": float(d.mean())}
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("clustering", __doc__.splitlines()[0])
    args = p.parse_args(argv)
    threads = _common.setup_threads(args.threads)
    device = _common.device("clustering", args.device)
    if device is None:
        return 2
    info = _common.machine(device)
    inertia = inertia_rows(args.quick)
    print("k-means inertia / scikit-learn KMeans(n_init=10) inertia, per marker (8 clusters)")
    print(_common.table(inertia, ["preset", "method", "n_markers", "median_ratio", "worst_ratio", "share_with_small_clusters"]))
    dice = dice_rows(args.quick, device)
    print(f"\n{'W1' if not args.quick else 'quick'} Dice by clustering")
    print(_common.table(dice, ["clustering", "n_models", "val_dice_min", "val_dice_median", "val_dice_max",
                               "test_dice_min", "test_dice_median", "test_dice_max"]))
    result = {
        "workload": "W1" if not args.quick else "quick",
        "device": device,
        "threads": threads,
        "inertia": inertia,
        "dice": dice,
        "peak_rss_mb": _common.peak_rss_mb(),
        "machine": info | {"load_avg_1min_after": round(os.getloadavg()[0], 2)},
    }
    _common.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
