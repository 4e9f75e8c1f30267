"""The study's heatmap PNG files, readable on their own (matplotlib, Agg backend).

A study writes ``heatmap_split<k>.png``, one figure per object marker, and
``heatmap_overview.png``, all object markers side by side with one colour
bar (the paper's Fig. 6-8 row).  Every figure has:

- the painted heatmap, upscaled by a whole factor to at least
  :data:`MIN_SIDE_PX` pixels on its long side, with crisp (nearest) pixels;
  every figure is at least :data:`MIN_SIDE_PX` wide and wide enough for its
  title and legend, whatever the number of panels;
- a colour bar labelled "validation Dice" that states its scale and range:
  ``fixed`` (0-1, the default, so figures of different studies compare) or
  ``study`` (the study's own min-max, to tell close values apart);
- a title naming the dataset, the marked image, the object marker
  ``(row, col)``, the number of models and their min/max Dice;
- the object marker as a magenta star with a white edge (the explorer's
  glyph; no Dice colour is magenta; a fixed background marker is a dark
  grey diamond) and the :data:`TOP` best background
  markers ringed in green (the paper's green border), both in the legend.

With repeated fits (``--repeats R``) a split figure also shows, without
hiding the Dice colours, the uncertainty of every marker: a second, smaller
panel paints each marker with the width of its 95 % interval (light = sure,
dark = unsure); the green rings then mark every marker statistically tied
with the best instead of the top 3, and a third title line gives the
verdict ("position explains 63 % of the Dice variance ...; 4 of 30 background
markers tie with the best").

The builders take arrays only and return a matplotlib ``Figure`` (use
:func:`png_bytes` to encode it); they never touch pyplot's global state.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from flimexplore.colormap import BACKGROUND_HEX, HEAT_STOPS, OBJECT_HEX, WIDTH_STOPS

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
"""Smallest long side of the heatmap in a per-object-marker figure, and of every figure, in screen pixels."""
OVERVIEW_SIDE_PX = 256
"""Smallest long side of each panel of the overview."""
WIDTH_SIDE_PX = 256
"""Smallest long side of the uncertainty panel of a split figure."""
TOP = 3
"""Background markers ringed as the best of their object marker (highest validation Dice; ties: first)."""
OBJECT_FACE = OBJECT_HEX
OBJECT_EDGE = "#ffffff"
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


def _cmap(stops: tuple[tuple[float, tuple[int, int, int]], ...] = HEAT_STOPS) -> Any:
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("flimexplore", [(s, tuple(v / 255 for v in c)) for s, c in stops])


def _upscale(rgb: NDArray[np.uint8], min_side: int) -> tuple[NDArray[np.uint8], int]:
    k = max(1, math.ceil(min_side / max(rgb.shape[:2])))
    return np.repeat(np.repeat(np.asarray(rgb, np.uint8), k, axis=0), k, axis=1), k


def _top(dice: NDArray[np.float64], n: int) -> NDArray[np.intp]:
    order = np.argsort(-np.where(np.isfinite(dice), dice, -np.inf), kind="stable")
    return order[: min(n, int(np.isfinite(dice).sum()))]


def _glyph(fixed: str) -> str:
    return "*" if fixed == "object" else "D"


def _face(fixed: str) -> str:
    """The fixed marker's colour: the object's magenta, or a fixed background marker's dark grey."""
    return OBJECT_FACE if fixed == "object" else BACKGROUND_HEX


def _ringed(dice: NDArray[np.float64], n_bg: int, tied: ArrayLike | None) -> NDArray[np.intp]:
    """Markers to ring: those tied with the best when ties are given, else the top :data:`TOP`."""
    if n_bg != len(dice):  # no rings without one centre per score
        return np.zeros(0, np.intp)
    if tied is not None:
        return np.flatnonzero(np.asarray(tied, dtype=bool).reshape(-1))
    return _top(dice, TOP)


