"""Cheap descriptors of candidate marker positions, from the marked image and its mask only.

:func:`position_descriptors` describes ``M`` candidate background markers
(disks of radius ``r``) paired with one object marker.  Every value is
computed from the marked image (in FLIM's normalised Lab space, see
:func:`~flimexplore.engine.colour.lab_norm`) and the marked image's own
mask; nothing here can see a validation or test mask, so the values may be
used to rank or recommend markers.  All descriptors are vectorised over the
candidates (gathers and a few image-wide maps; no model is trained).

Descriptors (one line each: what it measures — why it might matter):

- ``bg_std``: colour standard deviation of the pixels under the background
  disk (root of the summed Lab channel variances) — the paper sees better
  Dice for background markers on texture than on plain regions.
- ``bg_gradient``: mean gradient energy (squared forward differences,
  summed over Lab channels) under the background disk — edges give FLIM's 3x3 kernels something to learn.
- ``bg_entropy``: Shannon entropy (bits) of the lightness L, quantised to
  16 levels, under the background disk — a second, contrast-free texture measure.
- ``bg_context``: mean gradient energy in a disk of radius ``3 r`` around
  the background centre — the paper: markers at the border of background
  textures help, even when the disk itself is plain.
- ``obj_std``, ``obj_gradient``, ``obj_entropy``: the same three under the
  object disk (one value for all candidates of one object marker) — for
  comparing object markers.
- ``colour_distance``: Euclidean distance between the mean Lab colours of
  the object and background disks — markers on similar colours give
  kernels that do not separate the classes (paper Fig. 4, image 2).
- ``texture_distance``: Euclidean distance between the per-channel standard
  deviations under the two disks — the same for texture instead of colour.
- ``bg_border_distance``: signed distance (px) of the background centre to
  the object border in the marked mask, positive outside the object,
  negative inside — markers near the object border teach the boundary.
- ``obj_border_distance``: the same for the object centre (negative: it is
  inside) — the paper: object markers on the border help.
- ``obj_bg_distance``: distance (px) between the two centres — near pairs
  see one local scene, far pairs the wider image.
- ``patch_fisher``: Fisher ratio ``|mu_o - mu_b|^2 / (tr S_o + tr S_b)`` of
  the marker-normalised 3x3 Lab patches under the two disks (what the
  engine's kernels are learnt from; the paper's Fig. 4b says this
  separation does NOT predict Dice).
- ``nearest_mean_dice``: Dice on the marked image (against its own mask) of
  a nearest-mean classifier whose two means are the disks' average
  features (Lab colour and local colour std over a ``(2r+1)^2`` window,
  scaled by the pair's marker statistics as FLIM does) — how well the two
  markers alone describe the whole marked image, a cheap stand-in for
  training the model.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from flimexplore.engine.colour import lab_norm
from flimexplore.errors import MarkerError
from flimexplore.markers import disk_offsets

__all__ = ["DESCRIPTORS", "ENTROPY_LEVELS", "position_descriptors", "signed_border_distance"]

DESCRIPTORS = (
    "bg_std", "bg_gradient", "bg_entropy", "bg_context",
    "obj_std", "obj_gradient", "obj_entropy",
    "colour_distance", "texture_distance",
    "bg_border_distance", "obj_border_distance", "obj_bg_distance",
    "patch_fisher", "nearest_mean_dice",
)
"""Names of the descriptors :func:`position_descriptors` returns, in order."""

ENTROPY_LEVELS = 16
"""Grey levels of the lightness before the entropy is taken."""

_STDEV_FACTOR = 0.01  # added to marker std, as the engine's normalisation does
_CONTEXT_FACTOR = 3  # radius of the context disk, in marker radii
_CHUNK = 256  # candidates per block in the nearest-mean classifier


def signed_border_distance(mask: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Signed Euclidean distance of every pixel to the object border.

    Parameters
    ----------
    mask : ndarray of shape (H, W), bool
        True = object.

    Returns
    -------
    distance : ndarray of shape (H, W), float64
        Distance to the nearest pixel of the other class: positive on the
        background, negative on the object (so a background pixel touching
        the object has +1 and an object pixel touching the background -1).

    Examples
    --------
    >>> m = np.zeros((1, 5), bool); m[0, :2] = True
    >>> signed_border_distance(m).tolist()
    [[-2.0, -1.0, 1.0, 2.0, 3.0]]
    """
    mask = np.asarray(mask, dtype=bool)
    return ndimage.distance_transform_edt(~mask) - ndimage.distance_transform_edt(mask)


