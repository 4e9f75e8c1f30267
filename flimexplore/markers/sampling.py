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

import numpy as np
from numpy.typing import NDArray

from flimexplore.errors import MarkerError
from flimexplore.markers.sets import MarkerGroups, MarkerSet, ObjectMarkerSet

__all__ = ["MARGIN_FACTOR", "admissible_centres", "sample_marker_groups", "sample_markers", "sample_object_markers"]

MARGIN_FACTOR = 1.5
"""Minimum centre-to-centre and centre-to-border distance, in marker radii."""


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
