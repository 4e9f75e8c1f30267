"""The paper's marker heatmap: each marker's score painted with its spatial decay (NumPy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from flimexplore.colormap import heat_colors

__all__ = ["HeatLayer", "paint_heatmap", "render_heatmap"]


@dataclass(frozen=True, eq=False)
class HeatLayer:
    """A painted relevance map.

    Attributes
    ----------
    value : ndarray of shape (H, W), float64
        Decay-weighted mean relevance of the markers covering each pixel, NaN
        where no marker lies.
    weight : ndarray of shape (H, W), float64
        Paper's decay ``(2 - ||p - q||^2 / r^2) / 2`` of the nearest marker
        (1 at a centre, 1/2 on the rim, 0 outside every marker).
    """

    value: NDArray[np.float64]
    weight: NDArray[np.float64]


def paint_heatmap(
    shape: tuple[int, int],
    centres: NDArray[np.integer],
    scores: NDArray[np.floating],
    radius: float,
) -> HeatLayer:
    """Paint each marker's score with the paper's spatial decay.

    The paper gives the decay ``I(q) = 2 - ||p - q||^2 / r^2`` for a pixel
    ``q`` of the disk around the centre ``p`` (2 at the centre, 1 on the
    rim).  We read it as a *weight*: a pixel covered by several disks gets
    the decay-weighted mean of their scores, and its opacity is the largest
    decay divided by 2.  A lone disk therefore shows its marker's score at
    every pixel, fading from full opacity at the centre to half on the rim;
    dense maps (disks overlapping) become a smooth interpolation.

    Parameters
    ----------
    shape : tuple of int
        ``(H, W)``.
    centres : ndarray of shape (M, 2), int
        ``(row, col)`` of each marker.
    scores : ndarray of shape (M,), float
        Each marker's relevance (validation Dice); NaN scores are skipped.
    radius : float
        Disk radius ``r``.

    Returns
    -------
    HeatLayer
    """
    h, w = shape
    num = np.zeros(shape)
    den = np.zeros(shape)
    top = np.zeros(shape)
    r = float(radius)
    ri = int(np.ceil(r))
    for (pr, pc), s in zip(np.asarray(centres, dtype=np.int64), np.asarray(scores, float), strict=True):
        if not np.isfinite(s):
            continue
        lo_r, hi_r = max(0, pr - ri), min(h, pr + ri + 1)
        lo_c, hi_c = max(0, pc - ri), min(w, pc + ri + 1)
        rr, cc = np.mgrid[lo_r:hi_r, lo_c:hi_c]
        d2 = (rr - pr) ** 2 + (cc - pc) ** 2
        decay = np.where(d2 <= r * r, 2.0 - d2 / (r * r), 0.0)
        num[lo_r:hi_r, lo_c:hi_c] += decay * s
        den[lo_r:hi_r, lo_c:hi_c] += decay
        top[lo_r:hi_r, lo_c:hi_c] = np.maximum(top[lo_r:hi_r, lo_c:hi_c], decay)
    value = np.full(shape, np.nan)
    np.divide(num, den, out=value, where=den > 0)
    return HeatLayer(value=value, weight=top / 2.0)


def render_heatmap(
    image: NDArray[np.floating],
    layer: HeatLayer,
    obj_centre: NDArray[np.integer] | None = None,
    radius: float = 0.0,
    vmin: float | None = None,
    vmax: float | None = None,
    marker_colour: tuple[int, int, int] = (255, 0, 0),
) -> NDArray[np.uint8]:
    """Blend a heat layer over a greyed copy of the image.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), float in [0, 1]
    layer : HeatLayer
    obj_centre : ndarray of shape (2,), optional
        The split's fixed marker (the object marker), drawn as a solid disk of ``radius``.
    radius : float
    vmin, vmax : float, optional
        Colour range; defaults to the range of the layer's values.
    marker_colour : tuple of int, optional
        RGB of the fixed marker's disk (red; a fixed background marker is drawn green).

    Returns
    -------
    rgb : ndarray of shape (H, W, 3), uint8
    """
    grey = np.asarray(image, dtype=np.float64).mean(axis=-1, keepdims=True) * 255.0
    base = np.repeat(grey * 0.8 + 25.0, 3, axis=-1)
    finite = np.isfinite(layer.value)
    lo = np.nanmin(layer.value) if vmin is None and finite.any() else (vmin or 0.0)
    hi = np.nanmax(layer.value) if vmax is None and finite.any() else (1.0 if vmax is None else vmax)
    colour = heat_colors(np.where(finite, layer.value, lo), lo, hi).astype(np.float64)
    alpha = np.where(finite, layer.weight, 0.0)[..., None]
    out = alpha * colour + (1.0 - alpha) * base
    if obj_centre is not None and radius > 0:
        rr, cc = np.mgrid[: out.shape[0], : out.shape[1]]
        disk = (rr - obj_centre[0]) ** 2 + (cc - obj_centre[1]) ** 2 <= radius * radius
        out[disk] = tuple(float(v) for v in marker_colour)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
