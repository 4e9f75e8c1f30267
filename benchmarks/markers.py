"""Cost of markers of any shape: scribbles against the paper's disks on W1.

W1 (see ``sweep.py``): the ``fish`` preset with 90 images, 5 object x 30
background markers = 150 models, 20 epochs.  The same 150 models are
trained and scored three ways in one process, in chunks of 32 as a study
does:

* ``disks``: the paper's disks through :meth:`StudyContext.evaluate`;
* ``disks_as_pixels``: the same disks given as pixel sets to
  :meth:`StudyContext.evaluate_markers` (the path of scribbles);
* ``scribbles``: each disk replaced by a random-walk stroke through its
  centre, on the marker's class, of a random length (so nearly every model
  has its own pixel counts: the worst case for grouping).

Rounds alternate the three (a shared machine's load drifts); the median of
each is reported, and the ratio ``scribbles / disks`` is the cost of
scribbles.

    python benchmarks/markers.py [--device cpu|cuda] [--json PATH] [--threads N] [--quick] [--rounds 3] [--warmup 1]
"""

from __future__ import annotations

from typing import Any

import _common
import numpy as np

CHUNK = 32


def stroke(mask: np.ndarray, centre: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random-walk stroke of about `length` pixels through `centre`, on the centre's class, 8-connected."""
    want = mask[centre[0], centre[1]]
    h, w = mask.shape
    steps = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)])
    heading = steps[rng.integers(8)]
    pixels = [tuple(centre)]
    pos = np.array(centre)
    for _ in range(10 * length):
        if len(set(pixels)) >= length:
            break
        if rng.random() < 0.3:
            heading = steps[rng.integers(8)]
        nxt = pos + heading
        if 0 <= nxt[0] < h and 0 <= nxt[1] < w and mask[nxt[0], nxt[1]] == want:
            pos = nxt
            pixels.append(tuple(pos))
        else:
            heading = steps[rng.integers(8)]
    return np.array(sorted(set(pixels)), dtype=np.int64)


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("markers", __doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="timed rounds of the three runs (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=1,
                   help="untimed rounds first: the first run of each kind pays one-off costs (default: %(default)s)")
    args = p.parse_args(argv)
    threads = _common.setup_threads(args.threads)

    from flimexplore.markers import marker_pixels
    from flimexplore.study.config import StudyConfig
    from flimexplore.study.context import StudyContext
    from flimexplore.study.run import model_seed, plan_markers

    device = _common.device("markers", args.device)
    if device is None:
        return 2
    config = StudyConfig(n_images=10, splits=1, n_bg=4, epochs=3) if args.quick else StudyConfig(n_images=90)
    ctx = StudyContext(config, device)
    cfg, shape = ctx.config, ctx.mask.shape
    table = [(s, k, ms.obj, bg) for s, ms in enumerate(plan_markers(ctx)) for k, bg in enumerate(ms.bg)]
    seeds = [model_seed(cfg.seed, cfg.image, s, k) for s, k, _, _ in table]
    rng = np.random.default_rng(0)
    disk = [(marker_pixels(o, cfg.radius, shape), marker_pixels(b, cfg.radius, shape)) for _, _, o, b in table]
    scrib = [
        (stroke(ctx.mask, o, int(rng.integers(15, 60)), rng), stroke(ctx.mask, b, int(rng.integers(15, 60)), rng))
        for _, _, o, b in table
    ]

    def run(kind: str) -> list[float]:
        dice = []
        for lo in range(0, len(table), CHUNK):
            part = slice(lo, lo + CHUNK)
            if kind == "disks":
                obj = np.stack([t[2] for t in table[part]])
                bg = np.stack([t[3] for t in table[part]])
                scores = ctx.evaluate(obj, bg, seeds[part])
            else:
                pairs = (disk if kind == "disks_as_pixels" else scrib)[part]
                scores = ctx.evaluate_markers([o for o, _ in pairs], [b for _, b in pairs], seeds[part])
            dice += scores.val["dice"].tolist()
        return dice

    ctx.evaluate(np.stack([table[0][2]] * 2), np.stack([t[3] for t in table[:2]]), seeds[:2])  # warm-up
    ctx.evaluate_markers([o for o, _ in scrib[:2]], [b for _, b in scrib[:2]], seeds[:2])
    kinds = ("disks", "disks_as_pixels", "scribbles")
    times: dict[str, list[float]] = {k: [] for k in kinds}
    dice: dict[str, list[float]] = {}
    warmup = 0 if args.quick else max(0, args.warmup)
    for r in range(warmup + (1 if args.quick else max(1, args.rounds))):
        for kind in kinds:
            dt, dice[kind] = _common.timed(lambda kind=kind: run(kind), device)
            if r >= warmup:
                times[kind].append(dt)
    med = {k: float(np.median(v)) for k, v in times.items()}
    # each round's ratio (its runs are minutes apart at most, so they see the same machine load)
    per_round = [s / d for s, d in zip(times["scribbles"], times["disks"], strict=True)]
    n = len(table)
    groups = [len({(len(o), len(b)) for o, b in src[lo : lo + CHUNK]}) for src in (scrib,) for lo in range(0, n, CHUNK)]
    rows = [
        {
            "markers": k, "seconds": med[k], "models_per_s": n / med[k], "ratio_to_disks": med[k] / med["disks"],
            "mean_pixels": float(np.mean([len(o) + len(b) for o, b in (disk if k != "scribbles" else scrib)])),
            "val_dice_mean": float(np.mean(dice[k])),
        }
        for k in kinds
    ]
    result: dict[str, Any] = {
        "workload": "W1" if not args.quick else "quick",
        "config": cfg.to_dict(),
        "n_models": n,
        "device": device,
        "threads": threads,
        "chunk": CHUNK,
        "rows": rows,
        "runs_s": times,
        "warmup_rounds": warmup,
        "scribble_to_disk_ratio": med["scribbles"] / med["disks"],
        "scribble_to_disk_ratio_per_round": per_round,
        "scribble_to_disk_ratio_median_of_rounds": float(np.median(per_round)),
        "pixels_as_disks_identical": dice["disks_as_pixels"] == dice["disks"],
        "learn_groups_per_chunk_scribbles": groups,
        "peak_rss_mb": _common.peak_rss_mb(),
        "machine": _common.machine(device),
    }
    print(_common.table(rows, ["markers", "seconds", "models_per_s", "ratio_to_disks", "mean_pixels", "val_dice_mean"]))
    print(f"scribbles / disks: {result['scribble_to_disk_ratio']:.2f}x; disks as pixels give identical Dice: "
          f"{result['pixels_as_disks_identical']}")
    _common.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
