"""The same study with PNG and JPEG masks: what lossy masks did to the Dice, and what they do now.

The ``fish`` preset (30 images) is written as folder datasets whose images
are identical PNG files and whose masks are PNG, JPEG quality 75 or JPEG
quality 40.  Each is studied with the same settings (2 object x 10
background markers, 20 epochs), reading the JPEG masks both the way
flimexplore does now (thresholded at half the value range, with a warning)
and the old way ("non-zero = object").  The table gives each variant's
object share and validation / test Dice.

    python benchmarks/masks.py [--device cpu|cuda] [--json PATH] [--threads N] [--quick]
"""

from __future__ import annotations

import dataclasses
import tempfile
import warnings
from pathlib import Path
from typing import Any

import _common
import numpy as np


def write_folders(root: Path, n_images: int) -> dict[str, Path]:
    """Folders ``png``, ``jpeg75``, ``jpeg40`` sharing the same PNG images."""
    import imageio.v3 as iio

    from flimexplore.data import load_dataset

    ds = load_dataset("fish", n_images=n_images)
    out = {}
    for name, suffix, quality in (("png", ".png", None), ("jpeg75", ".jpg", 75), ("jpeg40", ".jpg", 40)):
        folder = root / name
        (folder / "images").mkdir(parents=True)
        (folder / "masks").mkdir()
        for stem, image, mask in zip(ds.stems, ds.images, ds.masks, strict=True):
            iio.imwrite(folder / "images" / f"{stem}.png", np.rint(image * 255).astype(np.uint8))
            extra = {"quality": quality} if quality else {}
            iio.imwrite(folder / "masks" / f"{stem}{suffix}", mask.astype(np.uint8) * 255, extension=suffix, **extra)
        out[name] = folder
    return out


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("masks", __doc__.splitlines()[0])
    args = p.parse_args(argv)
    threads = _common.setup_threads(args.threads)

    import imageio.v3 as iio

    from flimexplore.data import load_folder
    from flimexplore.errors import FlimExploreError
    from flimexplore.study.config import StudyConfig
    from flimexplore.study.context import StudyContext
    from flimexplore.study.run import run_study_all

    device = _common.device("masks", args.device)
    if device is None:
        return 2
    n_images = 8 if args.quick else 30
    settings = dict(splits=1, n_bg=3, epochs=3) if args.quick else dict(splits=2, n_bg=10, epochs=20)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folders = write_folders(Path(tmp), n_images)
        truth = load_folder(folders["png"]).masks
        variants = [("png", "png", "as written"), ("jpeg75", "jpeg75", "now"), ("jpeg75", "jpeg75-nonzero", "old"),
                    ("jpeg40", "jpeg40", "now"), ("jpeg40", "jpeg40-nonzero", "old")]
        for folder, name, reading in variants:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                ds = load_folder(folders[folder])
            if reading == "old":
                raws = [iio.imread(f) for f in sorted((folders[folder] / "masks").iterdir())]
                ds = dataclasses.replace(ds, masks=tuple(np.asarray(r) != 0 for r in raws))
            cfg = StudyConfig(dataset=str(folders[folder]), **settings)
            row: dict[str, Any] = {
                "masks": name, "reading": reading,
                "object_share": float(np.mean([m.mean() for m in ds.masks])),
                "pixels_differing_from_png": int(sum((m != t).sum() for m, t in zip(ds.masks, truth, strict=True))),
                "warnings": [str(w.message)[:160] for w in caught],
            }
            try:
                result = run_study_all(cfg, None, device=device, context=StudyContext(cfg, device, dataset=ds))
            except FlimExploreError as err:
                row["error"] = str(err)
            else:
                s = result.summary()
                row |= {k: s[k] for k in ("n_models", "val_dice_min", "val_dice_max", "val_dice_mean",
                                          "test_dice_min", "test_dice_max", "test_dice_mean")}
            rows.append(row)
    result = {
        "workload": "fish 30 images, 2 x 10 markers, 20 epochs" if not args.quick else "quick",
        "settings": settings, "n_images": n_images, "device": device, "threads": threads, "rows": rows,
        "peak_rss_mb": _common.peak_rss_mb(), "machine": _common.machine(device),
    }
    print(_common.table(rows, ["masks", "reading", "object_share", "pixels_differing_from_png", "val_dice_min",
                               "val_dice_max", "val_dice_mean", "test_dice_mean"]))
    _common.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
