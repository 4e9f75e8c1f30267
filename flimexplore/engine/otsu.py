"""Otsu thresholds, many at once, and the LIDS binarisation of saliency maps.

The LIDS decoders (``pyflim``) binarise a saliency map the way
scikit-image does it: the map, scaled to ``[0, 255]``, is stored as uint8
(truncation), :func:`skimage.filters.threshold_otsu` gives a level ``t``
and the object is every pixel *strictly above* ``t``.  The functions here
compute that threshold for a whole batch of rows with one histogram each:

* :func:`otsu_levels` on uint8 levels equals ``threshold_otsu`` exactly:
  the same between-class variance, computed with the same arithmetic
  (float32 class weights, float64 class means), and ties go to the *first*
  maximum, i.e. the lowest level (``np.argmax``).  A row with one level
  only (a constant map) gets that level as threshold, so nothing lies
  above it: the object is empty.
* :func:`otsu_float` on floats uses ``threshold_otsu``'s 256 equal bins
  between the row's minimum and maximum (the ``np.histogram`` bin rule, bin
  centres as thresholds); it is what the vanilla decoder uses for its
  channel thresholds.
* :func:`count_binarised` counts TP/FP/FN/TN of binarised maps from two
  histograms (all pixels, object pixels) without forming the binary maps.
"""

from __future__ import annotations

import torch

__all__ = [
    "LEVELS",
    "binarise",
    "count_binarised",
    "level_histograms",
    "otsu_float",
    "otsu_from_histogram",
    "otsu_levels",
    "saliency_levels",
]

LEVELS = 256


