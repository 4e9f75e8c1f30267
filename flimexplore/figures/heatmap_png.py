"""The study's heatmap PNG files, readable on their own (matplotlib, Agg backend).

A study writes ``heatmap_split<k>.png``, one figure per object marker, and
``heatmap_overview.png``, all object markers side by side with one colour
bar (the paper's Fig. 6-8 row).  Every figure has:

- the painted heatmap, upscaled by a whole factor to at least
  :data:`MIN_SIDE_PX` pixels on its long side, with crisp (nearest) pixels;
- a colour bar labelled "validation Dice" that states its scale and range:
  ``fixed`` (0-1, the default, so figures of different studies compare) or
  ``study`` (the study's own min-max, to tell close values apart);
- a title naming the dataset, the marked image, the object marker
  ``(row, col)``, the number of models and their min/max Dice;
- the object marker as a white star with a black edge (no Dice colour is
  white) and the :data:`TOP` best background markers ringed in green (the
  paper's green border), both in the legend.

The builders take arrays only and return a matplotlib ``Figure`` (use
:func:`png_bytes` to encode it); they never touch pyplot's global state.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from flimexplore.colormap import HEAT_STOPS

__all__ = [
    "MIN_SIDE_PX",
    "OBJECT_EDGE",
    "OBJECT_FACE",
    "SCALES",
    "TOP",
    "TOP_EDGE",
    "colour_range",
    "heatmap_split_figure",
    "overview_figure",
    "png_bytes",
]

Scale = Literal["fixed", "study"]
SCALES: tuple[str, ...] = ("fixed", "study")
MIN_SIDE_PX = 512
"""Smallest long side of the heatmap in a per-object-marker figure, in screen pixels."""
OVERVIEW_SIDE_PX = 256
"""Smallest long side of each panel of the overview."""
TOP = 3
"""Background markers ringed as the best of their object marker (highest validation Dice; ties: first)."""
OBJECT_FACE = "#ffffff"
OBJECT_EDGE = "#000000"
TOP_EDGE = "#00e000"
_DPI = 100
_FONT = 11


def colour_range(dice: ArrayLike, scale: Scale = "fixed") -> tuple[float, float]:
    """The colour bar's range: 0-1 (``fixed``) or the Dice min-max (``study``).

    A study range narrower than 0.01 is widened to 0.01 around its middle
    (inside 0-1), so that equal values still get a colour bar.

    Examples
    --------
    >>> colour_range([0.2, 0.7])
    (0.0, 1.0)
    >>> colour_range([0.2, 0.7], "study")
    (0.2, 0.7)
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    d = np.asarray(dice, dtype=np.float64)
    d = d[np.isfinite(d)]
    if scale == "fixed" or d.size == 0:
        return 0.0, 1.0
    lo, hi = float(d.min()), float(d.max())
    if hi - lo < 0.01:
        mid = min(max((lo + hi) / 2.0, 0.005), 0.995)
        lo, hi = mid - 0.005, mid + 0.005
    return lo, hi


def _cmap() -> Any:
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("flimexplore_heat", [(s, tuple(v / 255 for v in c)) for s, c in HEAT_STOPS])


def _upscale(rgb: NDArray[np.uint8], min_side: int) -> tuple[NDArray[np.uint8], int]:
    k = max(1, math.ceil(min_side / max(rgb.shape[:2])))
    return np.repeat(np.repeat(np.asarray(rgb, np.uint8), k, axis=0), k, axis=1), k


def _top(dice: NDArray[np.float64], n: int) -> NDArray[np.intp]:
    order = np.argsort(-np.where(np.isfinite(dice), dice, -np.inf), kind="stable")
    return order[: min(n, int(np.isfinite(dice).sum()))]


def _glyph(fixed: str) -> str:
    return "*" if fixed == "object" else "D"


def _panel(
    ax: Any, rgb: NDArray[np.uint8], obj: ArrayLike, bg: ArrayLike, dice: ArrayLike, radius: float, k: int,
    fixed: str = "object",
) -> None:
    """Draw one heatmap with the fixed markers' glyphs and the top markers' rings, in upscaled pixel coordinates."""
    from matplotlib.patches import Circle

    ax.imshow(rgb, interpolation="nearest", resample=False)
    ax.set_axis_off()
    centre = lambda p: ((float(p[1]) + 0.5) * k - 0.5, (float(p[0]) + 0.5) * k - 0.5)  # noqa: E731 - (x, y) of (row, col)
    bg = np.asarray(bg, dtype=np.float64).reshape(-1, 2)
    d = np.asarray(dice, dtype=np.float64).reshape(-1)
    for i in _top(d, TOP) if len(bg) == len(d) else ():  # no rings where markers are not disks (user's scribbles)
        ring = Circle(centre(bg[i]), (radius + 0.5) * k + 2, fill=False, edgecolor=TOP_EDGE, linewidth=2.2)
        ax.add_patch(ring)
    points = np.asarray(obj, dtype=np.float64).reshape(-1, 2)
    if len(points):
        xy = np.array([centre(p) for p in points])
        size = max(14.0, (2.2 if fixed == "object" else 1.4) * (radius + 0.5) * k)
        ax.plot(xy[:, 0], xy[:, 1], marker=_glyph(fixed), markersize=size, markerfacecolor=OBJECT_FACE,
                markeredgecolor=OBJECT_EDGE, markeredgewidth=1.3, linestyle="none")


