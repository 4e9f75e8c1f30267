"""What a finished (or stopped) loop produced: every run's record, its curves and its markers-needed summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from flimexplore.loop.config import LoopConfig
from flimexplore.loop.context import LoopContext
from flimexplore.loop.noc import summarise

__all__ = ["LoopResult"]


@dataclass
class LoopResult:
    """What a finished (or stopped) loop produced.

    Attributes
    ----------
    config : LoopConfig
    runs : dict of (str, int) to dict
        Each finished run's record (:func:`run_one`), keyed by (policy, repeat).
    complete : bool
    elapsed_s : float
    context : LoopContext
    """

    config: LoopConfig
    runs: dict[tuple[str, int], dict[str, Any]]
    complete: bool
    elapsed_s: float
    context: LoopContext

    def keys(self) -> list[tuple[str, int]]:
        """Finished runs in the config's policy order, then by repeat."""
        order = {p: i for i, p in enumerate(self.config.policies)}
        return sorted((k for k in self.runs if k[0] in order and k[1] < self.config.repeats), key=lambda k: (order[k[0]], k[1]))

    def curve_rows(self) -> list[dict[str, Any]]:
        """Rows of ``curve.csv``: ``policy, repeat, step, n_markers, marker_pixels, val_dice, test_dice``."""
        return [{"policy": p, "repeat": r} | {k: s[k] for k in ("step", "n_markers", "marker_pixels", "val_dice", "test_dice")}
                for p, r in self.keys() for s in self.runs[(p, r)]["steps"]]

    def curves(self, policy: str, part: str = "val_dice") -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Each repeat's curve of one policy: ``repeat -> (n_markers, dice)``."""
        out = {}
        for p, r in self.keys():
            if p == policy:
                steps = self.runs[(p, r)]["steps"]
                out[r] = (np.array([s["n_markers"] for s in steps]), np.array([s[part] for s in steps]))
        return out

    def summary(self) -> dict[str, Any]:
        """Per policy: markers needed at each target (NoC) and the curve area, over repeats; seconds per step."""
        cfg = self.config
        policies = {}
        for p in cfg.policies:
            curves = self.curves(p)
            if not curves:
                continue
            steps = [s for (q, _), run in self.runs.items() if q == p for s in run["steps"]]
            placed = [s["policy_s"] for s in steps if s["step"] < cfg.max_markers - 2]
            policies[p] = summarise(curves, cfg.targets, cfg.max_markers) | {
                "test_area": summarise(self.curves(p, "test_dice"), cfg.targets, cfg.max_markers)["area"],
                "refit_s_mean": round(float(np.mean([s["refit_s"] for s in steps])), 4),
                "policy_s_mean": round(float(np.mean(placed)), 4) if placed else 0.0,
            }
        ctx = self.context.study
        return {
            "complete": self.complete, "config": cfg.to_dict(), "device": str(ctx.device),
            "dataset": ctx.dataset.name, "marked_image": ctx.stem, "radius": self.context.radius,
            "n_val_images": len(ctx.split.val), "n_test_images": len(ctx.split.test),
            "noc": "markers (the 2 starting ones included) at the first step whose validation Dice reaches the target; "
                   f"{cfg.max_markers + 1} = not reached within {cfg.max_markers}; mean and Student t 95 % interval over repeats",
            "area": "mean height of the validation Dice vs markers curve (trapezoids, 2 to max_markers markers)",
            "seconds": "refit_s: training and scoring one step's model; policy_s: choosing one marker (timings "
                       "of the run that computed it)",
            "policies": policies,
        }
