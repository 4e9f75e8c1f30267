"""The one grammar of every ``flimexplore`` verb: what it reads is positional, what it writes is ``--out``.

A study folder that a verb reads is its positional ``STUDY_DIR``; ``--out DIR``
is always, and only, the folder a verb writes into.  The helpers here add
those two arguments with one wording for every verb, so that each
``flimexplore VERB --help`` reads the same way.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["RULE", "add_out", "add_study_dir", "is_study_folder", "set_usage"]

RULE = (
    "Every verb that writes files writes them into --out DIR (created if missing); "
    "a study folder that a verb reads is its positional STUDY_DIR, "
    "e.g. 'flimexplore analyse STUDY_DIR --out DIR'. "
    "Run 'flimexplore VERB --help' for a verb's options."
)


def add_out(s: argparse.ArgumentParser, written: str, resumes: bool = False) -> None:
    """Add the required ``--out DIR``, the folder the verb writes into.

    Parameters
    ----------
    s : argparse.ArgumentParser
        The verb's parser.
    written : str
        What the verb writes there, e.g. ``"advice.csv, advice.json and advice.png"``.
    resumes : bool
        Whether rerunning the same command resumes the work kept in the folder.
    """
    again = "; rerun the same command to resume" if resumes else ""
    s.add_argument(
        "--out", required=True, metavar="DIR",
        help=f"output folder: {written} are written there (created if missing{again})",
    )


def add_study_dir(s: argparse.ArgumentParser, needs: str) -> None:
    """Add the positional ``STUDY_DIR``, the study folder the verb reads.

    Parameters
    ----------
    s : argparse.ArgumentParser
        The verb's parser.
    needs : str
        What the verb reads from it, e.g. ``"config.json, results.csv and models/"``.
    """
    s.add_argument(
        "study", metavar="STUDY_DIR",
        help=f"study folder to read (the --out of 'flimexplore study' or 'score'): {needs} are read from there",
    )


def set_usage(s: argparse.ArgumentParser, *lines: str) -> None:
    """Give ``s`` a usage that starts with its positional STUDY_DIR, as the verb is typed.

    argparse lists positionals last; ``flimexplore analyse STUDY_DIR --out DIR`` reads
    better.  Each of ``lines`` is one line of the usage, aligned under the first.
    """
    indent = "\n" + " " * len(f"usage: {s.prog} ")
    s.usage = f"{s.prog} [-h] " + indent.join(lines)


def is_study_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder that a study wrote (it holds ``config.json``)."""
    return (Path(path) / "config.json").is_file()