def _legend(fig: Any, n_top: int, loc: tuple[float, float], ncol: int = 3, fixed: str = "object") -> Any:
    from matplotlib.lines import Line2D

    varied = "object" if fixed == "background" else "background"
    handles = [
        Line2D([], [], marker=_glyph(fixed), markersize=15 if fixed == "object" else 10, markerfacecolor=OBJECT_FACE,
               markeredgecolor=OBJECT_EDGE, markeredgewidth=1.2, linestyle="none",
               label="object marker" if fixed == "object" else "background marker (fixed)"),
        Line2D([], [], marker="o", markersize=11, markerfacecolor="#ffff00", markeredgecolor="#ff0000",
               markeredgewidth=0, linestyle="none", label=f"{varied} markers: colour = Dice"),
    ]
    if n_top:
        handles.insert(1, Line2D([], [], marker="o", markersize=12, markerfacecolor="none", markeredgecolor=TOP_EDGE,
                                 markeredgewidth=2.2, linestyle="none", label=f"best {n_top} {varied} markers"))
    return fig.legend(handles=handles, loc="upper left", bbox_to_anchor=loc, ncol=ncol, frameon=False,
                      fontsize=_FONT - 1, handletextpad=0.3, columnspacing=1.2)


def _colour_bar(fig: Any, cax: Any, vrange: tuple[float, float], scale: Scale) -> Any:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    lo, hi = vrange
    bar = fig.colorbar(ScalarMappable(Normalize(lo, hi), _cmap()), cax=cax)
    ticks = np.linspace(lo, hi, 6 if scale == "fixed" else 5)
    bar.set_ticks(ticks, labels=[f"{t:.1f}" if scale == "fixed" else f"{t:.3f}" for t in ticks])
    what = "fixed scale 0-1" if scale == "fixed" else f"study min-max {lo:.3f}-{hi:.3f}"
    bar.set_label(f"validation Dice ({what})", fontsize=_FONT)
    bar.ax.tick_params(labelsize=_FONT - 1)
    return bar


def _range_text(dice: NDArray[np.float64], n_models: int | None = None) -> str:
    d = dice[np.isfinite(dice)]
    n = d.size if n_models is None else n_models
    return f"{n} model{'s' if n != 1 else ''}, Dice {d.min():.3f}-{d.max():.3f}" if d.size else "no models"


def heatmap_split_figure(
    rgb: NDArray[np.uint8],
    obj: ArrayLike,
    bg: ArrayLike,
    dice: ArrayLike,
    radius: float,
    *,
    vrange: tuple[float, float],
    scale: Scale = "fixed",
    dataset: str = "",
    image_name: str = "",
    split: int = 0,
    what: str | None = None,
    fixed: Literal["object", "background"] = "object",
    n_models: int | None = None,
) -> Any:
    """One object marker's heatmap as a figure with colour bar, title and legend.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
        The painted heatmap over the greyed image (the object marker not drawn).
    obj : array_like of shape (2,) or (K, 2), int
        Centre(s) ``(row, col)`` of the fixed marker(s), drawn as glyphs:
        the object marker (a star), or with ``fixed="background"`` the fixed
        background marker of a study that varies object markers (a diamond).
        Shape (0, 2) draws none (markers of any shape, painted in `rgb`).
    bg : array_like of shape (M, 2), int
        Centres of the scored (varied) markers.
    dice : array_like of shape (M,), float
        Validation Dice of each scored marker's model.
    radius : float
        Marker radius in image pixels.
    vrange : tuple of float
        Colour bar range (see :func:`colour_range`); `rgb` must be painted with it.
    scale : {"fixed", "study"}
        Named on the colour bar.
    dataset, image_name : str
        Named in the title.
    split : int
        0-based index of the object marker, named in the title.
    what : str, optional
        The title's marker part instead of "object marker <split> at (row r, col c)".
    fixed : {"object", "background"}
        Which marker is fixed (glyph) and which are varied (coloured, ringed).
    n_models : int, optional
        Models in the title when `dice` repeats a model's Dice for several disks.

    Returns
    -------
    matplotlib.figure.Figure
        With ``fig.flimexplore = {"colorbar": ..., "legend": ..., "scale_factor": k}``.
    """
    from matplotlib.figure import Figure

    big, k = _upscale(rgb, MIN_SIDE_PX)
    h, w = big.shape[:2]
    left, right, top, bottom, bar_w = 24, 118, 74, 72, 20
    fw, fh = left + w + right, top + h + bottom
    fig = Figure(figsize=(fw / _DPI, fh / _DPI), dpi=_DPI, facecolor="white")
    ax = fig.add_axes((left / fw, bottom / fh, w / fw, h / fh))
    d = np.asarray(dice, dtype=np.float64).reshape(-1)
    _panel(ax, big, obj, bg, d, radius, k, fixed)
    cax = fig.add_axes(((left + w + 16) / fw, bottom / fh, bar_w / fw, h / fh))
    bar = _colour_bar(fig, cax, vrange, scale)
    if what is None:
        o = np.asarray(obj).reshape(-1, 2)[0]
        what = f"object marker {split} at (row {int(o[0])}, col {int(o[1])})"
    varied = "object" if fixed == "background" else "background"
    fig.suptitle(
        f"{dataset} · image {image_name} · {what}\n"
        f"{_range_text(d, n_models)} (validation Dice of each {varied} marker's model)",
        x=left / fw, y=1 - 10 / fh, ha="left", va="top", fontsize=_FONT,
    )
    n_top = min(TOP, int(np.isfinite(d).sum())) if len(np.asarray(bg).reshape(-1, 2)) else 0
    legend = _legend(fig, n_top, (left / fw - 0.01, (bottom - 8) / fh), ncol=2, fixed=fixed)
    fig.flimexplore = {"colorbar": bar, "legend": legend, "scale_factor": k}
    return fig


