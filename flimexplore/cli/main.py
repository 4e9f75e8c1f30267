"""The ``flimexplore`` command line: one module per subcommand, wired here.

``flimexplore datasets`` lists the datasets; ``flimexplore study ... --out DIR``
runs a marker study and writes ``results.csv``, ``summary.json`` and one
``heatmap_split<k>.png`` per object marker into DIR, reporting progress on
stderr.  Bad input ends with one line on stderr and exit status 2 (the full
traceback with ``--debug``); Ctrl-C keeps what was finished (exit 130) and
the same command resumes it, as it does after ``kill -9`` or a power cut.

One grammar holds for every verb (:data:`~flimexplore.cli._grammar.RULE`, the
epilog of ``flimexplore --help``): ``--out DIR`` is always, and only, where a
verb writes; a study folder that a verb reads is its positional ``STUDY_DIR``
(``flimexplore export STUDY_DIR --model N --out DIR``).

Each subcommand is a module of this package with ``register(subparsers)``
and ``run(args) -> int``; :data:`COMMANDS` lists them in help order.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from flimexplore import __version__
from flimexplore.cli._common import CliParser
from flimexplore.cli._grammar import RULE
from flimexplore.errors import FlimExploreError, FlimExploreWarning

__all__ = ["COMMANDS", "main"]

COMMANDS = ("datasets", "study", "score", "analyse", "advise", "simulate", "sweep", "export")


def _parser() -> argparse.ArgumentParser:
    p = CliParser(prog="flimexplore", description="Where should markers go when training FLIM networks?", epilog=RULE)
    p.add_argument("--version", action="version", version=f"flimexplore {__version__}")
    p.add_argument("--debug", action="store_true", help="show full tracebacks (give it before the subcommand)")
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"flimexplore.cli.{name}").register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", FlimExploreWarning)
            warnings.showwarning = _show_warning
            return importlib.import_module(f"flimexplore.cli.{args.command}").run(args)
    except FlimExploreError as err:
        if args.debug:
            raise
        print(f"flimexplore: error: {_one_line(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before the work started (imports, loading data)
        if args.debug:
            raise
        print("flimexplore: interrupted", file=sys.stderr)
        return 130


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """Print flimexplore's warnings as one line on stderr; others as Python does."""
    if issubclass(category, FlimExploreWarning):
        print(f"flimexplore: warning: {_one_line(str(message))}", file=sys.stderr, flush=True)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _one_line(message: str) -> str:
    return " ".join(message.split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
