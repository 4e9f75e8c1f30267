"""``flimexplore sweep``: the paper's protocol, every (dataset, marked image) study, resumable."""

from __future__ import annotations

import argparse
import sys
import time

from flimexplore.cli._common import add_study_arguments, close_dask, config_from_args, dask_from_args
from flimexplore.cli._grammar import add_out
from flimexplore.errors import ConfigError

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``sweep`` subcommand."""
    s = sub.add_parser(
        "sweep",
        help="run every (dataset, marked image) study of the protocol, in this process or on a Dask cluster",
    )
    s.add_argument("--dataset", action="append", required=True, dest="datasets", metavar="NAME|DIR",
                   help="preset name or folder path (repeat for more)")
    s.add_argument("--images", default="all", help="marked images, e.g. 0,1,2 or all (default: %(default)s)")
    add_study_arguments(s, sweep=True)
    add_out(s, "one study folder per (dataset, marked image), sweep.csv and sweep.json", resumes=True)
    where = s.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help="run on a local Dask cluster of N worker processes (default: in this process)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS", help="run on the Dask cluster at tcp://HOST:PORT")
    s.add_argument("--granularity", choices=("chunk", "study"), default="chunk",
                   help="Dask task = a chunk of models or a whole study (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    """Run ``sweep``; returns the exit status."""
    for name in args.datasets:  # every dataset's settings are checked before any work
        config = config_from_args(args, dataset=name)
    if args.engine != "batched":
        raise ConfigError("flimexplore sweep runs the batched engine; leave --engine out")

    from flimexplore.sweep import run_sweep

    client, device = dask_from_args(args)
    try:
        gen = run_sweep(
            args.datasets, args.images, config, args.out, executor=client, device=device,
            model_chunk=args.chunk, memory_mb=args.memory_mb, granularity=args.granularity, precision=args.precision,
        )
        result = _drain(gen, args.quiet)
    except KeyboardInterrupt:
        print(f"flimexplore: interrupted; finished chunks are kept in {args.out}; run the same command again "
              "to resume", file=sys.stderr)
        return 130
    finally:
        close_dask(client, args.workers is not None)
    n = result.report.get("n_models", 0)
    print(f"{len(result.summaries)} of {len(result.tasks)} studies complete, {n} models "
          f"({result.computed} computed now); wrote {args.out}/sweep.csv and sweep.json")
    return 0


def _drain(gen, quiet: bool):
    t0 = time.perf_counter()
    while True:
        try:
            ev = next(gen)
        except StopIteration as stop:
            return stop.value
        if not quiet:
            left = f", about {ev.eta_s:.0f}s left" if ev.eta_s is not None else ""
            print(f"[{ev.done:5d}/{ev.total}] [{ev.tasks_done}/{ev.tasks_total} studies] {ev.message} "
                  f"({time.perf_counter() - t0:.1f}s{left})", file=sys.stderr, flush=True)

