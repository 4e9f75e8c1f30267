"""What every ``flimexplore`` subcommand shares: the one-line parser, study settings, progress."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any, NoReturn

from flimexplore.errors import FlimExploreError
from flimexplore.study.config import StudyConfig

__all__ = [
    "CliParser", "OutOfMemory", "add_flim_arguments", "add_study_arguments", "close_dask", "config_from_args",
    "dask_from_args", "drain", "readout_lines", "stored_models", "with_flim_flags",
]


class CliParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"flimexplore: error: {message} (see {self.prog} --help)\n")


def add_study_arguments(s: argparse.ArgumentParser, sweep: bool = False, images: bool = False) -> None:
    """The study settings (:class:`StudyConfig`) and run options, as flags.

    With ``sweep=True`` the flags that choose one study (``--dataset``,
    ``--image``) are left out: ``flimexplore sweep`` defines its own.  With
    ``images=True`` ``--image`` may be repeated (``score --seeds FILE --image K``,
    once per file); ``args.image`` is then a list or None.
    """
    d = StudyConfig()
    if not sweep:
        s.add_argument("--dataset", default=d.dataset, metavar="NAME|DIR", help="preset name or folder path (default: %(default)s)")
    s.add_argument("--n-images", type=int, default=None, help="use only the first N images of the dataset (default: all)")
    s.add_argument("--size", type=int, default=None, help="side of a synthetic preset's images, 32-512 (default: 128)")
    if images:
        s.add_argument("--image", type=int, action="append", default=None, metavar="K",
                       help="which marked image, 0-based (default: 0); with --seeds, once per file, in the same "
                       "order (default: the image each file's <stem>-seeds.txt names)")
    elif not sweep:
        s.add_argument("--image", type=int, default=d.image, help="which marked image, 0-based (default: %(default)s)")
    s.add_argument(
        "--object-markers", "--splits", dest="splits", type=int, default=d.splits, metavar="N",
        help="object markers, each with its own background markers (default: %(default)s; --splits is an alias)",
    )
    s.add_argument("--n-bg", type=int, default=None, help="background markers per object marker (default: the dataset's)")
    s.add_argument("--radius", type=int, default=None, help="marker radius in px (default: the dataset's)")
    s.add_argument("--epochs", type=int, default=d.epochs, help="decision-layer epochs (default: %(default)s)")
    s.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate (default: %(default)s)")
    s.add_argument("--seed", type=int, default=d.seed, help="seed of split, markers, models (default: %(default)s)")
    s.add_argument("--dense", action="store_true", help="evaluate every background position on a grid")
    s.add_argument("--dense-spacing", type=int, default=None, help="grid spacing of --dense (default: the radius)")
    s.add_argument(
        "--vary", choices=("background", "object"), default=d.vary,
        help="which marker varies within a split; with 'object', --n-bg counts object markers (default: %(default)s)",
    )
    s.add_argument(
        "--object-label", type=_integers("--object-label", 1), default=None, metavar="V[,V...]",
        help="mask values that are object, e.g. 0,128 for the optic disc of REFUGE masks "
        "(default: non-zero for binary masks, half the value range for lossy ones)",
    )
    s.add_argument(
        "--markers-per-model", type=_integers("--markers-per-model", 2), default=d.markers_per_model, metavar="K,M",
        help="object and background disks of every sampled model (default: 1,1, the paper's)",
    )
    s.add_argument(
        "--markers", default=None, metavar="DIR|FILE",
        help="the user's <stem>-seeds.txt for the marked image (or a folder holding it), scored as one extra "
        "model (default: the dataset folder's markers/ when it has one for the marked image)",
    )
    s.add_argument(
        "--repeats", type=int, default=d.repeats, metavar="R",
        help="fit every model R times with its random choices re-drawn: Dice as a mean with a 95 %% interval, "
        "repeats.csv, and in summary.json how much marker position matters (default: %(default)s, one fit)",
    )
    s.add_argument(
        "--repeat-over", choices=("both", "decision", "clustering"), default=d.repeat_over,
        help="what a repeat re-draws: the decision layer's initialisation, the k-means++ starts (needs "
        "--clustering kmeans++), or both (default: %(default)s)",
    )
    s.add_argument(
        "--decoders", default=",".join(d.decoders), metavar="D[,D...]",
        help="read every model out with these decoders: trained (the decision layer, always) and the training-free "
        "LIDS adaptive decoders vanilla, probability, mean, labeled; results.csv then has one row per model and "
        "decoder, readouts.csv and heatmap_overview_<decoder>.png (default: %(default)s)",
    )
    s.add_argument(
        "--attention", action="store_true",
        help="score where each readout's evidence lies on the validation images: pointing and mass_in_object "
        "columns (implied by --decoders other than trained)",
    )
    add_flim_arguments(s)
    s.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    s.add_argument("--engine", choices=("batched", "sequential"), default="batched",
                   help="train a chunk of models together, or one at a time, the reference (default: %(default)s)")
    s.add_argument("--chunk", type=int, default=32, help="models trained together (default: %(default)s)")
    s.add_argument("--memory-mb", type=float, default=512, help="working-memory bound (default: %(default)s)")
    s.add_argument("--precision", choices=("fp32", "tf32", "bf16"), default="fp32",
                   help="arithmetic on CUDA; the CPU runs fp32 only (default: %(default)s)")
    s.add_argument("--quiet", action="store_true", help="no progress on stderr")


# flag name -> (type, help); the default of every one is the paper's (StudyConfig), or --arch's value
_FLIM_FLAGS = {
    "kernel_size": (int, "odd kernel side"),
    "kernels_per_marker": (int, "k-means kernels per marker"),
    "channels": (int, "output channels per layer (more kernels are reduced by --consensus)"),
    "pool": (str, "pooling: avg or max"),
    "pool_size": (int, "odd pooling window side"),
    "pool_stride": (int, "pooling stride"),
    "layers": (int, "FLIM layers, 1-3, all learned from the same markers"),
    "decision_layer": (int, "layer the decision layer reads"),
    "consensus": (str, "kmeans (cosine prototypes) or pca, when kernels > channels"),
    "stdev_factor": (float, "added to the marker-based std"),
    "clustering": (str, "farthest (one deterministic run) or kmeans++ (seeded restarts)"),
    "restarts": (int, "k-means++ runs per marker, the lowest inertia kept"),
    "min_cluster_fraction": (float, "drop clusters under this fraction of a marker's patches (libift: 0.05)"),
    "cluster_seed": (int, "seed of k-means++"),
}


def add_flim_arguments(s: argparse.ArgumentParser) -> None:
    """The FLIM encoder settings (:class:`~flimexplore.engine.settings.FlimSettings`) and ``--arch``."""
    g = s.add_argument_group("FLIM encoder (defaults: the paper's single layer)")
    d = StudyConfig()
    g.add_argument("--arch", default=None, metavar="FILE", help="read the FLIM settings from a LIDS arch.json; "
                   "flags given as well override it")
    for name, (kind, text) in _FLIM_FLAGS.items():
        g.add_argument("--" + name.replace("_", "-"), type=kind, default=None, help=f"{text} (default: {_shown(getattr(d, name))})")


def _shown(default: object) -> object:
    return "the last layer" if default is None else default


def config_from_args(args: argparse.Namespace, dataset: str | None = None) -> StudyConfig:
    """The validated :class:`StudyConfig` of parsed flags (before torch is imported: a typo fails at once).

    ``dataset`` overrides ``--dataset`` (``sweep`` takes several and checks each).  The FLIM settings
    come from ``--arch`` when given, then from the FLIM flags given.
    """
    d = StudyConfig()
    config = StudyConfig(
        dataset=dataset if dataset is not None else getattr(args, "dataset", d.dataset), n_images=args.n_images,
        image=_first(getattr(args, "image", d.image), d.image),
        splits=args.splits, n_bg=args.n_bg, radius=args.radius, epochs=args.epochs, lr=args.lr, seed=args.seed,
        dense=args.dense, dense_spacing=args.dense_spacing, object_label=args.object_label,
        markers_per_model=args.markers_per_model, markers=args.markers, size=args.size, vary=args.vary,
        repeats=args.repeats, repeat_over=args.repeat_over, decoders=args.decoders, attention=args.attention,
    )
    return with_flim_flags(config, args).validate()


def with_flim_flags(config: StudyConfig, args: argparse.Namespace) -> StudyConfig:
    """``config`` with the FLIM settings of ``--arch`` (when given), then of the FLIM flags given."""
    if getattr(args, "arch", None):
        from flimexplore.engine.arch import read_arch

        config = config.with_flim(read_arch(args.arch))
    given = {name: getattr(args, name) for name in _FLIM_FLAGS if getattr(args, name, None) is not None}
    return config.replace(**given)


def _first(value: int | list[int] | None, default: int) -> int:
    """``--image``'s value: an int, or the first of a repeated ``--image`` (None: the default)."""
    if isinstance(value, list):
        return value[0] if value else default
    return default if value is None else value


