"""The ``flimexplore`` command line (one subcommand per verb)."""

from flimexplore.cli.main import main

__all__ = ["main"]
