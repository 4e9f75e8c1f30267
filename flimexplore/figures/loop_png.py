"""``curve.png`` of a simulated annotation loop: validation Dice against markers, one line per policy.

Each policy's line is its mean over the repeats; the band around it is the
Student t 95 % interval of that mean (none with one repeat); dotted lines
mark the target Dice levels of the markers-needed table.  Drawn with the Agg
canvas (no pyplot, no display), at least :data:`MIN_WIDTH_PX` wide, with
constrained layout so that the title and the legend are never cut off.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["MIN_WIDTH_PX", "POLICY_COLOURS", "curve_figure"]

MIN_WIDTH_PX = 720
"""Width of the figure in pixels (at least 512, as every PNG of flimexplore)."""
POLICY_COLOURS = {"random": "#7f7f7f", "advised": "#1b9e77", "error": "#d95f02", "user": "#e7298a"}
"""Line colour of each policy (others cycle through matplotlib's defaults)."""
_DPI = 100
TITLE_CHARS = 90
"""Title lines are wrapped at this many characters at most, fewer when they would not fit the figure's width."""


def curve_figure(
    lines: Mapping[str, tuple[ArrayLike, ArrayLike, ArrayLike | None, ArrayLike | None]],
    targets: Sequence[float] = (),
    title: str = "",
    ylabel: str = "validation Dice",
) -> Any:
    """Dice against markers drawn, one line (and band) per policy.

    Parameters
    ----------
    lines : mapping of str to (x, mean, lo, hi)
        Per policy: markers ``x`` (shape (S,)), the mean Dice (S,), and the
        band's bounds (S,) or None for no band.
    targets : sequence of float
        Drawn as dotted horizontal lines.
    title : str
    ylabel : str

    Returns
    -------
    matplotlib.figure.Figure
        Encode it with :func:`flimexplore.figures.heatmap_png.png_bytes`.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(MIN_WIDTH_PX / _DPI, 4.8), dpi=_DPI, layout="constrained")
    ax = fig.add_subplot()
    xs: list[float] = []
    for j, (name, (x, mean, lo, hi)) in enumerate(lines.items()):
        x, mean = np.asarray(x, np.float64), np.asarray(mean, np.float64)
        colour = POLICY_COLOURS.get(name, f"C{j}")
        ax.plot(x, mean, marker="o", markersize=4, color=colour, label=name, linewidth=2)
        if lo is not None and hi is not None and np.isfinite(np.asarray(lo, np.float64)).any():
            ax.fill_between(x, np.asarray(lo, np.float64), np.asarray(hi, np.float64), color=colour, alpha=0.18,
                            linewidth=0)
        xs += x.tolist()
    for t in targets:
        ax.axhline(t, color="#444444", linestyle=":", linewidth=1)
        ax.annotate(f"target {t:.2f}", (0.0, t), xycoords=("axes fraction", "data"), xytext=(4, 2),
                    textcoords="offset points", va="bottom", fontsize=8, color="#444444")
    if xs:
        ax.set_xlim(min(xs) - 0.3, max(xs) + 0.3)
        ax.set_xticks(np.arange(int(min(xs)), int(max(xs)) + 1))
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("markers drawn (the 2 starting ones included)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if lines:  # under the axes: never over a curve, never cut off (constrained layout)
        fig.legend(loc="outside lower center", ncols=min(len(lines), 4), title="policy (band: 95 % CI of the mean over repeats)",
                   fontsize=9, title_fontsize=9)
    if title:
        _title(fig, title)
    return fig


def _title(fig: Any, title: str) -> None:
    """A title wrapped into lines that fit the figure's width (measured with the Agg renderer)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    width = fig.get_figwidth() * fig.dpi
    text = fig.suptitle(title, fontsize=11)
    for chars in range(TITLE_CHARS, 19, -5):
        text.set_text("\n".join(textwrap.wrap(title, chars)))
        if text.get_window_extent(renderer).width <= width - 8:
            return
