"""``flimexplore score``: train and score given marker pairs exactly as a study does."""

from __future__ import annotations

import argparse

from flimexplore.cli._common import add_study_arguments, config_from_args, drain, readout_lines
from flimexplore.cli._grammar import add_out

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``score`` subcommand."""
    s = sub.add_parser(
        "score",
        help="score given marker pairs (CSV obj_row,obj_col,bg_row,bg_col, or a LIDS -seeds.txt) like a study",
        description=(
            "Train and score the marker pairs of FILE on the marked image, exactly as a study does, and write "
            "results.csv (a study's columns), summary.json and heatmaps into --out. Pairs that share the "
            "object marker (the background marker with --vary object) form one split; each model's seed is "
            "a study's (seed, image, split, index), so scoring a study's results.csv reproduces its Dice."
        ),
    )
    s.add_argument("--pairs", required=True, metavar="FILE", help="CSV of obj_row,obj_col,bg_row,bg_col (header optional) or a -seeds.txt")
    add_study_arguments(s)
    add_out(s, "results.csv, summary.json, the heatmap PNGs, config.json and models/ (as a study's)", resumes=True)


def run(args: argparse.Namespace) -> int:
    """Run ``score``; returns the exit status."""
    config = config_from_args(args)

    from flimexplore.study.score import read_pairs, score_pairs

    pairs = read_pairs(args.pairs)
    gen = score_pairs(
        config, pairs, args.out, device=args.device, engine=args.engine, model_chunk=args.chunk, memory_mb=args.memory_mb
    )
    result, _, _ = drain(gen, args.out, args.quiet)
    if result is None:
        return 130
    s = result.summary()
    print(
        f"{s['n_models']} pairs scored, validation Dice {s['val_dice_min']:.3f}-{s['val_dice_max']:.3f}, "
        f"test Dice {s['test_dice_min']:.3f}-{s['test_dice_max']:.3f} on {s['device']}; wrote {args.out}"
    )
    for line in readout_lines(s):
        print(line)
    return 0
