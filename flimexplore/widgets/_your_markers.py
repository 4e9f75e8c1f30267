"""Your own markers in the explorer: placed disks, freehand strokes, scoring them, LIDS seeds files.

A mixin of :class:`~flimexplore.widgets.app.Explorer` (it uses the explorer's ``state``, views and guards);
only the explorer turns UI events into compute.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from flimexplore.data import read_seeds, write_seeds
from flimexplore.data.seeds import check_seeds_shape
from flimexplore.errors import MarkerError
from flimexplore.markers import marker_pixels, stroke_pixels
from flimexplore.widgets.heatmap import DRAWING
from flimexplore.widgets.inspect import (
    pair_from_markers,
    pair_markers,
    score_markers,
    score_pair,
)
from flimexplore.widgets.state import USER_MODEL

__all__ = ["MarkersMixin"]

Pair = tuple[int, int]


class MarkersMixin:
    """Your own markers in the explorer (see the module docstring)."""

    def _pair(self) -> tuple[Pair | None, Pair | None]:
        """Your markers, completed by the shown object marker and the selected background marker."""
        s, res = self.state, self.state.result
        obj, bg = s.user_obj, s.user_bg
        if res is not None and obj is None:
            obj = tuple(int(v) for v in res.markers[min(s.split, len(res.markers) - 1)].obj)
        row = s.row(s.selected)
        if bg is None and row is not None:
            bg = (row["bg_row"], row["bg_col"])
        return obj, bg

    def _radius(self) -> int:
        """Radius of your disk markers: the shown study's (as scoring uses), else the setting."""
        s = self.state
        return int(s.result.config.radius) if s.result is not None else int(s.radius)

    def _has_user_markers(self) -> bool:
        s = self.state
        return s.user_obj is not None or s.user_bg is not None or s.user_markers is not None

    def _on_placed(self, change: dict[str, Any]) -> None:
        """You placed a disk marker: with whole markers (strokes, scribbles) it replaces that class's pixels."""
        s = self.state
        if self._quiet:
            return
        if s.user_markers is not None:
            label = 1 if change["name"] == "user_obj" else 0
            keep = s.user_markers[s.user_markers[:, 2] != label]
            parts = [keep]
            if change["new"] is not None:
                disk = marker_pixels(np.asarray(change["new"]), self._radius(), self._shape())
                parts.append(np.column_stack([disk, np.full(len(disk), label)]))
            with self._silenced():
                s.user_markers = np.concatenate(parts).astype(np.int64) if sum(map(len, parts)) else None
        self._score_user()

    def _score_user(self) -> None:
        """Score your markers: a disk pair, or whole markers (strokes, scribbles) trained pixel by pixel."""
        s = self.state
        if self._quiet:
            return
        s.user_score = None
        s.next_marker, s.next_text = None, ""  # your markers changed: an earlier suggestion is out of date
        if s.selected == USER_MODEL:
            s.selected = -1
        if s.user_markers is not None:
            self._score_whole()
            return
        obj, bg = self._pair()
        if s.result is None or obj is None or bg is None:
            s.status = "run a study, then place a background marker (or select one) to score your pair"
            return
        s.status = "training your marker pair..."
        s.user_score = score_pair(s.result, obj, bg, s.split)
        self._record(pair_markers(obj, bg, self._radius(), self._shape()))
        if s.selected == USER_MODEL:
            self._on_selected({"name": "val_image"})
        s.error = ""
        s.status = f"your pair: Dice {s.user_score.dice:.3f}, rank {s.user_score.rank} of {s.user_score.n + 1}"

    def _whole_markers(self) -> np.ndarray | None:
        """Your whole markers, a missing class completed as for a pair (shown object marker, selected background)."""
        s = self.state
        if s.user_markers is None:
            return None
        m = s.user_markers
        obj, bg = self._pair() if s.result is not None else (None, None)
        parts = [m]
        if not (m[:, 2] == 1).any():
            if obj is None:
                return None
            parts.append(pair_markers(obj, None, self._radius(), self._shape()))
        if not (m[:, 2] == 0).any():
            if bg is None:
                return None
            parts.append(pair_markers(None, bg, self._radius(), self._shape()))
        return np.concatenate(parts).astype(np.int64)

    def _score_whole(self) -> None:
        s = self.state
        markers = self._whole_markers()
        if s.result is None or markers is None:
            s.status = ("your strokes are kept; " + ("run a study to score them" if s.result is None else
                        "draw (or place) the missing class, or select a background marker, to score them"))
            return
        s.status = "training your markers..."
        s.user_score = score_markers(s.result, markers, s.split)
        self._record(markers)
        if s.selected == USER_MODEL:
            self._on_selected({"name": "val_image"})
        mask = s.result.context.mask
        obj, bg = markers[markers[:, 2] == 1], markers[markers[:, 2] == 0]
        wrong = int((~mask[obj[:, 0], obj[:, 1]]).sum()) + int(mask[bg[:, 0], bg[:, 1]].sum())
        s.error = ""
        s.status = (f"your markers ({len(obj)} object and {len(bg)} background pixels, scored whole): "
                    f"Dice {s.user_score.dice:.3f}, rank {s.user_score.rank} of {s.user_score.n + 1}"
                    + (f"; note: {wrong} of their pixels lie on the other class of the marked image's mask" if wrong
                       else ""))

    def add_stroke(self, points: Any, kind: str | None = None, radius: int | None = None) -> None:
        """Add a freehand stroke to your markers and score them whole.

        Parameters
        ----------
        points : array_like of shape (K, 2)
            ``(row, col)`` of the stroke in image coordinates, in drawing order (the heatmap sends
            what you drag in a draw mode).
        kind : {"object", "background"}, optional
            Default: the draw mode's class.
        radius : int, optional
            Brush radius (default ``state.stroke_radius``).

        Your earlier disks and strokes are kept (a pixel takes the class of its latest stroke); a class
        with no stroke yet is completed by the shown object marker or the selected background marker.
        """
        s = self.state
        kind = kind or DRAWING.get(s.click_mode)
        if kind not in ("object", "background"):
            raise MarkerError(f"a stroke marks 'object' or 'background', got {kind!r}")
        shape = self._shape()
        pixels, outside = stroke_pixels(points, s.stroke_radius if radius is None else int(radius), shape)
        label = 1 if kind == "object" else 0
        if s.user_markers is not None:
            base = s.user_markers
        elif s.user_obj is not None or s.user_bg is not None:
            base = pair_markers(s.user_obj, s.user_bg, self._radius(), shape)
        else:
            base = np.zeros((0, 3), np.int64)
        taken = np.zeros(shape, bool)
        taken[pixels[:, 0], pixels[:, 1]] = True
        base = base[~taken[base[:, 0], base[:, 1]]]
        merged = np.concatenate([base, np.column_stack([pixels, np.full(len(pixels), label)])]).astype(np.int64)
        obj, bg = pair_from_markers(merged, self._radius(), shape)
        with self._silenced():
            s.user_markers = merged
            s.user_obj, s.user_bg = obj, bg
        self._score_user()
        if outside:
            s.status += f" ({outside} stroke points off the image were dropped)"

    def _shape(self) -> tuple[int, int]:
        image = self.state.result.context.image if self.state.result is not None else self.state.preview
        if image is None:
            raise MarkerError("no marked image is loaded")
        return int(image.shape[0]), int(image.shape[1])

    def _path(self, path: str | Path | None) -> Path:
        s = self.state
        if path is None and s.seeds_path.strip():
            path = s.seeds_path.strip()
        if path is None:
            stem = s.result.context.stem if s.result is not None else "markers"
            path = f"{stem}-seeds.txt"
        return Path(path).expanduser()

    def save_seeds(self, path: str | Path | None = None) -> Path:
        """Save your markers (completed as for scoring) in a LIDS ``-seeds.txt`` file: disks, or every stroke pixel."""
        target = self._path(path)
        whole = self._whole_markers()
        if whole is None and self.state.user_markers is not None:
            whole = self.state.user_markers
        if whole is None:
            obj, bg = self._pair()
            whole = pair_markers(obj, bg, self._radius(), self._shape())
        write_seeds(target, whole, self._shape())
        self.state.seeds_path = str(target)
        self.state.status = f"saved markers to {target}"
        return target

    def load_seeds(self, path: str | Path | None = None) -> None:
        """Load your markers from a LIDS ``-seeds.txt`` file and score them.

        One disk per label is shown and scored as a marker pair; other markers
        (scribbles, several strokes) are scored whole and drawn pixel by pixel
        on the heatmap; you can add freehand strokes to them.
        """
        target = self._path(path)
        markers, shape = read_seeds(target, image_shape=self._shape())
        s = self.state
        if s.result is not None:
            check_seeds_shape(target, markers, shape, s.result.context.mask)
        obj, bg = pair_from_markers(markers, self._radius(), shape)
        whole = not _same_rows(markers, pair_markers(obj, bg, self._radius(), shape))
        with self._silenced():
            s.user_obj, s.user_bg = obj, bg
            s.user_markers = np.asarray(markers, np.int64) if whole else None
        s.seeds_path = str(target)
        self._score_user()

    def clear_markers(self) -> None:
        """Remove your markers, their score, the suggested next marker and the Dice-against-markers plot."""
        with self._silenced():
            self.state.user_obj = self.state.user_bg = self.state.user_score = self.state.user_markers = None
            self.state.next_marker, self.state.next_text, self.state.loop_history = None, "", ()
            if self.state.selected == USER_MODEL:
                self.state.selected = -1
        self.state.status = "your markers cleared"


def _same_rows(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two seeds arrays hold the same rows, in any order."""
    return a.shape == b.shape and np.array_equal(np.unique(a, axis=0), np.unique(b, axis=0))