def overview_figure(
    rgbs: Sequence[NDArray[np.uint8]],
    objs: Sequence[ArrayLike],
    bgs: Sequence[ArrayLike],
    dices: Sequence[ArrayLike],
    radius: float,
    *,
    vrange: tuple[float, float],
    scale: Scale = "fixed",
    dataset: str = "",
    image_name: str = "",
    whats: Sequence[str] | None = None,
    fixed: Literal["object", "background"] = "object",
) -> Any:
    """All object markers of a study side by side with one colour bar (the paper's Fig. 6-8 row).

    Parameters are those of :func:`heatmap_split_figure`, one entry per
    object marker (split) in each sequence; ``whats`` are the panels' first
    title lines (default "object marker <k> (row, col)").

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    n = len(rgbs)
    if n == 0 or not (len(objs) == len(bgs) == len(dices) == n):
        raise ValueError(f"need one image, object marker, background markers and Dice per panel, got {n}")
    bigs = [_upscale(r, OVERVIEW_SIDE_PX) for r in rgbs]
    h = max(b.shape[0] for b, _ in bigs)
    w = max(b.shape[1] for b, _ in bigs)
    left, gap, right, top, bottom, bar_w = 16, 10, 118, 96, 56, 20
    fw, fh = left + n * w + (n - 1) * gap + right, top + h + bottom
    fig = Figure(figsize=(fw / _DPI, fh / _DPI), dpi=_DPI, facecolor="white")
    everything = []
    for i, ((big, k), obj, bg, dice) in enumerate(zip(bigs, objs, bgs, dices, strict=True)):
        ax = fig.add_axes(((left + i * (w + gap)) / fw, bottom / fh, w / fw, h / fh))
        d = np.asarray(dice, dtype=np.float64).reshape(-1)
        everything.append(d)
        _panel(ax, big, obj, bg, d, radius, k, fixed)
        dd = d[np.isfinite(d)]
        if whats is None:
            o = np.asarray(obj).reshape(-1, 2)[0]
            head = f"object marker {i} ({int(o[0])}, {int(o[1])})"
        else:
            head = whats[i]
        rng = f"Dice {dd.min():.3f}-{dd.max():.3f}" if dd.size else "no models"
        ax.set_title(f"{head}\n{rng}", fontsize=_FONT - 1)
    cax = fig.add_axes(((left + n * w + (n - 1) * gap + 16) / fw, bottom / fh, bar_w / fw, h / fh))
    bar = _colour_bar(fig, cax, vrange, scale)
    all_d = np.concatenate(everything)
    fig.suptitle(
        f"{dataset} · image {image_name} · {n} {'object' if fixed == 'object' else 'background'} markers · "
        f"{_range_text(all_d)} (validation Dice)",
        x=left / fw, y=1 - 10 / fh, ha="left", va="top", fontsize=_FONT,
    )
    any_rings = any(len(np.asarray(b).reshape(-1, 2)) for b in bgs)
    legend = _legend(fig, TOP if any_rings else 0, (left / fw - 0.005, (bottom - 10) / fh), fixed=fixed)
    fig.flimexplore = {"colorbar": bar, "legend": legend, "scale_factor": bigs[0][1]}
    return fig


def png_bytes(fig: Any) -> bytes:
    """Encode a figure as PNG with the Agg canvas (no pyplot, no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    buf = io.BytesIO()
    canvas.print_png(buf)
    return buf.getvalue()
