"""The ``flimexplore`` command line.

``flimexplore datasets`` lists the datasets; ``flimexplore study ... --out DIR``
runs a marker study and writes ``results.csv``, ``summary.json`` and one
``heatmap_split<k>.png`` per object marker into DIR, reporting progress on
stderr.  Bad input ends with one line on stderr and exit status 2 (the full
traceback with ``--debug``); Ctrl-C keeps what was finished (exit 130) and
the same command resumes it, as it does after ``kill -9`` or a power cut.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from flimexplore.config import StudyConfig
from flimexplore.errors import FlimExploreError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"flimexplore: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="flimexplore", description="Where should markers go when training FLIM networks?")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("datasets", help="list the datasets")
    s = sub.add_parser("study", help="run a marker study on one marked image")
    d = StudyConfig()
    s.add_argument("--dataset", default=d.dataset, help="preset name or folder path (default: %(default)s)")
    s.add_argument("--n-images", type=int, default=None, help="use only the first N images of the dataset")
    s.add_argument("--image", type=int, default=d.image, help="which marked image, 0-based (default: %(default)s)")
    s.add_argument("--splits", type=int, default=d.splits, help="object markers (default: %(default)s)")
    s.add_argument("--n-bg", type=int, default=None, help="background markers per split (default: the dataset's)")
    s.add_argument("--radius", type=int, default=None, help="marker radius in px (default: the dataset's)")
    s.add_argument("--epochs", type=int, default=d.epochs, help="decision-layer epochs (default: %(default)s)")
    s.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate (default: %(default)s)")
    s.add_argument("--seed", type=int, default=d.seed, help="seed of split, markers, models (default: %(default)s)")
    s.add_argument("--dense", action="store_true", help="evaluate every background position on a grid")
    s.add_argument("--dense-spacing", type=int, default=None, help="grid spacing of --dense (default: the radius)")
    s.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    s.add_argument("--engine", choices=("batched", "sequential"), default="batched")
    s.add_argument("--chunk", type=int, default=32, help="models trained together (default: %(default)s)")
    s.add_argument("--memory-mb", type=float, default=512, help="working-memory bound (default: %(default)s)")
    s.add_argument("--out", required=True, help="output folder (rerun the same command to resume)")
    s.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def _datasets() -> int:
    from flimexplore.data import list_datasets

    for info in list_datasets():
        state = f"{info.n_images} images" if info.available else f"not installed: {info.how_to_install}"
        print(f"{info.name:8s} {state:14s} {info.description}")
    return 0


def _study(args: argparse.Namespace) -> int:
    config = StudyConfig(
        dataset=args.dataset, n_images=args.n_images, image=args.image, splits=args.splits,
        n_bg=args.n_bg, radius=args.radius, epochs=args.epochs, lr=args.lr, seed=args.seed,
        dense=args.dense, dense_spacing=args.dense_spacing,
    ).validate()  # before importing torch: a typo fails at once

    from flimexplore.study import run_study

    t0 = time.perf_counter()
    gen = run_study(config, args.out, device=args.device, engine=args.engine, model_chunk=args.chunk, memory_mb=args.memory_mb)
    done = total = 0
    try:
        while True:
            ev = next(gen)
            done, total = ev.done, ev.total
            if not args.quiet:
                print(f"[{ev.done:5d}/{ev.total}] {ev.message} ({time.perf_counter() - t0:.1f}s)", file=sys.stderr, flush=True)
    except StopIteration as stop:
        result = stop.value
    except KeyboardInterrupt:
        done = _stored(args.out, done)  # a chunk may have landed after the last progress event
        print(
            f"flimexplore: interrupted; {done}{_of(total)} models are kept in {args.out}; "
            "run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    except MemoryError as err:
        raise _OutOfMemory(_stored(args.out, done), total, args.out) from err
    except RuntimeError as err:
        if type(err).__name__ != "OutOfMemoryError":  # torch.cuda.OutOfMemoryError, without importing torch here
            raise
        raise _OutOfMemory(_stored(args.out, done), total, args.out) from err
    s = result.summary()
    if s["n_models"]:
        print(
            f"{s['n_models']} models, validation Dice {s['val_dice_min']:.3f}-{s['val_dice_max']:.3f}, "
            f"test Dice {s['test_dice_min']:.3f}-{s['test_dice_max']:.3f} on {s['device']}; wrote {args.out}"
        )
    else:
        print(f"0 models on {s['device']}; wrote {args.out}")
    return 0


def _stored(out: str, reported: int) -> int:
    """Rows in the folder's results.csv (what a rerun resumes from), or `reported` if it cannot be read."""
    from flimexplore.results import read_results

    try:
        return len(read_results(Path(out) / "results.csv"))
    except FileNotFoundError:
        return 0
    except (OSError, ValueError, KeyError) as err:
        print(f"flimexplore: warning: cannot count the kept models: {err}", file=sys.stderr)
        return reported


def _of(total: int) -> str:
    return f" of {total}" if total else ""  # total is 0 until the study's first event


class _OutOfMemory(FlimExploreError):
    def __init__(self, done: int, total: int, out: str) -> None:
        super().__init__(
            f"out of memory; {done}{_of(total)} models are kept in {out}; run the same command again "
            "with a smaller --chunk or --memory-mb to resume"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "datasets":
            return _datasets()
        return _study(args)
    except FlimExploreError as err:
        if args.debug:
            raise
        print(f"flimexplore: error: {_one_line(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before the study started (imports, loading data)
        if args.debug:
            raise
        print("flimexplore: interrupted", file=sys.stderr)
        return 130


def _one_line(message: str) -> str:
    return " ".join(message.split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
