"""``flimexplore advise``: rank background positions for one object marker (or, ``--vary object``, the reverse)."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from flimexplore.cli._grammar import add_out
from flimexplore.errors import ConfigError, OutputError

PROBE = 192  # = flimexplore.analysis.advice.PROBE (not imported here: `--help` stays fast)
HEADS = 5  # = flimexplore.analysis.advice.HEADS

__all__ = ["register", "run"]


def _pair(text: str) -> tuple[int, int]:
    try:
        row, col = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ROW,COL (two integers), got {text!r}") from None
    return row, col


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``advise`` subcommand."""
    s = sub.add_parser("advise", help="recommend where to draw a marker (from the marked image and its mask only)")
    s.add_argument("--vary", "--for", dest="target", choices=("background", "object"), default="background",
                   help="which marker to advise, as `study --vary`: background positions for a fixed object marker, "
                        "or object positions for a fixed background marker (--background ROW,COL, or with --split S "
                        "the one a `study --vary object` uses); --for is the older name (default: %(default)s)")
    s.add_argument("--dataset", default="fish", metavar="NAME|DIR", help="preset name or folder path (default: %(default)s)")
    s.add_argument("--n-images", type=int, default=None, help="use only the first N images of the dataset (default: all)")
    s.add_argument("--image", type=int, default=0, help="which marked image, 0-based (default: %(default)s)")
    where = s.add_mutually_exclusive_group()
    where.add_argument("--split", type=int, default=None, help="the object marker a study with --seed uses for this split (default: 0)")
    where.add_argument("--object", type=_pair, default=None, metavar="ROW,COL", help="the object marker centre")
    where.add_argument("--background", type=_pair, default=None, metavar="ROW,COL",
                       help="the fixed background marker centre (with --vary object)")
    s.add_argument("--radius", type=int, default=None, help="marker radius in px (default: the dataset's)")
    s.add_argument("--spacing", type=int, default=None, help="candidate grid spacing in px (default: the radius, the --dense grid)")
    s.add_argument("--top", type=int, default=5, help="positions to ring in advice.png (default: %(default)s)")
    s.add_argument("--probe", type=int, default=PROBE,
                   help="re-rank this many best candidates by their model's fit on the marked image; 0: descriptors only (default: %(default)s)")
    s.add_argument("--rerank", choices=("probe", "mix"), default="probe",
                   help="order probed candidates by the probe alone or by its mean rank with the descriptors (default: %(default)s)")
    s.add_argument("--heads", type=int, default=HEADS,
                   help="decision-layer seeds per probed candidate: the probe is their mean, their spread gives the "
                        "advice's reliability (default: %(default)s)")
    s.add_argument("--budget", type=float, default=0.05,
                   help="probe at most as many candidates as fit in this fraction of a dense study's cost (--probe "
                        "is the upper bound); 0 probes exactly --probe (default: %(default)s, i.e. 1/20)")
    s.add_argument("--probe-on", choices=("training", "marked"), default="training",
                   help="score probe models on the split's other marked (training) images, or on the marked image "
                        "itself; never on validation or test images (default: %(default)s)")
    s.add_argument("--epochs", type=int, default=20, help="epochs of the probe models (default: %(default)s)")
    s.add_argument("--lr", type=float, default=0.1, help="learning rate of the probe models (default: %(default)s)")
    s.add_argument("--device", default="cpu", help="device of the probe models: cpu, cuda or auto (default: %(default)s)")
    s.add_argument("--seed", type=int, default=0, help="seed of the split and the study's object markers (default: %(default)s)")
    add_out(s, "advice.csv, advice.json and advice.png")


def run(args: argparse.Namespace) -> int:
    """Run ``advise``; returns the exit status."""
    from flimexplore.analysis.advice import AdviceSettings, advise

    for name in ("top", "n_images", "radius", "spacing", "epochs"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be an integer >= 1, got {v}")
    if args.image < 0 or args.seed < 0 or args.probe < 0 or (args.split is not None and args.split < 0):
        raise ConfigError("--image, --split, --probe and --seed must be integers >= 0")
    if not args.lr > 0:
        raise ConfigError(f"--lr must be a number > 0, got {args.lr}")
    if args.object is not None and args.target == "object":
        raise ConfigError("--object gives the fixed object marker of background advice; with --vary object give --background ROW,COL")
    if args.background is not None and args.target == "background":
        raise ConfigError("--background gives the fixed marker of --vary object; for background advice give --object ROW,COL")
    given = args.object if args.target == "background" else args.background
    settings = AdviceSettings(
        dataset=args.dataset, image=args.image, split=None if given else (args.split or 0), target=args.target,
        background=args.background, obj=args.object, radius=args.radius, top=args.top, seed=args.seed, n_images=args.n_images, spacing=args.spacing,
        probe=args.probe, rerank=args.rerank, epochs=args.epochs, lr=args.lr, device=args.device, heads=args.heads,
        probe_on=args.probe_on, budget=args.budget or None,
    )
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create output folder {out}: {err.strerror or err}; choose another --out") from None
    adv = advise(settings)
    write_advice(adv, out)
    best, p = adv.table()[0], adv.ranked
    fixed = "object" if p == "bg" else "background"
    if adv.reliability is not None:
        print(adv.reliability["line"])
    if adv.abstains:
        print(f"{len(adv.centres)} positions ranked in {adv.seconds:.2f} s for {fixed} marker ({adv.obj[0]}, {adv.obj[1]}) "
              f"on {adv.image_stem}; no best {args.target} marker is presented; wrote {out}")
    else:
        print(f"{len(adv.centres)} positions ranked in {adv.seconds:.2f} s; best {args.target} marker at "
              f"({best[p + '_row']}, {best[p + '_col']}) for {fixed} marker ({adv.obj[0]}, {adv.obj[1]}) on {adv.image_stem}; "
              f"wrote {out}")
    return 0


def write_advice(adv, out: Path) -> None:  # noqa: ANN001 - Advice, imported lazily
    """Write ``advice.csv``, ``advice.json`` and ``advice.png`` into ``out``."""
    from flimexplore.figures.advice_png import save_advice_png

    try:
        with open(out / "advice.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["rank", f"{adv.ranked}_row", f"{adv.ranked}_col", "score"])
            w.writeheader()
            w.writerows(adv.table())
        (out / "advice.json").write_text(json.dumps(adv.summary(), indent=2) + "\n")
        target = adv.settings.target
        fixed = "object" if target == "background" else "background"
        title = (f"{adv.image_stem}: where to draw the {target} marker\n"
                 f"{fixed} marker ({adv.obj[0]}, {adv.obj[1]}), r = {adv.radius}, {len(adv.centres)} positions")
        if adv.abstains:  # no best position is presented: no rings, and the title says why
            title += f"\nno position recommended: {adv.reliability['reason']} (see advice.json)"
        top = adv.top(0 if adv.abstains else adv.settings.top)
        save_advice_png(out / "advice.png", adv.image, adv.score_map(), top, adv.obj, adv.radius, title, target=target)
    except OSError as err:
        raise OutputError(f"cannot write advice into {out}: {err.strerror or err}; choose another --out") from None
