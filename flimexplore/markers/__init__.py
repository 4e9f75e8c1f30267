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

The package holds one concern per module: :mod:`~flimexplore.markers.sets`
(what a split's markers are), :mod:`~flimexplore.markers.geometry` (disk and
stroke pixels), :mod:`~flimexplore.markers.sampling` (the paper's
over-sampling) and :mod:`~flimexplore.markers.validation` (checks of given
markers).  Every public name is importable from ``flimexplore.markers``.
"""

from flimexplore.markers.geometry import disk_offsets, marker_pixels, marker_union, stroke_pixels
from flimexplore.markers.sampling import (
    MARGIN_FACTOR,
    admissible_centres,
    sample_marker_groups,
    sample_markers,
    sample_object_markers,
)
from flimexplore.markers.sets import MarkerGroups, MarkerPixels, MarkerSet, ObjectMarkerSet
from flimexplore.markers.validation import validate_markers

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
