"""What a finished study writes besides its tables: the heatmap PNG figures and summary.json."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from flimexplore.colormap import OBJECT_HEX, width_colors
from flimexplore.markers import (
    MarkerGroups,
    MarkerPixels,
    ObjectMarkerSet,
)
from flimexplore.study.context import StudyContext
from flimexplore.study.heatmap import paint_heatmap, render_heatmap
from flimexplore.study.marked import ImageMarkers
from flimexplore.study.plan import USER_SPLIT
from flimexplore.study.readout_table import TRAINED
from flimexplore.study.result import StudyResult
from flimexplore.study.store import ResultStore

__all__ = ["marked_name", "write_outputs"]


def marked_name(ctx: StudyContext) -> str:
    """The marked image's file (relative to the dataset folder) or, for a preset, its name."""
    root = Path(ctx.config.dataset)
    if root.is_dir():
        for sub in ("images", "orig"):
            for f in sorted((root / sub).glob(f"{ctx.stem}.*")):
                return f"{sub}/{f.name}"
    return ctx.stem



def write_outputs(store: ResultStore, result: StudyResult, scale: Literal["fixed", "study"] = "fixed") -> None:
    """Write the heatmap figures (one per split, the overview, your own markers') and summary.json."""
    from flimexplore.figures.heatmap_png import colour_range, heatmap_split_figure, overview_figure, png_bytes

    vrange = colour_range(result.column("val_dice")[result.column("split") >= 0] if result.rows else [], scale)
    name, dataset = marked_name(result.context), result.context.dataset.name
    image = result.context.image
    summary = result.summary()
    repeated = summary.get("repeats", {}).get("splits", [])
    wrange = _width_range(result)
    panels, whats, fixed, ties, notes = [], [], "object", [], []
    for s in range(len(result.markers)):
        rows = [r for r in result.rows if r["split"] == s]
        n_models = len(rows)
        said = repeated[s] if s < len(repeated) and "verdict" in repeated[s] else None
        rgb, glyph, scored, dice, what, fixed = _split_panel(result, s, vrange)
        panels.append((rgb, glyph, scored, dice))
        whats.append(what.replace(" at (row ", " (").replace(", col ", ", "))
        extra: dict[str, Any] = {}
        if said is not None and len(scored):
            per_disk = len(scored) // max(len(rows), 1)
            widths = np.repeat([r["val_dice_hi"] - r["val_dice_lo"] for r in rows], per_disk)
            layer = paint_heatmap(result.context.mask.shape, scored, widths, result.config.radius)
            extra = {
                "width_rgb": render_heatmap(image, layer, vmin=wrange[0], vmax=wrange[1], colours=width_colors),
                "width_range": wrange, "verdict": said["verdict"],
                "tied": np.repeat([r["model"] in said["tied_models"] for r in rows], per_disk),
            }
            notes.append(f"position {100 * said['icc']:.0f} %, {said['n_tied_with_best']} tie with the best")
        else:
            notes.append("")
        ties.append(extra.get("tied"))
        fig = heatmap_split_figure(
            rgb, glyph, scored, dice, result.config.radius, vrange=vrange, scale=scale, dataset=dataset,
            image_name=name, split=s, what=what, fixed=fixed, n_models=n_models, **extra,
        )
        store.write_bytes(f"heatmap_split{s}.png", png_bytes(fig))
    if panels:
        fig = overview_figure(
            *zip(*panels, strict=True), result.config.radius, vrange=vrange, scale=scale, dataset=dataset,
            image_name=name, whats=whats, fixed=fixed, tied=ties if any(t is not None for t in ties) else None,
            notes=notes if any(notes) else None,
        )
        store.write_bytes("heatmap_overview.png", png_bytes(fig))
    markers = result.context.user_markers
    if markers is not None and len(result.column("val_dice", USER_SPLIT)):
        rgb = _object_pixels(
            render_heatmap(image, result.heatmap(USER_SPLIT), vmin=vrange[0], vmax=vrange[1]), markers[markers[:, 2] == 1, :2]
        )
        d = result.column("val_dice", USER_SPLIT).astype(np.float64)
        fig = heatmap_split_figure(
            rgb, np.zeros((0, 2)), np.zeros((0, 2)), d, result.config.radius, vrange=vrange, scale=scale,
            dataset=dataset, image_name=name, what="your own markers (object pixels in magenta)",
        )
        store.write_bytes("heatmap_user.png", png_bytes(fig))
    if result.readouts:
        every = [r["val_dice"] for r in result.readouts if r["split"] >= 0]
        _readout_overviews(store, result, colour_range(every, scale), scale)
    store.write_json("summary.json", summary)


