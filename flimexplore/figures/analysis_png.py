"""The analysis picture (``analysis.png``): which descriptors predict a marker pair's Dice.

A pure builder on arrays (matplotlib, headless Agg canvas): on the left,
Spearman's rho of every descriptor with the validation Dice and its 95 %
bootstrap interval (filled when the interval excludes zero); on the right,
scatter plots of chosen descriptors against the Dice, one colour per split.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["analysis_figure", "analysis_png"]


def analysis_figure(
    names: Sequence[str],
    rho: NDArray[np.floating],
    lo: NDArray[np.floating],
    hi: NDArray[np.floating],
    scatter: Sequence[dict[str, Any]] = (),
    title: str = "",
) -> Any:
    """Build the analysis figure.

    Parameters
    ----------
    names : sequence of str, length D
        Descriptor names, drawn bottom to top.
    rho, lo, hi : ndarray of shape (D,), float
        Spearman's rho with Dice and its interval (NaN: not defined, drawn empty).
    scatter : sequence of dict
        Panels, each with ``x`` and ``y`` (ndarray of shape (n,)), ``group``
        (ndarray of shape (n,), int: colour), ``xlabel`` and ``title``.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Not attached to pyplot (no window, no global state).
    """
    from matplotlib.figure import Figure

    n_sc = len(scatter)
    fig = Figure(figsize=(6 + 3.6 * n_sc, max(4.0, 0.32 * len(names) + 1.6)), dpi=100, layout="constrained")
    grid = fig.add_gridspec(1, 1 + n_sc, width_ratios=[1.7] + [1.0] * n_sc)
    ax = fig.add_subplot(grid[0, 0])
    y = np.arange(len(names))
    rho, lo, hi = (np.asarray(v, dtype=float) for v in (rho, lo, hi))
    sig = np.isfinite(lo) & ((lo > 0) | (hi < 0))
    ax.axvline(0.0, color="0.5", lw=0.8)
    ok = np.isfinite(rho)
    ax.errorbar(rho[ok], y[ok], xerr=np.abs(np.vstack([rho[ok] - lo[ok], hi[ok] - rho[ok]])), fmt="none", ecolor="0.35", capsize=3)
    ax.scatter(rho[ok & sig], y[ok & sig], color="#c0392b", zorder=3, label="95 % CI excludes 0")
    ax.scatter(rho[ok & ~sig], y[ok & ~sig], facecolor="white", edgecolor="#34495e", zorder=3, label="CI includes 0")
    ax.set_yticks(y, labels=list(names), fontsize=8)
    ax.set_xlim(-1.05, 1.05)
    ax.set_xlabel("Spearman rho with validation Dice (95 % bootstrap CI)")
    ax.legend(loc="lower right", fontsize=7)
    for j, panel in enumerate(scatter):
        a = fig.add_subplot(grid[0, 1 + j])
        x, d = np.asarray(panel["x"], float), np.asarray(panel["y"], float)
        g = np.asarray(panel.get("group", np.zeros(len(x))), int)
        pts = a.scatter(x, d, c=g, cmap="tab10", vmin=0, vmax=9, s=14, alpha=0.8)
        a.set_xlabel(panel.get("xlabel", ""))
        a.set_ylabel("validation Dice")
        a.set_title(panel.get("title", ""), fontsize=9)
        if j == n_sc - 1 and len(np.unique(g)) > 1:
            a.legend(*pts.legend_elements(), title="split", fontsize=7, title_fontsize=7, loc="best")
    if title:
        fig.suptitle(title)
    return fig


def analysis_png(*args: Any, **kwargs: Any) -> bytes:
    """The figure of :func:`analysis_figure` as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = analysis_figure(*args, **kwargs)
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
