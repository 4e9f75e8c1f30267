"""Exceptions raised by flimexplore for bad input.

Every error a user can cause by what they pass in (a wrong path, a mask
without object, a radius that does not fit, ...) is raised as a subclass of
:class:`FlimExploreError`, with a message that names the problem and, where
possible, what would work instead.  The command line prints the message on
one line and exits with status 2; the widgets show it in their panel.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DatasetError",
    "DeviceError",
    "FlimExploreDeprecationWarning",
    "FlimExploreError",
    "FlimExploreWarning",
    "MaskWarning",
    "MarkerError",
    "OutputError",
    "ResumeError",
    "UsageError",
]


class FlimExploreError(ValueError):
    """Base class of all errors caused by bad input to flimexplore."""


class ConfigError(FlimExploreError):
    """A study setting is of the wrong type or out of range (epochs, lr, splits, ...)."""


class DatasetError(FlimExploreError):
    """A dataset cannot be read or is not usable (paths, shapes, masks, values)."""


class MarkerError(FlimExploreError):
    """Markers cannot be sampled, read or placed as requested."""


class DeviceError(FlimExploreError):
    """The requested compute device is not available."""


class ResumeError(FlimExploreError):
    """An output folder holds a study whose settings differ from the request."""


class OutputError(FlimExploreError):
    """The output folder cannot be created, read, locked or written."""


class UsageError(FlimExploreError):
    """A command line that can be read more than one way (e.g. two study folders where one is read)."""


class FlimExploreWarning(UserWarning):
    """Base class of warnings about input that is usable but probably not what was meant.

    The command line prints each one as one line on stderr
    (``flimexplore: warning: ...``); in the test suite they are errors
    unless a test expects them.
    """


class MaskWarning(FlimExploreWarning):
    """Masks were read with a guess: lossy values thresholded, label values or a large object."""


class FlimExploreDeprecationWarning(FlimExploreWarning, FutureWarning):
    """A spelling that still works in this release and will be removed in the next one.

    A :class:`FutureWarning` too, so Python shows it by default: it is meant
    for the people who type the command, not only for developers.
    """
