"""What the robot user may look at: the split's marked images and their own masks, nothing else.

:class:`MarkedView` reads ``dataset.images`` and ``dataset.masks`` at the
split's marked (training) indices only.  The next-marker policies receive a
view, never the dataset, so validation and test masks cannot influence where
a marker goes (``tests/test_loop_policies.py`` hands them a dataset whose
other masks raise when read).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from flimexplore.data import Dataset, Split

__all__ = ["MarkedView"]


@dataclass(frozen=True, eq=False)
class MarkedView:
    """The marked images of a split, with their masks, for the policies and their probes.

    Attributes
    ----------
    images : tuple of ndarray of shape (H, W, 3), float in [0, 1]
        Marked image ``k`` is ``images[k]``.
    masks : tuple of ndarray of shape (H, W), bool
        Their own ground truth (the user sees the image; the robot user is given its mask).
    stems : tuple of str
    device : str
        Where probe models are trained.
    """

    images: tuple[NDArray[np.floating], ...]
    masks: tuple[NDArray[np.bool_], ...]
    stems: tuple[str, ...]
    device: str = "cpu"
    _groups: dict[int, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_split(cls, dataset: Dataset, split: Split, device: str = "cpu") -> MarkedView:
        """Read the marked images of ``split`` (and no other image's mask) from ``dataset``."""
        idx = tuple(split.marked)
        return cls(
            tuple(np.asarray(dataset.images[i]) for i in idx), tuple(np.asarray(dataset.masks[i], bool) for i in idx),
            tuple(dataset.stems[i] for i in idx), str(device),
        )

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shapes(self) -> dict[int, tuple[int, int]]:
        """``(H, W)`` of each marked image, by marked-image number."""
        return {k: (int(m.shape[0]), int(m.shape[1])) for k, m in enumerate(self.masks)}

    def group(self, k: int) -> Any:
        """Marked image ``k`` as an engine :class:`~flimexplore.engine.batched.ImageGroup` (built once)."""
        if k not in self._groups:
            from flimexplore.engine.batched import prepare_images, resolve_device

            self._groups[k] = prepare_images([self.images[k]], [self.masks[k]], resolve_device(self.device))[0]
        return self._groups[k]

    def groups(self, ks: Sequence[int]) -> list[Any]:
        return [self.group(k) for k in ks]
