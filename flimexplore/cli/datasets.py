"""``flimexplore datasets``: list the bundled presets and their state."""

from __future__ import annotations

import argparse

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``datasets`` subcommand."""
    sub.add_parser("datasets", help="list the datasets")


def run(args: argparse.Namespace) -> int:
    """List the datasets; returns the exit status."""
    from flimexplore.data import list_datasets

    for info in list_datasets():
        state = f"{info.n_images} images" if info.available else f"not installed: {info.how_to_install}"
        print(f"{info.name:8s} {state:14s} {info.description}")
    return 0