def _integers(flag: str, count: int | None) -> Any:
    """An argparse type: comma-separated integers (exactly `count` of them when count > 1)."""

    def parse(text: str) -> tuple[int, ...]:
        try:
            values = tuple(int(v) for v in text.replace(" ", "").split(","))
        except ValueError:
            values = ()
        if not values or (count and count > 1 and len(values) != count):
            what = f"{count} comma-separated integers" if count and count > 1 else "comma-separated integers"
            raise argparse.ArgumentTypeError(f"{flag} takes {what}, got {text!r}")
        return values

    return parse


def drain(gen: Generator[Any, None, Any], out: str | None, quiet: bool) -> tuple[Any, int, int]:
    """Run a progress generator to its end, printing its events on stderr.

    Returns
    -------
    (result, done, total)
        ``result`` is None when interrupted by Ctrl-C (the message says what is kept).

    Raises
    ------
    OutOfMemory
        When the engine ran out of memory (what is kept in ``out`` is counted).
    """
    t0 = time.perf_counter()
    done = total = 0
    try:
        while True:
            ev = next(gen)
            done, total = ev.done, ev.total
            if not quiet:
                print(f"[{ev.done:5d}/{ev.total}] {ev.message} ({time.perf_counter() - t0:.1f}s)", file=sys.stderr, flush=True)
    except StopIteration as stop:
        return stop.value, done, total
    except KeyboardInterrupt:
        # Close the generator now, not at interpreter exit: the study's chunk worker thread is then
        # cancelled and joined, and its results folder released (a thread still inside torch when
        # the interpreter exits aborts the process).
        gen.close()
        if out is None:
            raise
        done = stored_models(out, done)  # a chunk may have landed after the last progress event
        print(
            f"flimexplore: interrupted; {done}{_of(total)} models are kept in {out}; "
            "run the same command again to resume",
            file=sys.stderr,
        )
        return None, done, total
    except MemoryError as err:
        raise OutOfMemory(stored_models(out, done) if out else 0, total, out) from err
    except RuntimeError as err:
        if type(err).__name__ != "OutOfMemoryError":  # torch.cuda.OutOfMemoryError, without importing torch here
            raise
        raise OutOfMemory(stored_models(out, done) if out else 0, total, out) from err