def _gradient_energy(lab: NDArray) -> NDArray:
    """Squared differences to the right and lower neighbours, summed over channels -> ``(H, W)``.

    Forward differences (not Sobel) so that the finest texture, a one-pixel
    checkerboard, which central differences miss, counts.
    """
    dr = np.diff(lab, axis=0, append=lab[-1:])
    dc = np.diff(lab, axis=1, append=lab[:, -1:])
    return (dr**2 + dc**2).sum(axis=-1)


def _gather(values: NDArray, centres: NDArray[np.int64], offsets: NDArray[np.int64]) -> tuple[NDArray, NDArray[np.bool_]]:
    """Values ``(H, W, ...)`` at every disk pixel of every centre -> ``(M, K, ...)`` and a validity mask ``(M, K)``."""
    h, w = values.shape[:2]
    rows = centres[:, None, 0] + offsets[None, :, 0]
    cols = centres[:, None, 1] + offsets[None, :, 1]
    valid = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    return values[np.clip(rows, 0, h - 1), np.clip(cols, 0, w - 1)], valid


def _masked_mean(x: NDArray, valid: NDArray[np.bool_]) -> NDArray:
    """Mean over axis 1 of ``x (M, K, ...)`` counting only valid entries."""
    v = valid.reshape(valid.shape + (1,) * (x.ndim - 2)).astype(x.dtype)
    return (x * v).sum(axis=1) / v.sum(axis=1)


def _disk_stats(lab: NDArray, grad: NDArray, levels: NDArray, centres: NDArray[np.int64], radius: int) -> dict[str, NDArray]:
    """Colour mean/std, gradient energy and entropy under disks of radius ``radius``."""
    offs = disk_offsets(radius)
    pix, valid = _gather(lab, centres, offs)  # (M, K, 3)
    mean = _masked_mean(pix, valid)  # (M, 3)
    var = _masked_mean((pix - mean[:, None]) ** 2, valid)  # (M, 3)
    g, _ = _gather(grad, centres, offs)
    q, _ = _gather(levels, centres, offs)
    counts = np.stack([((q == k) & valid).sum(axis=1) for k in range(ENTROPY_LEVELS)], axis=1).astype(np.float64)
    p = counts / counts.sum(axis=1, keepdims=True)
    entropy = -(p * np.log2(np.where(p > 0, p, 1.0))).sum(axis=1)
    return {"mean": mean, "channel_std": np.sqrt(var), "std": np.sqrt(var.sum(axis=1)),
            "gradient": _masked_mean(g, valid), "entropy": entropy, "pixels": pix, "valid": valid}


def _patches(lab: NDArray, centres: NDArray[np.int64], offsets: NDArray[np.int64]) -> tuple[NDArray, NDArray[np.bool_]]:
    """Raw 3x3 Lab patches ``(M, K, 27)`` around each disk pixel (outside pixels: NaN) and disk validity."""
    h, w = lab.shape[:2]
    padded = np.pad(lab, ((1, 1), (1, 1), (0, 0)), constant_values=np.nan)
    taps = np.stack(np.meshgrid(np.arange(3), np.arange(3), indexing="ij"), axis=-1).reshape(9, 2)
    rows = centres[:, None, 0] + offsets[None, :, 0]
    cols = centres[:, None, 1] + offsets[None, :, 1]
    valid = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    rr = np.clip(rows, 0, h - 1)[..., None] + taps[:, 0]  # padded coordinates of the 3x3 taps
    cc = np.clip(cols, 0, w - 1)[..., None] + taps[:, 1]
    return padded[rr, cc].reshape(*rows.shape, 27), valid


