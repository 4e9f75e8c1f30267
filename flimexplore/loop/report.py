"""What a finished loop writes: curves, the markers-needed table, the markers, the figure and the seeds files.

Every file is a function of the stored runs only (no timing but the runs'
own), written atomically, so a rerun that resumes gives the same bytes::

    curve.csv     policy, repeat, step, n_markers, marker_pixels, val_dice, test_dice
    noc.csv       policy, target, noc_mean, noc_lo, noc_hi, noc_sd, n_reached, n_repeats, per_repeat
    markers.csv   policy, repeat, step, image, image_stem, label, row, col, how (the step a marker joins at)
    summary.json  per policy: NoC at every target, the curve area (validation and test), seconds per step
    curve.png     validation Dice against markers, one line per policy, a band over repeats
    seeds/<policy>/r<repeat>/step<NN>/<stem>-seeds.txt   every step's markers, one LIDS file per marked image

``flimexplore score --seeds FILE --image K`` (one per image, in the order of
the step's images) trains a step's model again from its seeds files.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from flimexplore.loop.drawn import Marker, marker_rows
from flimexplore.loop.noc import band
from flimexplore.loop.result import LoopResult
from flimexplore.study.store import atomic_write_bytes

__all__ = ["CURVE_COLUMNS", "MARKER_COLUMNS", "NOC_COLUMNS", "curve_lines", "write_outputs"]

CURVE_COLUMNS = ("policy", "repeat", "step", "n_markers", "marker_pixels", "val_dice", "test_dice")
NOC_COLUMNS = ("policy", "target", "noc_mean", "noc_lo", "noc_hi", "noc_sd", "n_reached", "n_repeats", "per_repeat")
MARKER_COLUMNS = ("policy", "repeat", "step", "image", "image_stem", "label", "row", "col", "how")


def _csv(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if r[c] is None else f"{r[c]:.6f}" if isinstance(r[c], float) else r[c] for c in columns])
    return buf.getvalue().encode()


def noc_rows(result: LoopResult) -> list[dict[str, Any]]:
    """Rows of ``noc.csv``: per policy and target, the markers needed over the repeats."""
    rows = []
    for policy, s in result.summary()["policies"].items():
        for n in s["noc"]:
            rows.append({"policy": policy, "target": n["target"], "noc_mean": n["mean"], "noc_lo": n["lo"],
                         "noc_hi": n["hi"], "noc_sd": n["sd"], "n_reached": n["n_reached"], "n_repeats": s["n_repeats"],
                         "per_repeat": " ".join(str(v) for v in n["per_repeat"])})
    return rows


def marker_table(result: LoopResult) -> list[dict[str, Any]]:
    """Rows of ``markers.csv``: every marker of every run, in drawing order."""
    stems = result.context.view.stems
    return [{"policy": p, "repeat": r} | {k: m[k] for k in ("step", "image", "label", "row", "col", "how")}
            | {"image_stem": stems[m["image"]]} for p, r in result.keys() for m in result.runs[(p, r)]["markers"]]


def curve_lines(result: LoopResult, part: str = "val_dice") -> dict[str, tuple[Any, Any, Any, Any]]:
    """Each policy's line for the figures: markers, mean Dice, and its 95 % band over repeats."""
    return {p: band(c) for p in result.config.policies if (c := result.curves(p, part))}


def write_outputs(folder: Path, result: LoopResult) -> None:
    """Write every output file of a complete loop into ``folder`` (see the module notes)."""
    from flimexplore.figures.heatmap_png import png_bytes
    from flimexplore.figures.loop_png import curve_figure

    folder = Path(folder)
    atomic_write_bytes(folder / "curve.csv", _csv(CURVE_COLUMNS, result.curve_rows()))
    atomic_write_bytes(folder / "noc.csv", _csv(NOC_COLUMNS, noc_rows(result)))
    atomic_write_bytes(folder / "markers.csv", _csv(MARKER_COLUMNS, marker_table(result)))
    atomic_write_bytes(folder / "summary.json", (json.dumps(result.summary(), indent=2, sort_keys=True) + "\n").encode())
    study = result.context.study
    title = (f"{study.dataset.name}, marked image {study.config.image} ({study.stem}): validation Dice as a robot user "
             f"adds markers (radius {result.context.radius}, {result.config.repeats} repeats)")
    fig = curve_figure(curve_lines(result), result.config.targets, title)
    atomic_write_bytes(folder / "curve.png", png_bytes(fig))
    write_seeds_files(folder / "seeds", result)


def write_seeds_files(root: Path, result: LoopResult) -> None:
    """Every step's markers of every run as LIDS seeds files, one per marked image holding markers."""
    from flimexplore.data import write_seeds

    view, radius = result.context.view, result.context.radius
    shapes = view.shapes
    for p, r in result.keys():
        run = result.runs[(p, r)]
        markers = [Marker(m["image"], m["label"], m["row"], m["col"], m["how"]) for m in run["markers"]]
        joined = [m["step"] for m in run["markers"]]
        for s in run["steps"]:
            upto = [m for m, j in zip(markers, joined, strict=True) if j <= s["step"]]
            step_dir = root / p / f"r{r}" / f"step{s['step']:02d}"
            step_dir.mkdir(parents=True, exist_ok=True)
            for k, rows in marker_rows(upto, radius, shapes).items():
                write_seeds(step_dir / f"{view.stems[k]}-seeds.txt", rows, shapes[k])