def otsu_from_histogram(counts: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Index of the Otsu threshold bin of each histogram (scikit-image's arithmetic).

    The split after bin ``t`` is scored by ``w1[t] * w2[t + 1] * (m1[t] -
    m2[t + 1]) ** 2`` with ``w1``, ``w2`` the cumulative counts from below
    and from above (float32, as ``threshold_otsu`` casts its histogram) and
    ``m1``, ``m2`` the class means (float64).  Only splits with pixels on
    both sides count; the first maximum wins.

    Parameters
    ----------
    counts : Tensor of shape (R, L)
        Histograms (any number type; counts below 2**24 are exact).
    centres : Tensor of shape (R, L) or (L,)
        Value of each bin.

    Returns
    -------
    index : Tensor of shape (R,), int64
        ``t`` of the best split; for a histogram with one occupied bin (no
        split), that bin.
    """
    w = counts.to(torch.float32)
    cc = w.double() * centres.double()
    w1 = torch.cumsum(w, dim=1)
    w2 = torch.flip(torch.cumsum(torch.flip(w, [1]), dim=1), [1])
    m1 = torch.cumsum(cc, dim=1) / w1.double()
    m2 = torch.flip(torch.cumsum(torch.flip(cc, [1]), dim=1), [1]) / w2.double()
    score = (w1[:, :-1] * w2[:, 1:]).double() * (m1[:, :-1] - m2[:, 1:]) ** 2
    valid = (w1[:, :-1] > 0) & (w2[:, 1:] > 0)
    score = torch.where(valid, score, torch.full_like(score, -torch.inf))
    best = torch.argmax(score, dim=1)
    only = torch.argmax((w > 0).to(torch.uint8), dim=1)  # the occupied bin of a one-level row
    return torch.where(valid.any(dim=1), best, only)


def level_histograms(levels: torch.Tensor) -> torch.Tensor:
    """256-bin histograms of uint8 levels, one per row.

    Parameters
    ----------
    levels : Tensor of shape (R, P), uint8 or int64 in [0, 255]

    Returns
    -------
    hist : Tensor of shape (R, 256), int64
    """
    rows = levels.shape[0]
    flat = levels.long() + LEVELS * torch.arange(rows, device=levels.device)[:, None]
    return torch.bincount(flat.reshape(-1), minlength=rows * LEVELS).reshape(rows, LEVELS)


def otsu_levels(levels: torch.Tensor) -> torch.Tensor:
    """``skimage.filters.threshold_otsu`` of each row of uint8 levels.

    Parameters
    ----------
    levels : Tensor of shape (R, P), uint8

    Returns
    -------
    threshold : Tensor of shape (R,), int64
        The object is ``levels > threshold``; a constant row's threshold is
        its value (empty object).

    Examples
    --------
    >>> otsu_levels(torch.tensor([[0, 0, 10, 200, 210, 255]], dtype=torch.uint8)).tolist()
    [10]
    """
    hist = level_histograms(levels)
    return otsu_from_histogram(hist, torch.arange(LEVELS, device=levels.device))


def otsu_float(values: torch.Tensor, valid: torch.Tensor | None = None, nbins: int = LEVELS) -> torch.Tensor:
    """Otsu threshold of each row of floats (``threshold_otsu`` with ``nbins`` bins).

    Bins are ``nbins`` equal intervals between the row's minimum and maximum,
    assigned by the ``np.histogram`` rule (the last bin is closed); the
    threshold is the centre of the best split's lower bin.

    Parameters
    ----------
    values : Tensor of shape (R, P), floating
    valid : Tensor of shape (R, P), bool, optional
        Only these entries count (all by default); a row without any gets 0.
    nbins : int, optional

    Returns
    -------
    threshold : Tensor of shape (R,), dtype of ``values``
        A constant row's threshold is its value.
    """
    if valid is None:
        valid = torch.ones_like(values, dtype=torch.bool)
    x = values.double()
    lo = torch.where(valid, x, torch.full_like(x, torch.inf)).amin(dim=1)
    hi = torch.where(valid, x, torch.full_like(x, -torch.inf)).amax(dim=1)
    present = valid.any(dim=1)
    lo = torch.where(present, lo, torch.zeros_like(lo))
    hi = torch.where(present, hi, torch.zeros_like(hi))
    width = hi - lo
    flat = width == 0
    safe = torch.where(flat, torch.ones_like(width), width)
    step = safe / nbins
    # np.linspace(lo, hi, nbins + 1): k * step + lo, the last edge exactly hi
    k = torch.arange(nbins + 1, device=x.device, dtype=x.dtype)
    edges = k * step[:, None] + lo[:, None]
    edges[:, -1] = hi
    idx = (((x - lo[:, None]) / safe[:, None]) * nbins).floor().clamp(0, nbins - 1).long()
    idx = idx - (x < edges.gather(1, idx)).long()  # np.histogram's corrections at the edges
    idx = (idx + ((x >= edges.gather(1, idx + 1)) & (idx != nbins - 1)).long()).clamp(0, nbins - 1)
    counts = torch.zeros(x.shape[0], nbins, dtype=torch.float64, device=x.device)
    counts.scatter_add_(1, idx, valid.to(torch.float64))
    centres = (edges[:, :-1] + edges[:, 1:]) / 2
    t = centres.gather(1, otsu_from_histogram(counts, centres)[:, None])[:, 0]
    return torch.where(flat, lo, t).to(values.dtype)


def saliency_levels(saliency: torch.Tensor) -> torch.Tensor:
    """uint8 levels of saliency maps in [0, 1]: ``trunc(255 * s)`` (``astype(np.uint8)`` of ``255 s``).

    Parameters
    ----------
    saliency : Tensor of shape (...), floating in [0, 1]

    Returns
    -------
    levels : Tensor of shape (...), uint8
    """
    return (saliency * 255).clamp(0, 255).to(torch.uint8)


def binarise(saliency: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Object masks of saliency maps, the LIDS way: uint8 levels, Otsu, strictly above.

    Parameters
    ----------
    saliency : Tensor of shape (..., H, W), floating in [0, 1]

    Returns
    -------
    objects : Tensor of shape (..., H, W), bool
        ``levels > threshold``; empty for a constant map.
    threshold : Tensor of shape (...), int64
        The Otsu level of each map.
    """
    lead, (h, w) = saliency.shape[:-2], saliency.shape[-2:]
    levels = saliency_levels(saliency).reshape(-1, h * w)
    t = otsu_levels(levels)
    return (levels > t[:, None]).reshape(saliency.shape), t.reshape(lead)


def count_binarised(saliency: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Confusion counts of binarised saliency maps against ground truth.

    For each map the histogram of its levels over all pixels and over the
    object pixels gives the Otsu threshold and every count at once.

    Parameters
    ----------
    saliency : Tensor of shape (N, B, H, W), floating in [0, 1]
        ``B`` maps of each of ``N`` images.
    masks : Tensor of shape (N, H, W), bool

    Returns
    -------
    counts : Tensor of shape (B, N, 4), int64
        ``(TP, FP, FN, TN)`` of :func:`binarise`'s masks.
    """
    n, b, h, w = saliency.shape
    rows = n * b
    levels = saliency_levels(saliency).reshape(n, b, h * w).long()
    # one bincount for both histograms: bin 2 * level + 1 for object pixels, 2 * level otherwise
    key = levels.mul_(2).add_(masks.reshape(n, 1, h * w)).reshape(rows, h * w)
    key += 2 * LEVELS * torch.arange(rows, device=key.device)[:, None]
    split = torch.bincount(key.reshape(-1), minlength=rows * 2 * LEVELS).reshape(rows, LEVELS, 2)
    hist, hist_obj = split.sum(dim=2), split[..., 1]
    t = otsu_from_histogram(hist, torch.arange(LEVELS, device=saliency.device))
    above = torch.arange(LEVELS, device=saliency.device)[None] > t[:, None]
    pos = (hist * above).sum(dim=1)
    tp = (hist_obj * above).sum(dim=1)
    n_obj = hist_obj.sum(dim=1)
    fp, fn = pos - tp, n_obj - tp
    tn = h * w - tp - fp - fn
    return torch.stack([tp, fp, fn, tn], dim=-1).reshape(n, b, 4).transpose(0, 1)
