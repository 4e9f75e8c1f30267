"""Marker advice against random markers (issue 8, part 5).

    python benchmarks/advice.py [--quick] [--cache DIR] [--collect-only]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import _advice_collect
import _common

DATASETS = ["fish", "eggs", "fundus", "nuclei"]
CACHE = Path(__file__).resolve().parent / "results" / "advice_cache"


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("advice", __doc__.splitlines()[0])
    p.add_argument("--cache", type=Path, default=CACHE, help="folder of the stored studies (resumable)")
    p.add_argument("--collect-only", action="store_true", help="only run the random and dense studies")
    p.add_argument("--first-splits", type=int, default=2, help="dense splits of every image before the rest")
    args = p.parse_args(argv)
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.1f} s] {msg}", flush=True)

    if args.quick:
        datasets, images, splits, extra = ["fish"], 1, 1, {"n_images": 8, "epochs": 2, "dense_spacing": 12}
    else:
        datasets, images, splits, extra = DATASETS, 3, 5, {}
    _advice_collect.collect(args.cache, datasets, images, splits, 30, 0, args.device, args.first_splits, log, **extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
