"""``flimexplore export``: one model of a study as a LIDS model folder and a PyTorch file."""

from __future__ import annotations

import argparse

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    s = sub.add_parser(
        "export",
        help="write one model of a study as a LIDS model folder (arch.json, convN-*.npy/txt) and model.pt",
    )
    s.add_argument("--out", required=True, help="the study folder (the --out of flimexplore study)")
    s.add_argument("--model", type=int, required=True, help="model id (the 'model' column of results.csv)")
    s.add_argument("dest", help="folder to write")


def run(args: argparse.Namespace) -> int:
    """Run ``export``; returns the exit status."""
    from flimexplore.export import export_model

    dest = export_model(args.out, args.model, args.dest)
    print(f"model {args.model} of {args.out}: wrote a LIDS model folder and model.pt into {dest}")
    return 0