def _fisher(po: NDArray, pb: NDArray, vo: NDArray[np.bool_], vb: NDArray[np.bool_], mean: NDArray, std: NDArray) -> NDArray:
    """Fisher ratio of normalised patches per candidate (outside taps are 0 after normalisation)."""
    m3, s3 = np.tile(mean, 9)[:, None], np.tile(std, 9)[:, None]  # channel-innermost layout of _patches
    zo = np.nan_to_num((po - m3) / s3)
    zb = np.nan_to_num((pb - m3) / s3)
    mo, mb = _masked_mean(zo, vo), _masked_mean(zb, vb)
    so = _masked_mean(((zo - mo[:, None]) ** 2).sum(-1, keepdims=True), vo)[:, 0]
    sb = _masked_mean(((zb - mb[:, None]) ** 2).sum(-1, keepdims=True), vb)[:, 0]
    return ((mo - mb) ** 2).sum(-1) / np.maximum(so + sb, 1e-12)


def _nearest_mean_dice(feats: NDArray, mask: NDArray[np.bool_], f_obj: NDArray, f_bg: NDArray, scale: NDArray) -> NDArray:
    """Dice on the marked image of nearest-mean classifiers, one per candidate.

    ``feats (P, F)`` per pixel; ``f_obj (M, F)`` / ``f_bg (M, F)`` class means;
    ``scale (M, F)`` per-feature scale of each candidate.  With one scale for
    both classes, "nearer to the object mean" is the linear rule
    ``x . w(mu_o - mu_b) > (|mu_o|_w^2 - |mu_b|_w^2) / 2``.
    """
    truth = mask.reshape(-1)
    w = 1.0 / scale**2
    a = w * (f_obj - f_bg)  # (M, F)
    b = 0.5 * (w * (f_obj**2 - f_bg**2)).sum(axis=1)  # (M,)
    out = np.empty(len(f_bg))
    for lo in range(0, len(f_bg), _CHUNK):
        sl = slice(lo, lo + _CHUNK)
        pred = feats @ a[sl].T > b[sl]  # (P, B)
        tp = pred[truth].sum(axis=0)
        out[sl] = 2 * tp / (pred.sum(axis=0) + truth.sum())
    return out