def _split_panel(
    result: StudyResult, s: int, vrange: tuple[float, float]
) -> tuple[NDArray[np.uint8], NDArray, NDArray, NDArray[np.float64], str, str]:
    """One split's heatmap panel: picture, fixed-marker glyph, scored positions, their Dice, title, fixed class."""
    ms, image = result.markers[s], result.context.image
    if isinstance(ms, ImageMarkers):  # markers on several marked images: draw those of the study's marked image
        ms = ms.pixels_on(result.config.image)
    rows = [r for r in result.rows if r["split"] == s]
    dice = np.array([r["val_dice"] for r in rows], dtype=np.float64)
    fixed = "object"
    if isinstance(ms, ObjectMarkerSet):  # `study --vary object`: the fixed background marker is the glyph
        fixed = "background"
        glyph, scored = np.asarray(ms.background).reshape(1, 2), np.array([[r["obj_row"], r["obj_col"]] for r in rows])
        what = f"background marker {s} at (row {int(ms.background[0])}, col {int(ms.background[1])})"
        rgb = render_heatmap(image, result.heatmap(s), None, ms.radius, *vrange)
    elif isinstance(ms, MarkerPixels):  # markers of any shape: object pixels painted magenta
        glyph, scored = np.zeros((0, 2)), np.zeros((0, 2))
        what = f"markers {s} ({len(ms.obj)} object, {len(ms.bg)} background pixels)"
        rgb = _object_pixels(render_heatmap(image, result.heatmap(s), vmin=vrange[0], vmax=vrange[1]), ms.obj)
    elif isinstance(ms, MarkerGroups):  # K object and M background disks per model
        glyph = np.asarray(ms.obj).reshape(-1, 2)
        scored = np.concatenate([ms.bg[r["bg_index"]] for r in rows]).reshape(-1, 2)
        dice = np.repeat(dice, ms.bg.shape[1])
        what = f"object markers {s} ({len(glyph)} disks)"
        rgb = render_heatmap(image, result.heatmap(s), None, ms.radius, *vrange)
    else:
        glyph, scored = np.asarray(ms.obj).reshape(1, 2), np.array([[r["bg_row"], r["bg_col"]] for r in rows])
        what = f"object marker {s} at (row {int(ms.obj[0])}, col {int(ms.obj[1])})"
        rgb = render_heatmap(image, result.heatmap(s), None, ms.radius, *vrange)
    return rgb, glyph, scored.reshape(-1, 2), dice, what, fixed


def _readout_overviews(store: ResultStore, result: StudyResult, vrange: tuple[float, float], scale: str) -> None:
    """``heatmap_overview_<decoder>.png``: every split's heatmap under each adaptive decoder (same colour range)."""
    from flimexplore.figures.heatmap_png import overview_figure, png_bytes

    for d in result.config.decoders:
        if d == TRAINED:
            continue
        view = result.for_decoder(d)
        if not view.rows:
            continue
        splits = [_split_panel(view, s, vrange) for s in range(len(view.markers))]
        fig = overview_figure(
            [p[0] for p in splits], [p[1] for p in splits], [p[2] for p in splits], [p[3] for p in splits],
            result.config.radius, vrange=vrange, scale=scale, dataset=result.context.dataset.name,
            image_name=marked_name(result.context), fixed=splits[0][5], readout=d,
            whats=[p[4].replace(" at (row ", " (").replace(", col ", ", ") for p in splits],
        )
        store.write_bytes(f"heatmap_overview_{d}.png", png_bytes(fig))


def _width_range(result: StudyResult) -> tuple[float, float]:
    """Colour range of the uncertainty panels: 0 to the widest 95 % interval of the study (at least 0.05)."""
    widths = [r["val_dice_hi"] - r["val_dice_lo"] for r in result.rows if "val_dice_hi" in r and r["split"] >= 0]
    finite = [w for w in widths if math.isfinite(w)]
    return 0.0, max([0.05, *finite])


def _object_pixels(rgb: NDArray[np.uint8], pixels: NDArray[np.integer]) -> NDArray[np.uint8]:
    """Paint object-marker pixels magenta, the object marker's colour in every figure (no Dice colour is magenta)."""
    px = np.asarray(pixels, dtype=np.int64).reshape(-1, 2)
    out = rgb.copy()
    out[px[:, 0], px[:, 1]] = [int(OBJECT_HEX[i : i + 2], 16) for i in (1, 3, 5)]
    return out
