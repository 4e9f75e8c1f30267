"""``flimexplore export``: one model of a study as a LIDS model folder and a PyTorch file.

``flimexplore export STUDY_DIR --model N --out DIR``.  The older spelling,
``export --out STUDY_DIR --model N DEST``, still works in this release with a
deprecation warning; which folder is the study is told by which one holds a
``config.json``.
"""

from __future__ import annotations

import argparse
import warnings

from flimexplore.cli._grammar import add_out, add_study_dir, is_study_folder, set_usage
from flimexplore.errors import FlimExploreDeprecationWarning, UsageError

__all__ = ["register", "run", "study_and_dest"]

NEW = "flimexplore export STUDY --model N --out DEST"
DEPRECATED = (
    "'export --out STUDY DEST' is deprecated and will be removed in the next release; "
    f"use '{NEW}'"
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    s = sub.add_parser(
        "export",
        help="write one model of a study as a LIDS model folder (arch.json, convN-*.npy/txt) and model.pt",
        description=(
            "Write model N of the study in STUDY_DIR as a LIDS model folder (arch.json, convN-kernels.npy, "
            "convN-mean.txt, convN-stdev.txt, decision.json) and a PyTorch model.pt into --out. "
            "The older spelling 'export --out STUDY_DIR --model N DEST' still works in this release, with a warning."
        ),
    )
    add_study_dir(s, "config.json and models/")
    s.add_argument("--model", type=int, required=True, metavar="N", help="model id (the 'model' column of results.csv)")
    add_out(s, "the LIDS model files and model.pt")
    set_usage(s, "STUDY_DIR --model N --out DIR")


def study_and_dest(positional: str, out: str) -> tuple[str, str]:
    """Which folder is the study and which the destination, in either spelling.

    Parameters
    ----------
    positional : str
        The positional argument: the study (``export STUDY --out DEST``), or the
        destination in the deprecated ``export --out STUDY DEST``.
    out : str
        The ``--out`` argument.

    Returns
    -------
    (study, dest)
        The folder to read and the folder to write.

    Raises
    ------
    UsageError
        When both folders are studies, so that either could be meant.

    Warns
    -----
    FlimExploreDeprecationWarning
        When ``--out`` is the study and the positional the destination (the old spelling).
    """
    positional_is_study, out_is_study = is_study_folder(positional), is_study_folder(out)
    if positional_is_study and out_is_study:
        raise UsageError(
            f"both {positional} and --out {out} are study folders, so it is unclear which one to read; "
            f"export reads STUDY and writes into --out, which must not be a study: {NEW}"
        )
    if out_is_study:  # and the positional is not: the deprecated spelling
        warnings.warn(DEPRECATED, FlimExploreDeprecationWarning, stacklevel=2)
        return out, positional
    return positional, out  # a positional that is no study is refused by export_model, naming it


def run(args: argparse.Namespace) -> int:
    """Run ``export``; returns the exit status."""
    study, dest = study_and_dest(args.study, args.out)

    from flimexplore.export import export_model

    written = export_model(study, args.model, dest)
    print(f"model {args.model} of {study}: wrote a LIDS model folder and model.pt into {written}")
    return 0
