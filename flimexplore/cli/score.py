"""``flimexplore score``: train and score given marker pairs, or a user's seeds files, exactly as a study does."""

from __future__ import annotations

import argparse

from flimexplore.cli._common import add_study_arguments, config_from_args, drain, readout_lines
from flimexplore.cli._grammar import add_out
from flimexplore.errors import ConfigError

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``score`` subcommand."""
    s = sub.add_parser(
        "score",
        help="score given marker pairs (CSV or a -seeds.txt), or your seeds files of several marked images, like a study",
        description=(
            "Train and score the marker pairs of --pairs FILE on the marked image, exactly as a study does, and write "
            "results.csv (a study's columns), summary.json and heatmaps into --out. Pairs that share the "
            "object marker (the background marker with --vary object) form one split; each model's seed is "
            "a study's (seed, image, split, index), so scoring a study's results.csv reproduces its Dice. "
            "Or train ONE model from the markers you drew, any strokes or disks per class, on one or several "
            "of the split's marked images: --seeds FILE --image K (repeat both, one file per image) or --seeds DIR "
            "(every <stem>-seeds.txt in it, e.g. a LIDS folder's markers/). As FLIM does, the patches and the "
            "marker-based normalisation come from every marked image and the decision layer trains on every "
            "marked image's mask. Validation and test images are never marked: a file for one is refused."
        ),
    )
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--pairs", metavar="FILE", help="CSV of obj_row,obj_col,bg_row,bg_col (header optional) or a "
                      "-seeds.txt of the marked image (any strokes per class)")
    what.add_argument("--seeds", action="append", metavar="FILE|DIR",
                      help="a LIDS <stem>-seeds.txt of one marked image (repeat it, with --image K per file), or a "
                      "folder of them; all train one model")
    add_study_arguments(s, images=True)
    add_out(s, "results.csv, summary.json, the heatmap PNGs, config.json and models/ (as a study's)", resumes=True)


def run(args: argparse.Namespace) -> int:
    """Run ``score``; returns the exit status."""
    images = args.image
    if args.pairs is not None and images is not None and len(images) > 1:
        raise ConfigError("--pairs scores markers of one marked image: give --image once (several are for --seeds)")
    config = config_from_args(args)
    options = dict(device=args.device, engine=args.engine, model_chunk=args.chunk, memory_mb=args.memory_mb)
    if args.seeds is not None:
        from flimexplore.study.score_seeds import score_seeds

        gen = score_seeds(config, args.seeds, args.out, images=images, **options)
    else:
        from flimexplore.study.score import read_pairs, score_pairs

        gen = score_pairs(config, read_pairs(args.pairs), args.out, **options)
    result, _, _ = drain(gen, args.out, args.quiet)
    if result is None:
        return 130
    s = result.summary()
    what = "pairs" if args.pairs is not None else "models (your markers)"
    print(
        f"{s['n_models']} {what} scored, validation Dice {s['val_dice_min']:.3f}-{s['val_dice_max']:.3f}, "
        f"test Dice {s['test_dice_min']:.3f}-{s['test_dice_max']:.3f} on {s['device']}; wrote {args.out}"
    )
    for line in readout_lines(s):
        print(line)
    return 0
