"""The explorer's advice layer and analysis panel: training images only, never a validation or test mask.

A mixin of :class:`~flimexplore.widgets.app.Explorer` (it uses the explorer's ``state``, views and guards);
only the explorer turns UI events into compute.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from flimexplore.analysis.advice import AdviceSettings, advise
from flimexplore.analysis.descriptors import DESCRIPTORS, position_descriptors
from flimexplore.errors import MarkerError

__all__ = ["AdviceMixin"]

Pair = tuple[int, int]


class AdviceMixin:
    """The explorer's advice layer and analysis panel (see the module docstring)."""

    def _update_advice(self, change: dict[str, Any]) -> None:
        """Advise the shown object marker's background (or the chosen background marker's object), when the layer is on.

        The advice probes its candidates (each fitted with several seeds and scored on the split's other
        marked images: training images only) and says how far it can be trusted; it runs in a background
        thread unless the explorer is synchronous.
        """
        s = self.state
        if not s.show_advice or s.result is None:
            return
        res = s.result
        cfg = res.config
        split = min(s.split, len(res.markers) - 1)
        if s.advice_for == "object":
            fixed = self._advice_background(split)
            where = dict(target="object", split=None, background=fixed)
        else:
            fixed = tuple(int(v) for v in res.markers[split].obj)
            where = dict(split=None, obj=fixed)
        key = (cfg.to_json(), s.advice_for, fixed)
        if s.advice is not None and self._advice_key == key:
            return
        self._advice_key = key
        s.advice = None
        s.status = f"ranking {s.advice_for} positions (advice: probing candidates on the training images)..."
        settings = AdviceSettings(dataset=cfg.dataset, image=cfg.image, radius=cfg.radius, top=s.advice_top, seed=cfg.seed,
                                  n_images=cfg.n_images, epochs=cfg.epochs, lr=cfg.lr, device=str(res.device),
                                  probe=self.advice_probe, **where)

        def work() -> None:
            advice = advise(settings, data=res.context.dataset)
            if self._advice_key != key:  # the settings moved on while this ran
                return
            s.advice = advice
            line = advice.reliability["line"] if advice.reliability else ""
            s.status = (f"advice: {len(advice.centres)} positions ranked in {advice.seconds:.1f} s from training images "
                        f"only; " + (line if advice.abstains else "click a ringed position to train and score it"))

        if self.sync:
            work()
        else:
            threading.Thread(target=self._guard_at("markers")(work), name="flimexplore-advice", daemon=True).start()

    def _advice_background(self, split: int) -> tuple[int, int]:
        """The background marker object advice is for: the selected marker's, yours, or the split's first."""
        s = self.state
        row = s.row(s.selected) if s.selected >= 0 else None
        if row is not None and row["split"] == split:
            return int(row["bg_row"]), int(row["bg_col"])
        if s.user_bg is not None:
            return int(s.user_bg[0]), int(s.user_bg[1])
        first = s.rows(split)
        if not first:
            raise MarkerError("object advice needs a background marker: select one on the heatmap, or place yours")
        return int(first[0]["bg_row"]), int(first[0]["bg_col"])

    def try_advice(self, k: int) -> None:
        """Train and score the ``k``-th advised position (0 = best) with the advice's fixed marker; rank it."""
        s = self.state
        if s.advice is None or not 0 <= k < len(s.advice.centres):
            raise MarkerError(f"there is no advised position {k + 1}")
        pos = tuple(int(v) for v in s.advice.centres[k])
        fixed = tuple(int(v) for v in s.advice.obj)
        with self._silenced():  # the advice is for its fixed marker: your own markers step aside
            s.user_markers = None
            if s.advice.settings.target == "object":
                s.user_bg = fixed
            else:
                s.user_obj = None
        if s.advice.settings.target == "object":
            s.user_obj = pos  # scores the pair through the single-model path
        else:
            s.user_bg = pos
        if s.user_score is not None:
            sc = s.user_score
            s.status = (f"advice #{k + 1} at {pos}: validation Dice {sc.dice:.3f}, rank {sc.rank} of {sc.n + 1} "
                        f"among the sampled markers ({sc.percentile:.0f}th percentile)")

    def _update_descriptors(self, change: dict[str, Any]) -> None:
        """Descriptors of every finished model, for the analysis panel (after a run, not on live chunks)."""
        s = self.state
        res = s.result
        if res is None or s.running:
            return
        if s.descriptors is not None and s.descriptors.get("_result") is res:
            return
        ctx = res.context
        rows = res.rows  # the markers are the same under every readout; the trained rows list each once
        table = {name: np.full(len(rows), np.nan) for name in DESCRIPTORS}
        for split, ms in enumerate(res.markers):
            pos = [i for i, r in enumerate(rows) if r["split"] == split]
            if not pos:
                continue
            centres = np.array([[rows[i]["bg_row"], rows[i]["bg_col"]] for i in pos], dtype=np.int64)
            values = position_descriptors(ctx.image, ctx.mask, ms.obj, centres, res.config.radius)
            for name in DESCRIPTORS:
                table[name][pos] = values[name]
        s.descriptors = table | {"_result": res}
