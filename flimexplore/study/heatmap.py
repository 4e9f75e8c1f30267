"""The paper's marker heatmap: each marker's score painted with its spatial decay (NumPy only)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from flimexplore.colormap import heat_colors

__all__ = ["HeatLayer", "paint_heatmap", "paint_pixels", "render_heatmap"]


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


def paint_pixels(
    shape: tuple[int, int], pixels: NDArray[np.integer], score: float
) -> HeatLayer:
    """Paint one marker of any shape (a scribble, several strokes) with its score.

    Parameters
    ----------
    shape : tuple of int
        ``(H, W)``.
    pixels : ndarray of shape (K, 2), int
        ``(row, col)`` of the marker's pixels.
    score : float
        The model's relevance (validation Dice).

    Returns
    -------
    HeatLayer
        The score at full opacity on the marker's pixels, NaN elsewhere.
    """
    value = np.full(shape, np.nan)
    weight = np.zeros(shape)
    px = np.asarray(pixels, dtype=np.int64).reshape(-1, 2)
    if np.isfinite(score):
        value[px[:, 0], px[:, 1]] = float(score)
        weight[px[:, 0], px[:, 1]] = 1.0
    return HeatLayer(value=value, weight=weight)


def render_heatmap(
    image: NDArray[np.floating],
    layer: HeatLayer,
    obj_centre: NDArray[np.integer] | None = None,
    radius: float = 0.0,
    vmin: float | None = None,
    vmax: float | None = None,
    obj_pixels: NDArray[np.integer] | None = None,
    marker_colour: tuple[int, int, int] = (255, 0, 0),
    colours: Callable[[NDArray[np.floating], float, float], NDArray[np.uint8]] = heat_colors,
) -> NDArray[np.uint8]:
    """Blend a heat layer over a greyed copy of the image.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), float in [0, 1]
    layer : HeatLayer
    obj_centre : ndarray of shape (2,) or (K, 2), optional
        The split's fixed marker(s) (object markers), drawn as solid disks of ``radius``.
    radius : float
    vmin, vmax : float, optional
        Colour range; defaults to the range of the layer's values.
    obj_pixels : ndarray of shape (P, 2), int, optional
        Object marker of any shape, drawn in solid red pixel by pixel.
    marker_colour : tuple of int, optional
        RGB of the ``obj_centre`` disks (red; a fixed background marker is drawn green).
    colours : callable, optional
        Maps values and the range to RGB (default: the Dice scale,
        :func:`~flimexplore.colormap.heat_colors`).

    Returns
    -------
    rgb : ndarray of shape (H, W, 3), uint8
    """
    grey = np.asarray(image, dtype=np.float64).mean(axis=-1, keepdims=True) * 255.0
    base = np.repeat(grey * 0.8 + 25.0, 3, axis=-1)
    finite = np.isfinite(layer.value)
    lo = np.nanmin(layer.value) if vmin is None and finite.any() else (vmin or 0.0)
    hi = np.nanmax(layer.value) if vmax is None and finite.any() else (1.0 if vmax is None else vmax)
    colour = colours(np.where(finite, layer.value, lo), lo, hi).astype(np.float64)
    alpha = np.where(finite, layer.weight, 0.0)[..., None]
    out = alpha * colour + (1.0 - alpha) * base
    if obj_centre is not None and radius > 0:
        rr, cc = np.mgrid[: out.shape[0], : out.shape[1]]
        for centre in np.asarray(obj_centre).reshape(-1, 2):
            disk = (rr - centre[0]) ** 2 + (cc - centre[1]) ** 2 <= radius * radius
            out[disk] = tuple(float(v) for v in marker_colour)
    if obj_pixels is not None:
        px = np.asarray(obj_pixels, dtype=np.int64).reshape(-1, 2)
        out[px[:, 0], px[:, 1]] = (255.0, 0.0, 0.0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