def _panel(
    ax: Any, rgb: NDArray[np.uint8], obj: ArrayLike, bg: ArrayLike, dice: ArrayLike, radius: float, k: int,
    fixed: str = "object", tied: ArrayLike | None = None,
) -> None:
    """Draw one heatmap with the fixed markers' glyphs and the ringed markers, in upscaled pixel coordinates."""
    from matplotlib.patches import Circle

    ax.imshow(rgb, interpolation="nearest", resample=False)
    ax.set_axis_off()
    centre = lambda p: ((float(p[1]) + 0.5) * k - 0.5, (float(p[0]) + 0.5) * k - 0.5)  # noqa: E731 - (x, y) of (row, col)
    bg = np.asarray(bg, dtype=np.float64).reshape(-1, 2)
    d = np.asarray(dice, dtype=np.float64).reshape(-1)
    for i in _ringed(d, len(bg), tied):
        ring = Circle(centre(bg[i]), (radius + 0.5) * k + 2, fill=False, edgecolor=TOP_EDGE, linewidth=2.2)
        ax.add_patch(ring)
    points = np.asarray(obj, dtype=np.float64).reshape(-1, 2)
    if len(points):
        xy = np.array([centre(p) for p in points])
        size = max(14.0, (2.2 if fixed == "object" else 1.4) * (radius + 0.5) * k)
        ax.plot(xy[:, 0], xy[:, 1], marker=_glyph(fixed), markersize=size, markerfacecolor=_face(fixed),
                markeredgecolor=OBJECT_EDGE, markeredgewidth=1.3, linestyle="none")


TIED_LABEL = "tied with the best (Welch t, Holm 5 %)"


def _legend(
    fig: Any, n_top: int, loc: tuple[float, float], ncol: int = 3, fixed: str = "object", tied: bool = False
) -> Any:
    from matplotlib.lines import Line2D

    varied = "object" if fixed == "background" else "background"
    handles = [
        Line2D([], [], marker=_glyph(fixed), markersize=15 if fixed == "object" else 10, markerfacecolor=_face(fixed),
               markeredgecolor=OBJECT_EDGE, markeredgewidth=1.2, linestyle="none",
               label="object marker" if fixed == "object" else "background marker (fixed)"),
        Line2D([], [], marker="o", markersize=11, markerfacecolor="#ffff00", markeredgecolor="#ff0000",
               markeredgewidth=0, linestyle="none", label=f"{varied} markers: colour = Dice"),
    ]
    if n_top or tied:
        label = f"{varied} markers {TIED_LABEL}" if tied else f"best {n_top} {varied} markers"
        handles.insert(1, Line2D([], [], marker="o", markersize=12, markerfacecolor="none", markeredgecolor=TOP_EDGE,
                                 markeredgewidth=2.2, linestyle="none", label=label))
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


def _width_bar(fig: Any, cax: Any, wrange: tuple[float, float]) -> Any:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    bar = fig.colorbar(ScalarMappable(Normalize(*wrange), _cmap(WIDTH_STOPS)), cax=cax)
    ticks = np.linspace(*wrange, 5)
    bar.set_ticks(ticks, labels=[f"{t:.2f}" for t in ticks])
    bar.set_label("width of the 95 % interval of Dice", fontsize=_FONT - 1)
    bar.ax.tick_params(labelsize=_FONT - 2)
    return bar


