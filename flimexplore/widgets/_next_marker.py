"""The annotation loop in the explorer: where your next marker should go (the marked image and its own mask only).

A mixin of :class:`~flimexplore.widgets.app.Explorer` (it uses the explorer's ``state``, views and guards);
only the explorer turns UI events into compute.
"""

from __future__ import annotations

import numpy as np

from flimexplore.errors import MarkerError
from flimexplore.loop.drawn import Marker, count_markers
from flimexplore.loop.fit import FitSettings
from flimexplore.loop.user import add_marker, suggest_next
from flimexplore.loop.view import MarkedView
from flimexplore.study.run import model_seed
from flimexplore.widgets.inspect import (
    USER_BG_INDEX,
    pair_from_markers,
    pair_markers,
)

__all__ = ["NextMarkerMixin"]

Pair = tuple[int, int]


class NextMarkerMixin:
    """The annotation loop in the explorer (see the module docstring)."""

    def _record(self, markers: np.ndarray) -> None:
        """Add ``(markers drawn, validation Dice)`` of the scoring that just finished to the loop plot."""
        s = self.state
        if s.user_score is not None:
            s.loop_history = (*s.loop_history, (count_markers(markers, self._shape()), float(s.user_score.dice)))

    def _current_rows(self) -> np.ndarray:
        """Your markers as seeds rows, completed as for scoring (a pair's disks, or whole strokes)."""
        s = self.state
        if s.result is None:
            raise MarkerError("run a study first: the next marker is advised on its marked image")
        whole = self._whole_markers()
        if whole is not None:
            return whole
        obj, bg = self._pair()
        if obj is None or bg is None:
            raise MarkerError("place or draw your markers (or select a background marker) first: the next marker "
                              "is advised from the markers drawn so far")
        return pair_markers(obj, bg, self._radius(), self._shape())

    def _marked_view(self) -> MarkedView:
        """The shown study's marked images and their masks (all a policy may read), built once per study."""
        res = self.state.result
        if self._loop_view is None or self._loop_view[0] is not res:
            self._loop_view = (res, MarkedView.from_split(res.context.dataset, res.context.split, str(res.device)))
        return self._loop_view[1]

    def advise_next(self, policy: str | None = None) -> Marker:
        """Suggest where your next marker should go (``state.next_marker``), given the markers drawn so far.

        Parameters
        ----------
        policy : {"advised", "error"}, optional
            Default: ``state.next_policy``.  ``advised`` probes the best candidates of both classes
            (:func:`flimexplore.loop.advised.advise_next`); ``error`` takes the centre of the largest error
            region of your markers' model on the marked image (:func:`flimexplore.loop.clicker.error_click`).
            Both read the marked image and its own mask only, and train your markers' model as scoring does
            (its seed), used at its last epoch (no validation image chose it).
        """
        s = self.state
        if policy is not None:
            s.next_policy = policy
        rows = self._current_rows()
        cfg, radius = s.result.config, self._radius()
        s.status = f"finding your next marker ({s.next_policy})..."
        fit = FitSettings(model_seed(cfg.seed, cfg.image, s.split, USER_BG_INDEX + 1), cfg.flim(), cfg.epochs, cfg.lr)
        found = suggest_next(self._marked_view(), rows, cfg.image, radius, fit, s.next_policy)
        m = found.marker
        what = "an object" if m.label == 1 else "a background"
        s.next_marker = m
        s.next_text = (f"next: {what} marker at (row {m.row}, col {m.col}), {found.why} ({found.seconds:.1f} s; the "
                       f"marked image and its own mask only). Accept adds a disk of radius {radius} and scores your markers.")
        s.error = ""
        s.status = f"next marker ({s.next_policy}): {what} marker at ({m.row}, {m.col}) in {found.seconds:.1f} s"
        return m

    def accept_next(self) -> None:
        """Add the suggested next marker to your markers (a disk of the study's radius) and score them."""
        s = self.state
        m = s.next_marker
        if m is None:
            raise MarkerError("press 'advise next' first: there is no suggested marker to accept")
        shape, radius = self._shape(), self._radius()
        merged = add_marker(self._current_rows(), m, radius, shape)
        obj, bg = pair_from_markers(merged, radius, shape)
        with self._silenced():
            s.user_markers = merged
            s.user_obj, s.user_bg = obj, bg
        self._score_user()
        what = "object" if m.label == 1 else "background"
        s.status = f"accepted the {what} marker at ({m.row}, {m.col}); " + s.status
