"""``flimexplore analyse``: which descriptors of a marker pair predict its Dice, on a finished study."""

from __future__ import annotations

import argparse

from flimexplore.cli._common import drain
from flimexplore.cli._grammar import add_out, add_study_dir, set_usage

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``analyse`` subcommand."""
    s = sub.add_parser(
        "analyse",
        help="correlate marker-pair descriptors with Dice on a finished study (writes analysis.json and analysis.png)",
        description=(
            "Recompute the descriptors of every model of a finished study folder, then Spearman's rho of each "
            "with the validation Dice (all models and per split) with seeded bootstrap 95 % intervals, and a "
            "plain-words verdict on the paper's RQ2 claims (Fig. 4b, Fig. 4c) and, for --vary object studies, "
            "on object markers at the object border. The Fig. 4c measure reads validation masks (analysis only). "
            "A study run with --decoders or --attention also gets each readout's attention scores against Dice "
            "and the agreement between readouts (rho with intervals, top-5 overlap)."
        ),
    )
    add_study_dir(s, "config.json, results.csv and models/ of a finished study")
    add_out(s, "analysis.json, analysis.png and descriptors.csv")
    s.add_argument("--n-boot", type=int, default=2000, metavar="N", help="bootstrap resamples per interval (default: %(default)s)")
    s.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the bootstrap and pixel samples (default: %(default)s)")
    s.add_argument("--max-val-images", type=int, default=None, metavar="N",
                   help="use only the first N validation images for Fig. 4c (default: all)")
    s.add_argument("--device", default="auto", metavar="D", help="auto, cpu or cuda (default: %(default)s)")
    s.add_argument("--quiet", action="store_true", help="no progress on stderr")
    set_usage(s, "STUDY_DIR --out DIR", "[--n-boot N] [--seed S] [--max-val-images N] [--device D] [--quiet]")


def run(args: argparse.Namespace) -> int:
    """Run ``analyse``; returns the exit status."""
    from flimexplore.errors import ConfigError

    if args.n_boot < 10:
        raise ConfigError(f"--n-boot must be at least 10, got {args.n_boot}")
    if args.max_val_images is not None and args.max_val_images < 1:
        raise ConfigError(f"--max-val-images must be at least 1, got {args.max_val_images}")

    from flimexplore.analysis.analyse import iter_analyse

    gen = iter_analyse(args.study, args.out, device=args.device, n_boot=args.n_boot, seed=args.seed, max_val_images=args.max_val_images)
    report, _, _ = drain(gen, None, args.quiet)
    for name, claim in report["claims"].items():
        print(f"{name}: {claim['verdict']} — {claim['says']}")
    readouts = report.get("readouts")
    if readouts:
        for said in readouts["verdicts"].values():
            print(f"attention: {said['says']}")
        for a in readouts["agreement"]:
            if a["a"] == "trained" and a["part"] == "val" and a["split"] is None:
                rho = "n/a" if a["rho"] is None else f"{a['rho']:+.2f}" + (
                    "" if a["lo"] is None else f" [{a['lo']:+.2f}, {a['hi']:+.2f}]")
                top = "n/a" if a["top5_overlap"] is None else f"{a['top5_overlap']:.1f}"
                print(f"agreement of {a['b']} with trained (validation Dice): rho {rho}, top-5 overlap {top}")
    found = ", ".join(report["correlated_with_dice"]) or "none"
    print(f"descriptors correlated with Dice (95 % CI excludes 0): {found}; wrote {args.out}")
    return 0