def _fit_width(build: Callable[[int], Any]) -> Any:
    """Build a figure, then again with more room on the right if its title or legend sticks out.

    ``build(extra)`` lays the figure out with ``extra`` more pixels of right
    margin; text sizes are measured with the Agg renderer, so a wide title
    or legend is never cut off at the figure's edge.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = build(0)
    renderer = FigureCanvasAgg(fig).get_renderer()
    width = fig.get_figwidth() * fig.dpi
    parts = [fig._suptitle, fig.flimexplore["legend"]]
    right = max(p.get_window_extent(renderer).x1 for p in parts if p is not None)
    if right <= width - 8:
        return fig
    return build(int(math.ceil(right - width + 16)))


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
    width_rgb: NDArray[np.uint8] | None = None,
    width_range: tuple[float, float] | None = None,
    tied: ArrayLike | None = None,
    verdict: str | None = None,
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
        Validation Dice of each scored marker's model (the mean over its fits).
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
    width_rgb : ndarray of shape (H, W, 3), uint8, optional
        The markers painted with the width of their 95 % interval
        (:data:`~flimexplore.colormap.WIDTH_STOPS`, range ``width_range``):
        drawn as a second, smaller panel with its own colour bar.
    width_range : tuple of float, optional
        The range `width_rgb` was painted with.
    tied : array_like of shape (M,), bool, optional
        Markers statistically tied with the best: ringed instead of the top 3.
    verdict : str, optional
        A third title line (what the repeated fits say).

    Returns
    -------
    matplotlib.figure.Figure
        With ``fig.flimexplore = {"colorbar": ..., "legend": ..., "scale_factor": k}``
        (and ``"width_colorbar"`` with an uncertainty panel).
    """
    from matplotlib.figure import Figure

    big, k = _upscale(rgb, MIN_SIDE_PX)
    h, w = big.shape[:2]
    small = _upscale(width_rgb, WIDTH_SIDE_PX)[0] if width_rgb is not None else None
    d = np.asarray(dice, dtype=np.float64).reshape(-1)
    if what is None:
        o = np.asarray(obj).reshape(-1, 2)[0]
        what = f"object marker {split} at (row {int(o[0])}, col {int(o[1])})"
    varied = "object" if fixed == "background" else "background"
    n_bg = len(np.asarray(bg).reshape(-1, 2))
    title = (f"{dataset} · image {image_name} · {what}\n"
             f"{_range_text(d, n_models)} (validation Dice of each {varied} marker's model)")
    if verdict:
        title += f"\n{verdict}"

    def build(extra: int) -> Any:
        left, right, top, bottom, bar_w = 24, 118 + extra, 74 + (18 if verdict else 0), 72, 20
        panel_w = (small.shape[1] + 104) if small is not None else 0
        fw, fh = max(left + w + right + panel_w, MIN_SIDE_PX), top + h + bottom
        fig = Figure(figsize=(fw / _DPI, fh / _DPI), dpi=_DPI, facecolor="white")
        ax = fig.add_axes((left / fw, bottom / fh, w / fw, h / fh))
        _panel(ax, big, obj, bg, d, radius, k, fixed, tied)
        cax = fig.add_axes(((left + w + 16) / fw, bottom / fh, bar_w / fw, h / fh))
        info: dict[str, Any] = {"colorbar": _colour_bar(fig, cax, vrange, scale), "scale_factor": k}
        if small is not None:
            sh, sw = small.shape[:2]
            x0 = left + w + 118
            wax = fig.add_axes((x0 / fw, (bottom + h - sh) / fh, sw / fw, sh / fh))
            wax.imshow(small, interpolation="nearest", resample=False)
            wax.set_axis_off()
            wax.set_title("uncertainty of each marker", fontsize=_FONT - 1)
            wcax = fig.add_axes(((x0 + sw + 10) / fw, (bottom + h - sh) / fh, 14 / fw, sh / fh))
            info["width_colorbar"] = _width_bar(fig, wcax, width_range or (0.0, 1.0))
        fig.suptitle(title, x=left / fw, y=1 - 10 / fh, ha="left", va="top", fontsize=_FONT)
        n_top = min(TOP, int(np.isfinite(d).sum())) if n_bg else 0
        info["legend"] = _legend(fig, n_top, (left / fw - 0.01, (bottom - 8) / fh), ncol=2, fixed=fixed,
                                 tied=tied is not None and n_bg > 0)
        fig.flimexplore = info
        return fig

    return _fit_width(build)


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
    tied: Sequence[ArrayLike | None] | None = None,
    notes: Sequence[str] | None = None,
    readout: str | None = None,
) -> Any:
    """All object markers of a study side by side with one colour bar (the paper's Fig. 6-8 row).

    Parameters are those of :func:`heatmap_split_figure`, one entry per
    object marker (split) in each sequence; ``whats`` are the panels' first
    title lines (default "object marker <k> (row, col)"), ``tied`` the
    markers of each panel tied with its best (rings), and ``notes`` a short
    third title line per panel (e.g. "position 63 %, 4 tie").  ``readout``
    names the decoder whose Dice the colours show (default: the trained
    layer's, not named).  Panels are enlarged so that the figure is at least
    :data:`MIN_SIDE_PX` wide.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    n = len(rgbs)
    if n == 0 or not (len(objs) == len(bgs) == len(dices) == n):
        raise ValueError(f"need one image, object marker, background markers and Dice per panel, got {n}")
    left, gap, bar_room = 16, 10, 118
    side = max(OVERVIEW_SIDE_PX, math.ceil((MIN_SIDE_PX - left - bar_room - (n - 1) * gap) / n))
    bigs = [_upscale(r, side) for r in rgbs]
    h = max(b.shape[0] for b, _ in bigs)
    w = max(b.shape[1] for b, _ in bigs)
    ties = list(tied) if tied is not None else [None] * n
    panel_d = [np.asarray(dice, dtype=np.float64).reshape(-1) for dice in dices]
    all_d = np.concatenate(panel_d)
    title = (f"{dataset} · image {image_name} · {n} {'object' if fixed == 'object' else 'background'} "
             f"marker{'s' if n != 1 else ''} · "
             f"{_range_text(all_d)} (validation Dice" + (f", {readout} decoder)" if readout else ")"))
    any_rings = any(len(np.asarray(b).reshape(-1, 2)) for b in bgs)
    with_ties = any(t is not None for t in ties)

    def build(extra: int) -> Any:
        top, bottom, bar_w = 96 + (14 if notes else 0), 56, 20
        right = bar_room + extra
        fw, fh = left + n * w + (n - 1) * gap + right, top + h + bottom
        fig = Figure(figsize=(fw / _DPI, fh / _DPI), dpi=_DPI, facecolor="white")
        for i, ((big, k), obj, bg, d) in enumerate(zip(bigs, objs, bgs, panel_d, strict=True)):
            ax = fig.add_axes(((left + i * (w + gap)) / fw, bottom / fh, w / fw, h / fh))
            _panel(ax, big, obj, bg, d, radius, k, fixed, ties[i])
            dd = d[np.isfinite(d)]
            if whats is None:
                o = np.asarray(obj).reshape(-1, 2)[0]
                head = f"object marker {i} ({int(o[0])}, {int(o[1])})"
            else:
                head = whats[i]
            rng = f"Dice {dd.min():.3f}-{dd.max():.3f}" if dd.size else "no models"
            ax.set_title(f"{head}\n{rng}" + (f"\n{notes[i]}" if notes and notes[i] else ""), fontsize=_FONT - 1)
        cax = fig.add_axes(((left + n * w + (n - 1) * gap + 16) / fw, bottom / fh, bar_w / fw, h / fh))
        bar = _colour_bar(fig, cax, vrange, scale)
        fig.suptitle(title, x=left / fw, y=1 - 10 / fh, ha="left", va="top", fontsize=_FONT)
        legend = _legend(fig, TOP if any_rings else 0, (left / fw - 0.005, (bottom - 10) / fh), fixed=fixed,
                         tied=with_ties and any_rings)
        fig.flimexplore = {"colorbar": bar, "legend": legend, "scale_factor": bigs[0][1]}
        return fig

    return _fit_width(build)


def png_bytes(fig: Any) -> bytes:
    """Encode a figure as PNG with the Agg canvas (no pyplot, no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    buf = io.BytesIO()
    canvas.print_png(buf)
    return buf.getvalue()
