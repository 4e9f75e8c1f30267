"""``flimexplore study``: one marker study on one marked image."""

from __future__ import annotations

import argparse

from flimexplore.cli._common import add_study_arguments, config_from_args, drain, readout_lines
from flimexplore.cli._grammar import add_out

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``study`` subcommand."""
    s = sub.add_parser("study", help="run a marker study on one marked image")
    add_study_arguments(s)
    s.add_argument(
        "--scale", choices=("fixed", "study"), default="fixed",
        help="colour range of the heatmap PNGs: fixed 0-1 validation Dice, or the study's own min-max (default: %(default)s)",
    )
    add_out(s, "results.csv, summary.json, the heatmap PNGs, config.json and models/", resumes=True)


def run(args: argparse.Namespace) -> int:
    """Run ``study``; returns the exit status."""
    config = config_from_args(args)

    from flimexplore.study.run import run_study

    gen = run_study(config, args.out, device=args.device, engine=args.engine, model_chunk=args.chunk, memory_mb=args.memory_mb,
                    precision=args.precision, heatmap_scale=args.scale)
    result, _, _ = drain(gen, args.out, args.quiet)
    if result is None:
        return 130
    s = result.summary()
    if s["n_models"]:
        fits = f" (mean of {config.repeats} fits each)" if config.repeats > 1 else ""
        print(
            f"{s['n_models']} models{fits}, validation Dice {s['val_dice_min']:.3f}-{s['val_dice_max']:.3f}, "
            f"test Dice {s['test_dice_min']:.3f}-{s['test_dice_max']:.3f} on {s['device']}; wrote {args.out}"
        )
        for line in readout_lines(s):
            print(line)
        for split in s.get("repeats", {}).get("splits", []):
            if "verdict" in split:
                print(f"object marker {split['split']}: {split['verdict']}" if config.vary != "object"
                      else f"background marker {split['split']}: {split['verdict']}")
    else:
        print(f"0 models on {s['device']}; wrote {args.out}")
    return 0
