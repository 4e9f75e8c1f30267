"""Marker over-sampling and marker geometry (the paper's Sec. III-A).

A marker is a disk of radius ``r`` around a centre pixel: every pixel ``q``
with ``||p - q|| <= r``.  For one marked image the paper samples one object
centre and ``n_bg`` background centres at random, rejecting any centre that
lies closer than ``1.5 r`` (L2) to an already chosen centre or to the image
border.  We implement the rejection exactly: each new centre is drawn
uniformly among the pixels of its class that are still admissible, and the
``1.5 r`` neighbourhood of every chosen centre is then made inadmissible.
This is what repeated rejection sampling converges to, but it always
terminates and can say how many markers fit when the request cannot be met.

Coordinates are ``(row, col)`` throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from flimexplore.errors import MarkerError

__all__ = [
    "MARGIN_FACTOR",
    "MarkerGroups",
    "MarkerPixels",
    "MarkerSet",
    "ObjectMarkerSet",
    "admissible_centres",
    "disk_offsets",
    "marker_pixels",
    "marker_union",
    "sample_marker_groups",
    "sample_markers",
    "sample_object_markers",
    "stroke_pixels",
    "validate_markers",
]

MARGIN_FACTOR = 1.5
"""Minimum centre-to-centre and centre-to-border distance, in marker radii."""


@dataclass(frozen=True, eq=False)
class MarkerSet:
    """One object marker and its background markers, all of one radius.

    Attributes
    ----------
    obj : ndarray of shape (2,), int64
        ``(row, col)`` of the object-marker centre.
    bg : ndarray of shape (n_bg, 2), int64
        ``(row, col)`` of each background-marker centre.
    radius : int
        Disk radius ``r`` in pixels.
    """

    obj: NDArray[np.int64]
    bg: NDArray[np.int64]
    radius: int

    def __len__(self) -> int:
        return len(self.bg)

    def pairs(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """The (object, background) centre of each of its ``n_bg`` marker pairs, as two (n_bg, 2) arrays."""
        return np.repeat(np.asarray(self.obj)[None], len(self.bg), axis=0), np.asarray(self.bg)


@dataclass(frozen=True, eq=False)
class ObjectMarkerSet:
    """One background marker and the object markers varied against it (``study --vary object``).

    Attributes
    ----------
    background : ndarray of shape (2,), int64
        ``(row, col)`` of the fixed background-marker centre.
    objects : ndarray of shape (n_obj, 2), int64
        ``(row, col)`` of each object-marker centre.
    radius : int
        Disk radius ``r`` in pixels.
    """

    background: NDArray[np.int64]
    objects: NDArray[np.int64]
    radius: int

    def __len__(self) -> int:
        return len(self.objects)

    def pairs(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """The (object, background) centre of each of its ``n_obj`` marker pairs, as two (n_obj, 2) arrays."""
        return np.asarray(self.objects), np.repeat(np.asarray(self.background)[None], len(self.objects), axis=0)


@dataclass(frozen=True, eq=False)
class MarkerPixels:
    """One model's markers of any shape (scribbles): its object and background pixels.

    Attributes
    ----------
    obj : ndarray of shape (K, 2), int64
        ``(row, col)`` of the object-marker pixels.
    bg : ndarray of shape (L, 2), int64
        ``(row, col)`` of the background-marker pixels.
    """

    obj: NDArray[np.int64]
    bg: NDArray[np.int64]

    def __len__(self) -> int:
        return 1


@dataclass(frozen=True, eq=False)
class MarkerGroups:
    """Markers of models that each learn from several disks: K object and M background disks.

    All models of one split share the K object disks; model ``k`` has its
    own M background disks ``bg[k]``.

    Attributes
    ----------
    obj : ndarray of shape (K, 2), int64
        ``(row, col)`` of the object-disk centres.
    bg : ndarray of shape (n_models, M, 2), int64
        ``(row, col)`` of each model's background-disk centres.
    radius : int
        Disk radius ``r`` in pixels.
    """

    obj: NDArray[np.int64]
    bg: NDArray[np.int64]
    radius: int

    def __len__(self) -> int:
        return len(self.bg)


def disk_offsets(radius: int) -> NDArray[np.int64]:
    """Offsets ``(drow, dcol)`` of the pixels of a disk of the given radius.

    Parameters
    ----------
    radius : int
        Disk radius ``r >= 0``; a pixel belongs to the disk when its distance
        to the centre is at most ``r``.

    Returns
    -------
    offsets : ndarray of shape (K, 2), int64
        In raster order.

    Examples
    --------
    >>> len(disk_offsets(1)), len(disk_offsets(3))
    (5, 29)
    """
    r = int(radius)
    rr, cc = np.mgrid[-r : r + 1, -r : r + 1]
    keep = rr**2 + cc**2 <= r * r
    return np.stack([rr[keep], cc[keep]], axis=1).astype(np.int64)


def marker_pixels(
    centre: NDArray[np.integer], radius: int, shape: tuple[int, int]
) -> NDArray[np.int64]:
    """Pixels of a disk marker that fall inside an image.

    Parameters
    ----------
    centre : array_like of shape (2,), int
        ``(row, col)`` of the centre.
    radius : int
        Disk radius.
    shape : tuple of int
        ``(H, W)`` of the image.

    Returns
    -------
    pixels : ndarray of shape (K, 2), int64
        ``(row, col)`` of the disk pixels inside the image.
    """
    px = disk_offsets(radius) + np.asarray(centre, dtype=np.int64)
    inside = (px[:, 0] >= 0) & (px[:, 0] < shape[0]) & (px[:, 1] >= 0) & (px[:, 1] < shape[1])
    return px[inside]


def marker_union(centres: NDArray[np.integer], radius: int, shape: tuple[int, int]) -> NDArray[np.int64]:
    """Pixels covered by any of several disks, each once, in raster order.

    Parameters
    ----------
    centres : array_like of shape (K, 2), int
        ``(row, col)`` of each disk's centre.
    radius : int
    shape : tuple of int
        ``(H, W)`` of the image; pixels outside it are dropped.

    Returns
    -------
    pixels : ndarray of shape (P, 2), int64
        For one disk, the same pixels in the same order as :func:`marker_pixels`.

    Examples
    --------
    >>> len(marker_union([[5, 5], [5, 7]], 1, (10, 10)))  # two 5-pixel disks sharing one pixel
    9
    """
    disks = [marker_pixels(c, radius, shape) for c in np.asarray(centres, dtype=np.int64).reshape(-1, 2)]
    return np.unique(np.concatenate(disks), axis=0)


def stroke_pixels(points: NDArray[np.floating], radius: int, shape: tuple[int, int]) -> tuple[NDArray[np.int64], int]:
    """Pixels of a freehand stroke: the polyline through ``points``, widened by a disk of ``radius``.

    A stroke is what a user drags with the mouse (a scribble in LIDS terms).
    Consecutive points are joined by straight pixel lines, every line pixel
    is replaced by its disk, and what falls outside the image is dropped.

    Parameters
    ----------
    points : array_like of shape (K, 2), float
        ``(row, col)`` of the stroke's points in image coordinates, in drawing order (``K >= 1``).
    radius : int
        Brush radius ``>= 0`` (0: a one-pixel line).
    shape : tuple of int
        ``(H, W)`` of the image.

    Returns
    -------
    pixels : ndarray of shape (P, 2), int64
        Each stroke pixel inside the image once, in raster order.
    outside : int
        How many of ``points`` lay outside the image (their part of the stroke is dropped).

    Raises
    ------
    MarkerError
        If ``points`` is not a (K, 2) array of finite numbers, or the whole stroke lies outside the image.

    Examples
    --------
    >>> px, outside = stroke_pixels([[1, 1], [1, 4]], 0, (6, 6))
    >>> px.tolist(), outside
    ([[1, 1], [1, 2], [1, 3], [1, 4]], 0)
    >>> px, outside = stroke_pixels([[2, 2], [2, 8]], 1, (5, 5))  # widened; ends off the image
    >>> len(px), outside
    (10, 1)
    """
    from skimage.draw import line

    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or len(p) == 0 or not np.isfinite(p).all():
        raise MarkerError(f"a stroke is a list of (row, col) points with finite values; got shape {p.shape}")
    h, w = shape
    outside = int((~((p[:, 0] > -0.5) & (p[:, 0] < h - 0.5) & (p[:, 1] > -0.5) & (p[:, 1] < w - 0.5))).sum())
    q = np.rint(p).astype(np.int64)
    rows, cols = [q[:1, 0]], [q[:1, 1]]
    for (r0, c0), (r1, c1) in zip(q[:-1], q[1:], strict=True):
        rr, cc = line(int(r0), int(c0), int(r1), int(c1))
        rows.append(rr[1:])
        cols.append(cc[1:])
    centres = np.stack([np.concatenate(rows), np.concatenate(cols)], axis=1)
    px = (centres[:, None, :] + disk_offsets(radius)[None]).reshape(-1, 2)
    inside = (px[:, 0] >= 0) & (px[:, 0] < h) & (px[:, 1] >= 0) & (px[:, 1] < w)
    if not inside.any():
        raise MarkerError(f"the stroke lies outside the {h}x{w} image: draw it on the image")
    return np.unique(px[inside], axis=0), outside


def _border_ok(shape: tuple[int, int], radius: int) -> NDArray[np.bool_]:
    margin = MARGIN_FACTOR * radius
    rows = np.arange(shape[0])
    cols = np.arange(shape[1])
    ok_r = (rows >= margin) & (rows <= shape[0] - 1 - margin)
    ok_c = (cols >= margin) & (cols <= shape[1] - 1 - margin)
    return ok_r[:, None] & ok_c[None, :]


def admissible_centres(mask: NDArray[np.bool_], radius: int) -> NDArray[np.bool_]:
    """Pixels far enough from the border to be a marker centre.

    Parameters
    ----------
    mask : ndarray of shape (H, W), bool
        Ground truth, only its shape is used.
    radius : int
        Marker radius ``r``; centres keep ``1.5 r`` from every border.

    Returns
    -------
    ok : ndarray of shape (H, W), bool
    """
    return _border_ok(mask.shape, radius)


def _check_radius(shape: tuple[int, int], radius: int) -> None:
    if isinstance(radius, bool) or int(radius) != radius or radius <= 0:
        raise MarkerError(f"marker radius must be a positive integer, got {radius!r}")
    if not _border_ok(shape, radius).any():
        biggest = max(
            (r for r in range(1, min(shape)) if _border_ok(shape, r).any()), default=0
        )
        raise MarkerError(
            f"marker radius {radius} is too big for a {shape[0]}x{shape[1]} image: "
            f"centres must keep {MARGIN_FACTOR}*r from the border; the largest radius "
            f"that fits is {biggest}"
        )


def _draw(pool: NDArray[np.bool_], rng: np.random.Generator) -> tuple[int, int] | None:
    flat = np.flatnonzero(pool)
    if flat.size == 0:
        return None
    k = int(flat[rng.integers(flat.size)])
    return divmod(k, pool.shape[1])


def _exclude(pool: NDArray[np.bool_], centre: tuple[int, int], radius: int) -> None:
    # Centres must be at least 1.5 r apart: a candidate strictly closer is rejected.
    d = MARGIN_FACTOR * radius
    r0, c0 = centre
    lo_r, hi_r = max(0, int(np.floor(r0 - d))), min(pool.shape[0], int(np.ceil(r0 + d)) + 1)
    lo_c, hi_c = max(0, int(np.floor(c0 - d))), min(pool.shape[1], int(np.ceil(c0 + d)) + 1)
    rr, cc = np.mgrid[lo_r:hi_r, lo_c:hi_c]
    pool[lo_r:hi_r, lo_c:hi_c] &= (rr - r0) ** 2 + (cc - c0) ** 2 >= d * d


def sample_markers(
    mask: NDArray[np.bool_],
    n_bg: int,
    radius: int,
    seed: int | np.random.Generator | None = 0,
) -> MarkerSet:
    """Sample one object marker and ``n_bg`` background markers (paper Sec. III-A).

    Parameters
    ----------
    mask : ndarray of shape (H, W), bool
        Ground truth of the marked image; ``True`` is object.
    n_bg : int
        Number of background markers, ``>= 1``.
    radius : int
        Marker radius ``r``.
    seed : int or numpy.random.Generator, optional
        Seed of the sampling; the same seed gives the same markers.

    Returns
    -------
    MarkerSet

    Raises
    ------
    MarkerError
        If the radius is not positive or too big for the image, if no object
        pixel is far enough from the border, or if fewer than ``n_bg``
        background markers fit; the message says how many fit.

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.zeros((64, 64), bool); mask[20:40, 20:40] = True
    >>> ms = sample_markers(mask, n_bg=5, radius=3, seed=1)
    >>> bool(mask[tuple(ms.obj)]), len(ms), bool(mask[ms.bg[:, 0], ms.bg[:, 1]].any())
    (True, 5, False)
    """
    obj, bg = _sample_one_then_many(mask, n_bg, radius, seed, first_on_object=True)
    return MarkerSet(
        obj=np.asarray(obj, dtype=np.int64),
        bg=np.asarray(bg, dtype=np.int64).reshape(-1, 2),
        radius=int(radius),
    )


def sample_marker_groups(
    mask: NDArray[np.bool_],
    n_models: int,
    per_model: tuple[int, int],
    radius: int,
    seed: int | np.random.Generator | None = 0,
) -> MarkerGroups:
    """Sample K object disks and ``n_models`` groups of M background disks, by the paper's rules.

    Every centre is drawn as in :func:`sample_markers` (uniformly among the
    admissible pixels of its class, ``1.5 r`` from the border and from every
    centre drawn before): first the K object centres, then the background
    centres model after model.  With ``per_model = (1, 1)`` the centres equal
    those of :func:`sample_markers` with the same seed.

    Parameters
    ----------
    mask : ndarray of shape (H, W), bool
        Ground truth of the marked image.
    n_models : int
        Number of models (groups of background disks), ``>= 1``.
    per_model : tuple of int
        ``(K, M)``: object and background disks per model, each ``>= 1``.
    radius : int
    seed : int or numpy.random.Generator, optional

    Returns
    -------
    MarkerGroups

    Raises
    ------
    MarkerError
        If the radius does not fit, or fewer than K object or ``n_models * M``
        background disks fit; the message says how many fit.

    Examples
    --------
    >>> mask = np.zeros((64, 64), bool); mask[16:48, 16:48] = True
    >>> g = sample_marker_groups(mask, 4, (2, 3), radius=2, seed=0)
    >>> g.obj.shape, g.bg.shape, bool(mask[g.obj[:, 0], g.obj[:, 1]].all())
    ((2, 2), (4, 3, 2), True)
    """
    mask = np.asarray(mask, dtype=bool)
    k, m = (int(v) for v in per_model)
    if k < 1 or m < 1 or int(n_models) < 1:
        raise MarkerError(f"markers per model and models must be >= 1, got {per_model!r} and {n_models!r}")
    _check_radius(mask.shape, radius)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    border = _border_ok(mask.shape, radius)
    pool = border & mask
    obj: list[tuple[int, int]] = []
    while len(obj) < k:
        c = _draw(pool, rng)
        if c is None:
            raise MarkerError(
                f"{k} object markers of radius {radius} do not fit: only {len(obj)} fit {MARGIN_FACTOR}*r apart and "
                f"from the border; ask for fewer object markers per model or use a smaller radius"
            )
        obj.append(c)
        _exclude(pool, c, radius)
    pool = border & ~mask
    for c in obj:
        _exclude(pool, c, radius)
    bg: list[tuple[int, int]] = []
    while len(bg) < n_models * m:
        c = _draw(pool, rng)
        if c is None:
            raise MarkerError(
                f"{n_models} models x {m} background markers of radius {radius} do not fit: only {len(bg)} fit "
                f"{MARGIN_FACTOR}*r apart and from the border; ask for at most {len(bg) // m} background markers "
                "(--n-bg) or fewer per model, or use a smaller radius"
            )
        bg.append(c)
        _exclude(pool, c, radius)
    return MarkerGroups(
        obj=np.asarray(obj, dtype=np.int64).reshape(k, 2),
        bg=np.asarray(bg, dtype=np.int64).reshape(int(n_models), m, 2),
        radius=int(radius),
    )


def sample_object_markers(
    mask: NDArray[np.bool_],
    n_obj: int,
    radius: int,
    seed: int | np.random.Generator | None = 0,
) -> ObjectMarkerSet:
    """Sample one background marker and ``n_obj`` object markers (the paper's rules, classes swapped).

    The background centre is drawn first among admissible background pixels,
    then each object centre among admissible object pixels, every centre
    keeping ``1.5 r`` from the border and from every centre chosen before.

    Parameters
    ----------
    mask : ndarray of shape (H, W), bool
        Ground truth of the marked image; ``True`` is object.
    n_obj : int
        Number of object markers, ``>= 1``.
    radius : int
        Marker radius ``r``.
    seed : int or numpy.random.Generator, optional

    Returns
    -------
    ObjectMarkerSet

    Raises
    ------
    MarkerError
        If the radius does not fit, no background pixel is admissible, or
        fewer than ``n_obj`` object markers fit; the message says how many fit.

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.zeros((64, 64), bool); mask[20:40, 20:40] = True
    >>> ms = sample_object_markers(mask, n_obj=4, radius=2, seed=1)
    >>> bool(mask[tuple(ms.background)]), len(ms), bool(mask[ms.objects[:, 0], ms.objects[:, 1]].all())
    (False, 4, True)
    """
    bg, obj = _sample_one_then_many(mask, n_obj, radius, seed, first_on_object=False)
    return ObjectMarkerSet(
        background=np.asarray(bg, dtype=np.int64),
        objects=np.asarray(obj, dtype=np.int64).reshape(-1, 2),
        radius=int(radius),
    )


def validate_markers(markers: MarkerSet, mask: NDArray[np.bool_]) -> None:
    """Check user-given markers against a marked image's ground truth.

    The object centre must be an object pixel and each background centre a
    background pixel, and every centre must lie inside the image.  Unlike
    sampled markers, user markers may be closer than ``1.5 r`` to each other
    or to the border; their disks are clipped to the image.

    Raises
    ------
    MarkerError
        If the radius is not a positive integer that fits the image, the
        centres are not integer ``(row, col)`` pairs (object: shape (2,),
        background: shape (N, 2)), or a centre is outside the image or on the
        wrong class; the message names the first offending marker.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise MarkerError(f"the mask must be 2-D (H, W), got shape {mask.shape}")
    _check_radius(mask.shape, markers.radius)
    obj, bg = np.asarray(markers.obj), np.asarray(markers.bg)
    if obj.shape != (2,) or not _integral(obj):
        raise MarkerError(f"the object marker centre must be one integer (row, col) pair, got {markers.obj!r}")
    if bg.size == 0:
        bg = bg.reshape(0, 2)
    if bg.ndim != 2 or bg.shape[1] != 2 or not _integral(bg):
        raise MarkerError(
            f"background marker centres must be integer (row, col) pairs of shape (N, 2), got {bg.dtype} {bg.shape}"
        )
    h, w = mask.shape
    centres = [("object", obj, True)] + [(f"background #{i}", c, False) for i, c in enumerate(bg)]
    for name, c, want in centres:
        r, col = int(c[0]), int(c[1])
        if not (0 <= r < h and 0 <= col < w):
            raise MarkerError(f"{name} marker centre ({r}, {col}) is outside the {h}x{w} image")
        if bool(mask[r, col]) != want:
            where = "background" if want else "object"
            raise MarkerError(f"{name} marker centre ({r}, {col}) lies on the {where}")


def _integral(values: np.ndarray) -> bool:
    """Whether an array holds whole numbers only (integer dtype, or finite floats without fraction)."""
    if values.dtype.kind in "iu":
        return True
    if values.dtype.kind != "f":
        return False
    return bool(np.isfinite(values).all() and (values == np.round(values)).all())


def _sample_one_then_many(
    mask: NDArray[np.bool_], n: int, radius: int, seed: int | np.random.Generator | None, first_on_object: bool
) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """One centre of the first class, then ``n`` of the other, each ``1.5 r`` from the border and every earlier one.

    The paper's sampling (``first_on_object=True``: one object marker, then background markers) and
    its mirror for varied object markers; the random draws are made in that order.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise MarkerError(f"the mask must be 2-D (H, W), got shape {mask.shape}")
    many = "background" if first_on_object else "object"
    if int(n) != n or n < 1:
        raise MarkerError(f"the number of {many} markers must be >= 1, got {n!r}")
    _check_radius(mask.shape, radius)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    border = _border_ok(mask.shape, radius)
    first = _draw(border & (mask if first_on_object else ~mask), rng)
    if first is None:
        if first_on_object:
            raise MarkerError(
                f"no object pixel keeps {MARGIN_FACTOR}*r = {MARGIN_FACTOR * radius:g} px from "
                f"the border (object has {int(mask.sum())} px); use a smaller radius"
            )
        raise MarkerError(
            f"no background pixel keeps {MARGIN_FACTOR}*r = {MARGIN_FACTOR * radius:g} px from the border; "
            "use a smaller radius"
        )
    pool = border & (~mask if first_on_object else mask)
    _exclude(pool, first, radius)
    chosen: list[tuple[int, int]] = []
    while len(chosen) < n:
        c = _draw(pool, rng)
        if c is None:
            if first_on_object:
                raise MarkerError(
                    f"{n} background markers of radius {radius} do not fit: only {len(chosen)} "
                    f"fit {MARGIN_FACTOR}*r apart and from the border with this seed; ask for at "
                    f"most {len(chosen)} or use a smaller radius"
                )
            raise MarkerError(
                f"{n} object markers of radius {radius} do not fit in the object: only {len(chosen)} fit "
                f"{MARGIN_FACTOR}*r apart and from the border with this seed; ask for at most {len(chosen)} "
                "(--n-bg) or use a smaller radius"
            )
        chosen.append(c)
        _exclude(pool, c, radius)
    return first, chosen