def dask_from_args(args: argparse.Namespace) -> tuple[Any, str]:
    """The Dask client that ``--workers N`` or ``--scheduler ADDRESS`` asks for, and the device of every task.

    Returns ``(None, args.device)`` when neither is given (work stays in this process).
    """
    if args.workers is None and args.scheduler is None:
        return None, args.device
    from flimexplore.sweep import dask_client

    device = "cpu" if args.device == "auto" else args.device  # one device for every worker
    client = dask_client(args.workers, args.scheduler, gpu=device.startswith("cuda"))
    if not args.quiet:
        print(f"flimexplore: Dask dashboard at {client.dashboard_link}", file=sys.stderr, flush=True)
    return client, device


def close_dask(client: Any, own_cluster: bool) -> None:
    """Close a client of :func:`dask_from_args`, and its local cluster when this process started it."""
    if client is None:
        return
    cluster = client.cluster if own_cluster else None
    client.close()
    if cluster is not None:
        cluster.close()


def readout_lines(summary: dict[str, Any]) -> list[str]:
    """One line per readout of a study with other readouts: its Dice range, attention, agreement with the trained layer."""
    found = summary.get("readouts")
    if not found:
        return []
    lines = []
    for d in found["readouts"]:
        r = found["per_readout"][d]
        if "val_dice_min" not in r:
            continue
        text = f"{d}: validation Dice {r['val_dice_min']:.3f}-{r['val_dice_max']:.3f}"
        att = [f"{k} {r[k + '_mean']:.2f}" for k in ("pointing", "mass_in_object") if r.get(k + "_mean") is not None]
        if att:
            text += " · mean " + ", ".join(att)
        agree = [a for a in found["agreement"] if a["a"] == "trained" and a["b"] == d and a["part"] == "val"
                 and a["split"] is None]
        if agree:
            rho, top = agree[0]["rho"], agree[0]["top5_overlap"]
            text += (f" · with trained: rho {'n/a' if rho is None else f'{rho:+.2f}'}, "
                     f"top-5 overlap {'n/a' if top is None else f'{top:.1f}'}")
        lines.append(text)
    return lines


def stored_models(out: str, reported: int) -> int:
    """Rows in the folder's results.csv (what a rerun resumes from), or `reported` if it cannot be read."""
    from flimexplore.study.store import read_results

    try:
        return len({r["model"] for r in read_results(Path(out) / "results.csv")})  # one row per model and readout
    except FileNotFoundError:
        return 0
    except (OSError, ValueError, KeyError) as err:
        print(f"flimexplore: warning: cannot count the kept models: {err}", file=sys.stderr)
        return reported


def _of(total: int) -> str:
    return f" of {total}" if total else ""  # total is 0 until the study's first event


class OutOfMemory(FlimExploreError):
    """The engine ran out of memory; finished models are kept."""

    def __init__(self, done: int, total: int, out: str | None) -> None:
        super().__init__(
            f"out of memory; {done}{_of(total)} models are kept in {out}; run the same command again "
            "with a smaller --chunk or --memory-mb to resume"
        )
