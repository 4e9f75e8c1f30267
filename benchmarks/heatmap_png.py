"""Cost of the study's heatmap figures: the old raw PNG against the matplotlib figure.

    python benchmarks/heatmap_png.py [--quick] [--json benchmarks/results/heatmap_png.json]

A default study writes 5 per-object-marker figures and one overview.  This
times, on a 128x128 image with 30 background markers of radius 3: painting
plus the old 128x128 PNG (what a study wrote before issue 11), painting plus
one figure (``heatmap_split<k>.png``), and the 5-panel overview; medians of
``--repeat`` runs, in the same process, so their ratio holds on a loaded
machine even when the absolute times do not.
"""

from __future__ import annotations

import statistics
import time

import _common
import imageio.v3 as iio
import numpy as np

from flimexplore.figures import heatmap_png as hp
from flimexplore.study.heatmap import paint_heatmap, render_heatmap


def main() -> None:
    p = _common.parser("heatmap_png", __doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    repeat = 1 if args.quick else args.repeat
    rng = np.random.default_rng(0)
    image = rng.random((128, 128, 3))
    bg = rng.integers(5, 123, (30, 2))
    dice = rng.random(30)
    obj = np.array([64, 64])

    def old() -> bytes:
        layer = paint_heatmap((128, 128), bg, dice, 3)
        return iio.imwrite("<bytes>", render_heatmap(image, layer, obj, 3, 0.0, 1.0), extension=".png")

    def figure() -> bytes:
        rgb = render_heatmap(image, paint_heatmap((128, 128), bg, dice, 3), None, 3, 0.0, 1.0)
        return hp.png_bytes(hp.heatmap_split_figure(rgb, obj, bg, dice, 3, vrange=(0.0, 1.0), dataset="fish", image_name="x"))

    def overview() -> bytes:
        rgb = render_heatmap(image, paint_heatmap((128, 128), bg, dice, 3), None, 3, 0.0, 1.0)
        return hp.png_bytes(hp.overview_figure([rgb] * 5, [obj] * 5, [bg] * 5, [dice] * 5, 3, vrange=(0.0, 1.0)))

    figure()  # imports matplotlib once, as the first figure of a study does
    times: dict[str, list[float]] = {"old_png_s": [], "figure_s": [], "overview_s": []}
    for _ in range(repeat):
        for key, fn in (("old_png_s", old), ("figure_s", figure), ("overview_s", overview)):
            t = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t)
    med = {k: round(statistics.median(v), 4) for k, v in times.items()}
    result = {
        **med,
        "figure_to_old_ratio": round(med["figure_s"] / med["old_png_s"], 1),
        "default_study_figures_s": round(5 * med["figure_s"] + med["overview_s"], 3),
        "repeat": repeat,
        "peak_rss_mb": _common.peak_rss_mb(),
        "machine": _common.machine("cpu"),
    }
    print(_common.table([result], ["old_png_s", "figure_s", "overview_s", "figure_to_old_ratio", "default_study_figures_s"]))
    _common.write_json(args.json, result)


if __name__ == "__main__":
    main()
