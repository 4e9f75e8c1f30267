"""``flimexplore simulate``: a robot user adds markers one at a time; Dice against markers, markers needed."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from flimexplore.cli._common import _integers, add_flim_arguments, close_dask, dask_from_args, with_flim_flags
from flimexplore.cli._grammar import add_out

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` subcommand."""
    from flimexplore.loop.config import CANDIDATES, POLICIES, TARGETS
    from flimexplore.study.config import StudyConfig

    d = StudyConfig()
    s = sub.add_parser(
        "simulate",
        help="a robot user adds markers one at a time (random, advised, error-driven); Dice vs markers, NoC",
        description=(
            "Start from one object and one background marker on the marked image (split 0 of 'flimexplore study' "
            "with the same --seed) and add one disk marker of the study's radius at a time, refitting and scoring "
            "the model after each: 'random' (a random admissible position, classes alternating, background first), "
            "'advised' (the candidate whose marker helps most on the marked images: candidates of both classes on "
            "a grid, the best --candidates by the current model's errors under them, a probe model each), 'error' "
            "(the centre of the largest error region of the current model on the marked image: false object gets "
            "a background marker, missed object an object marker). Policies read the marked images and their own "
            "masks only. Writes curve.csv, noc.csv (markers needed to reach each --targets Dice, K+1 = not "
            "reached, mean and 95 % interval over repeats), markers.csv, summary.json, curve.png and every "
            "step's LIDS seeds files."
        ),
    )
    s.add_argument("--dataset", action="append", default=None, dest="datasets", metavar="NAME|DIR",
                   help=f"preset name or folder path; repeat for several, one loop each (default: {d.dataset})")
    s.add_argument("--n-images", type=int, default=None, help="use only the first N images of the dataset (default: all)")
    s.add_argument("--size", type=int, default=None, help="side of a synthetic preset's images, 32-512 (default: 128)")
    s.add_argument("--image", type=int, default=d.image, help="the marked image the loop starts on, 0-based (default: %(default)s)")
    s.add_argument("--images", default=None, metavar="0,1,2|all",
                   help="one loop per marked image listed (as 'flimexplore sweep'), each in OUT/<dataset>/image<k>/ "
                        "(default: one loop, on --image, written in OUT)")
    s.add_argument("--policies", default=",".join(POLICIES), help="robot users to run (default: %(default)s)")
    s.add_argument("--max-markers", type=int, default=10, metavar="K",
                   help="markers at the end of a run, the two starting ones included (default: %(default)s)")
    s.add_argument("--repeats", type=int, default=3, metavar="R",
                   help="runs per policy: each re-draws the random positions and the models' seeds (default: %(default)s)")
    s.add_argument("--targets", default=",".join(f"{t:.2f}" for t in TARGETS),
                   help="validation Dice levels of the markers-needed table (default: %(default)s)")
    s.add_argument("--next-image-after", type=int, default=None, metavar="N",
                   help="move to the next marked image after N markers on one (default: every marker on --image)")
    s.add_argument("--candidates", type=int, default=CANDIDATES,
                   help="candidates the advised policy probes per marker (default: %(default)s)")
    s.add_argument("--radius", type=int, default=None, help="marker radius in px (default: the dataset's)")
    s.add_argument("--epochs", type=int, default=d.epochs, help="decision-layer epochs (default: %(default)s)")
    s.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate (default: %(default)s)")
    s.add_argument("--seed", type=int, default=d.seed, help="seed of the split, the start markers and the models (default: %(default)s)")
    s.add_argument("--object-label", type=_integers("--object-label", 1), default=None, metavar="V[,V...]",
                   help="mask values that are object (default: non-zero for binary masks)")
    add_flim_arguments(s)
    s.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    s.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_out(s, "config.json, runs/, curve.csv, noc.csv, markers.csv, summary.json, curve.png and seeds/ (one such "
               "folder per dataset and marked image with several datasets, --images, --workers or --scheduler)",
            resumes=True)
    where = s.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help="run the loops' runs on a local Dask cluster of N worker processes (default: in this process)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS", help="run on the Dask cluster at tcp://HOST:PORT")


def run(args: argparse.Namespace) -> int:
    """Run ``simulate``; returns the exit status."""
    from flimexplore.loop.config import LoopConfig
    from flimexplore.study.config import StudyConfig

    datasets = args.datasets or [StudyConfig().dataset]
    study = StudyConfig(dataset=datasets[0], n_images=args.n_images, size=args.size, image=args.image, radius=args.radius,
                        epochs=args.epochs, lr=args.lr, seed=args.seed, object_label=args.object_label)
    config = LoopConfig(study=with_flim_flags(study, args), policies=args.policies, max_markers=args.max_markers,
                        repeats=args.repeats, targets=args.targets, next_image_after=args.next_image_after,
                        candidates=args.candidates).validate()
    if len(datasets) > 1 or args.images is not None or args.workers is not None or args.scheduler is not None:
        return _run_many(args, datasets, config)

    from flimexplore.loop.run import simulate

    try:
        result = _follow(simulate(config, args.out, device=args.device), args.quiet)
    except KeyboardInterrupt:
        kept = len(list((Path(args.out) / "runs").glob("*.json")))
        print(f"flimexplore: interrupted; {kept} finished runs are kept in {args.out}/runs; run the same command again "
              "to resume", file=sys.stderr)
        return 130
    print(_said(result, config.targets[0]) + f"; wrote {args.out}")
    return 0


def _follow(gen: Generator[Any, None, Any], quiet: bool) -> Any:
    """Run a progress generator to its end, one progress line per event on stderr; return its value.

    On Ctrl-C the generator is closed (its finished runs are stored) and the interrupt goes on to the caller.
    """
    t0 = time.perf_counter()
    try:
        while True:
            try:
                ev = next(gen)
            except StopIteration as stop:
                return stop.value
            if not quiet:
                print(f"[{ev.done:5d}/{ev.total}] {ev.message} ({time.perf_counter() - t0:.1f}s)", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        gen.close()
        raise


def _said(result, first: float) -> str:
    """One line per loop: markers needed to reach the first target and the curve's area, per policy."""
    parts = []
    for policy, s in result.summary()["policies"].items():
        noc = next(n for n in s["noc"] if n["target"] == first)
        parts.append(f"{policy} {noc['mean']:.1f} markers to Dice {first:.2f} ({noc['n_reached']}/{s['n_repeats']} reached), "
                     f"area {s['area']['mean']:.3f}")
    return "; ".join(parts)


def _run_many(args: argparse.Namespace, datasets: list[str], config) -> int:
    """Several loops (datasets x marked images), in this process or on Dask: one folder each under ``--out``."""
    from flimexplore.loop.sweep import plan_loops, simulate_sweep

    images = args.images if args.images is not None else [args.image]
    plan_loops(datasets, images, config)  # every dataset and setting is checked before any work
    client, device = dask_from_args(args)
    try:
        results = _follow(simulate_sweep(datasets, images, config, args.out, executor=client, device=device), args.quiet)
    except KeyboardInterrupt:
        print(f"flimexplore: interrupted; finished runs are kept under {args.out}; run the same command again to resume",
              file=sys.stderr)
        return 130
    finally:
        close_dask(client, args.workers is not None)
    for folder, result in results.items():
        print(f"{folder}: {_said(result, config.targets[0])}")
    print(f"{len(results)} loops; wrote {args.out}")
    return 0
