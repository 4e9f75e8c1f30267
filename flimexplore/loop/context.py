"""What every run of one loop shares, prepared once: the study context, the start markers, the views of the marked images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flimexplore.data import Dataset
from flimexplore.loop.config import LoopConfig
from flimexplore.loop.drawn import Marker
from flimexplore.loop.view import MarkedView
from flimexplore.markers import sample_markers
from flimexplore.study.context import StudyContext

__all__ = ["LoopContext"]


@dataclass(frozen=True, eq=False)
class LoopContext:
    """Everything the runs of one loop share, prepared once.

    Attributes
    ----------
    config : LoopConfig
        With the study's radius resolved (the dataset's when not given).
    study : StudyContext
        The data, the split and the validation/test images that score each step.
    view : MarkedView
        The marked images and their masks: all the policies may read.
    start : tuple of Marker
        The study's split-0 object marker and its first background marker.
    order : tuple of int
        Marked images in the order the user visits them (``study.image`` first).
    """

    config: LoopConfig
    study: StudyContext
    view: MarkedView
    start: tuple[Marker, Marker]
    order: tuple[int, ...]

    @classmethod
    def prepare(cls, config: LoopConfig, device: str = "auto", dataset: Dataset | None = None) -> LoopContext:
        """Load the data and place the two starting markers.

        The start is split 0 of ``flimexplore study`` with the same seed: its
        object marker and its first background marker (``bg_index`` 0), so
        step 0 of repeat 0 is the study's model 0.
        """
        config.validate()
        ctx = StudyContext(config.study, device, dataset=dataset)
        cfg = ctx.config
        resolved = config.replace(study=config.study.replace(radius=cfg.radius))
        ms = sample_markers(ctx.mask, 1, cfg.radius, np.random.default_rng([cfg.seed, cfg.image, 0]))
        start = (Marker(cfg.image, 1, int(ms.obj[0]), int(ms.obj[1]), "start"),
                 Marker(cfg.image, 0, int(ms.bg[0, 0]), int(ms.bg[0, 1]), "start"))
        n = len(ctx.split.marked)
        order = tuple((cfg.image + j) % n for j in range(n))
        return cls(resolved, ctx, MarkedView.from_split(ctx.dataset, ctx.split, str(ctx.device)), start, order)

    def image_for(self, n: int) -> int:
        """Marked image of the ``n``-th marker (1-based; the two starting markers are 1 and 2)."""
        after = self.config.next_image_after
        return self.order[0] if after is None else self.order[((n - 1) // after) % len(self.order)]

    @property
    def radius(self) -> int:
        return int(self.config.study.radius)
