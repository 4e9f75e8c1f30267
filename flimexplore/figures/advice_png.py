"""The advice picture (``advice.png``): where to draw the background marker, as a static figure.

A pure builder on arrays (matplotlib, headless Agg canvas): the marked
image, the advice map over it in the paper's blue-to-red scale with a
colour bar, the top positions ringed and numbered, the object marker as a
filled red disk with a white star, a legend and a title.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from flimexplore.colormap import HEAT_STOPS

__all__ = ["advice_figure", "save_advice_png"]


def _cmap() -> Any:
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("flimexplore_heat", [(t, tuple(c / 255 for c in rgb)) for t, rgb in HEAT_STOPS])


def advice_figure(
    image: NDArray[np.floating],
    score_map: NDArray[np.floating],
    top: NDArray[np.integer],
    obj: NDArray[np.integer],
    radius: int,
    title: str = "",
    alpha: float = 0.6,
    target: str = "background",
) -> Any:
    """Build the advice figure.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), float in [0, 1]
        The marked image.
    score_map : ndarray of shape (H, W), float
        Advice score per pixel; NaN where no candidate covers the pixel (drawn transparent).
    top : ndarray of shape (N, 2), int
        ``(row, col)`` of the recommended centres, best first (ringed, numbered 1..N).
    obj : ndarray of shape (2,), int
        ``(row, col)`` of the fixed marker: the object marker when background
        positions are advised, the background marker when object positions are.
    radius : int
        Marker radius in pixels (ring size).
    title : str, optional
    alpha : float, optional
        Opacity of the advice map.
    target : {"background", "object"}, optional
        Which marker the ranked positions are for (legend text and fixed-marker glyph).

    Returns
    -------
    matplotlib.figure.Figure
        Not attached to pyplot (no window, no global state).
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle

    image = np.asarray(image)
    score_map = np.asarray(score_map, dtype=np.float64)
    h, w = score_map.shape
    fig = Figure(figsize=(6.4, 5.6 * h / max(w, 1) + 0.4), dpi=110)
    ax = fig.add_subplot()
    ax.imshow(np.clip(image, 0, 1), interpolation="nearest")
    finite = score_map[np.isfinite(score_map)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    shown = ax.imshow(np.ma.masked_invalid(score_map), cmap=_cmap(), vmin=lo, vmax=hi if hi > lo else lo + 1e-9,
                      alpha=alpha, interpolation="nearest")
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label="advice score (higher: draw here)")
    for i, (r, c) in enumerate(np.asarray(top).reshape(-1, 2)):
        ax.add_patch(Circle((c, r), radius + 1.5, fill=False, edgecolor="white", linewidth=2.4))
        ax.add_patch(Circle((c, r), radius + 1.5, fill=False, edgecolor="black", linewidth=1.0))
        ax.annotate(str(i + 1), (c + radius + 2, r - radius - 2), color="white", fontsize=8, fontweight="bold",
                    bbox={"boxstyle": "round,pad=0.1", "fc": "black", "ec": "none", "alpha": 0.7})
    fixed_colour, glyph = ("#e41a1c", "*") if target == "background" else ("#377eb8", "D")
    ax.add_patch(Circle((obj[1], obj[0]), radius, color=fixed_colour))
    ax.plot([obj[1]], [obj[0]], marker=glyph, color="white", markersize=8, markeredgecolor="black")
    fixed = "object marker" if target == "background" else "background marker (fixed)"
    handles = [
        Line2D([], [], marker="o", linestyle="", markerfacecolor="none", markeredgecolor="black", markersize=10,
               label=f"top {len(np.asarray(top).reshape(-1, 2))} {target} positions"),
        Line2D([], [], marker=glyph, linestyle="", color="white", markeredgecolor="black", markersize=10,
               markerfacecolor=fixed_colour, label=fixed),
    ]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.04), ncol=2, fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    return fig


def save_advice_png(path: str | Path, *args: Any, **kwargs: Any) -> Path:
    """Build :func:`advice_figure` and write it as a PNG; returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = advice_figure(*args, **kwargs)
    FigureCanvasAgg(fig)
    path = Path(path)
    fig.savefig(path, format="png")
    return path