def position_descriptors(
    image: NDArray[np.floating],
    mask: NDArray[np.bool_],
    obj_centre: NDArray[np.integer],
    centres: NDArray[np.integer],
    radius: int,
) -> dict[str, NDArray[np.float64]]:
    """Descriptors of ``M`` candidate background markers for one object marker.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), float in [0, 1]
        The marked image (RGB).
    mask : ndarray of shape (H, W), bool
        The marked image's own ground truth (True = object).  No other mask
        is needed or read.
    obj_centre : array_like of shape (2,), int
        ``(row, col)`` of the object marker.
    centres : array_like of shape (M, 2), int
        ``(row, col)`` of the candidate background markers.
    radius : int
        Marker radius ``r`` in pixels.

    Returns
    -------
    descriptors : dict of str to ndarray of shape (M,), float64
        One entry per name of :data:`DESCRIPTORS` (see the module docstring).

    Raises
    ------
    MarkerError
        If a centre is not integer ``(row, col)``, lies outside the image,
        or the radius is not a positive integer.
    """
    image = np.asarray(image, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    obj = np.asarray(obj_centre).reshape(1, 2)
    bg = np.asarray(centres).reshape(-1, 2)
    _check(image, mask, obj, bg, radius)
    obj, bg = obj.astype(np.int64), bg.astype(np.int64)
    lab = lab_norm(image).astype(np.float64)
    grad = _gradient_energy(lab)
    levels = np.minimum((lab[..., 0] * ENTROPY_LEVELS).astype(np.int64), ENTROPY_LEVELS - 1)
    so = _disk_stats(lab, grad, levels, obj, radius)
    sb = _disk_stats(lab, grad, levels, bg, radius)
    ctx_offs = disk_offsets(_CONTEXT_FACTOR * radius)
    g_ctx, v_ctx = _gather(grad, bg, ctx_offs)
    signed = signed_border_distance(mask)
    m = len(bg)
    out = {
        "bg_std": sb["std"], "bg_gradient": sb["gradient"], "bg_entropy": sb["entropy"],
        "bg_context": _masked_mean(g_ctx, v_ctx),
        "obj_std": np.repeat(so["std"], m), "obj_gradient": np.repeat(so["gradient"], m),
        "obj_entropy": np.repeat(so["entropy"], m),
        "colour_distance": np.linalg.norm(sb["mean"] - so["mean"], axis=1),
        "texture_distance": np.linalg.norm(sb["channel_std"] - so["channel_std"], axis=1),
        "bg_border_distance": signed[bg[:, 0], bg[:, 1]],
        "obj_border_distance": np.repeat(signed[obj[0, 0], obj[0, 1]], m),
        "obj_bg_distance": np.hypot(*(bg - obj).T.astype(np.float64)),
    }
    # marker-based normalisation of each pair: mean and population std over both disks' pixels
    po, vo = so["pixels"], so["valid"]
    n_o = vo.sum()
    sum_o = (po * vo[..., None]).sum(axis=1)  # (1, 3)
    sq_o = (po**2 * vo[..., None]).sum(axis=1)
    n_b = sb["valid"].sum(axis=1)[:, None]
    sum_b = sb["mean"] * n_b
    sq_b = (sb["channel_std"] ** 2 + sb["mean"] ** 2) * n_b
    n = n_o + n_b
    mean = (sum_o + sum_b) / n
    std = np.sqrt(np.maximum((sq_o + sq_b) / n - mean**2, 0.0)) + _STDEV_FACTOR
    offs = disk_offsets(radius)
    patch_o, valid_o = _patches(lab, obj, offs)
    patch_b, valid_b = _patches(lab, bg, offs)
    out["patch_fisher"] = _fisher(np.repeat(patch_o, m, axis=0), patch_b, np.repeat(valid_o, m, axis=0), valid_b, mean, std)
    # nearest-mean classifier on (Lab, local colour std) features
    size = 2 * radius + 1
    local_std = np.sqrt(np.maximum(
        np.stack([ndimage.uniform_filter(lab[..., c] ** 2, size) - ndimage.uniform_filter(lab[..., c], size) ** 2
                  for c in range(3)], axis=-1), 0.0))
    feats = np.concatenate([lab, local_std], axis=-1)
    f_obj = _masked_mean(*_gather(feats, obj, offs))
    f_bg = _masked_mean(*_gather(feats, bg, offs))
    both = np.concatenate([np.repeat(f_obj, m, axis=0)[:, None], f_bg[:, None]], axis=1)
    scale = np.concatenate([std, np.maximum(both.std(axis=1)[:, 3:], _STDEV_FACTOR)], axis=1)
    out["nearest_mean_dice"] = _nearest_mean_dice(feats.reshape(-1, 6), mask, np.repeat(f_obj, m, axis=0), f_bg, scale)
    return {k: np.asarray(out[k], dtype=np.float64) for k in DESCRIPTORS}


def _check(image: NDArray, mask: NDArray, obj: NDArray, bg: NDArray, radius: int) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or mask.shape != image.shape[:2]:
        raise MarkerError(f"descriptors need an (H, W, 3) image and an (H, W) mask, got {image.shape} and {mask.shape}")
    if isinstance(radius, bool) or int(radius) != radius or radius < 1:
        raise MarkerError(f"marker radius must be a positive integer, got {radius!r}")
    h, w = mask.shape
    for name, c in (("object", obj), ("background", bg)):
        whole = c.dtype.kind in "iu" or (c.dtype.kind == "f" and np.isfinite(c).all() and (c == np.round(c)).all())
        if not whole:
            raise MarkerError(f"{name} marker centres must be whole (row, col) numbers, got {c.dtype}")
        out = (c[:, 0] < 0) | (c[:, 0] >= h) | (c[:, 1] < 0) | (c[:, 1] >= w)
        if out.any():
            i = int(np.argmax(out))
            raise MarkerError(f"{name} marker centre ({int(c[i, 0])}, {int(c[i, 1])}) is outside the {h}x{w} image")
