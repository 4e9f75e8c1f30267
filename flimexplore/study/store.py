"""The on-disk store of a study: results table, model parameters, summary, resume.

Layout of an output folder::

    config.json          the study's settings (and the dataset's identity)
    results.csv          one row per finished model, sorted by model id (with repeated fits: their mean and interval)
    repeats.csv          with repeated fits (``--repeats R``, R > 1) or other readouts: one row per fit
    readouts.csv         with other readouts (``--decoders``, ``--attention``): one row per model and readout
    models/<a>-<b>.npz   parameters of models a..b (for figures and projections)
    summary.json         written when the study completes
    heatmap_split<k>.png one heatmap figure per object marker
    heatmap_overview.png all object markers side by side
    heatmap_overview_<decoder>.png   the same for each adaptive decoder (``--decoders``)

Every file is written atomically (a temporary file in the same folder, then
``os.replace``), so a crash or ``kill -9`` leaves either the old or the new
version, never half a row.  Reopening a folder with the same settings
resumes; with different settings it refuses and names the differences
(``--repeats``, ``--decoders`` and ``--attention`` may grow: what is stored is kept).

With other readouts (:mod:`flimexplore.study.readout_table`) ``results.csv``
is rendered as the join of the trained layer's rows (from the fits) and
``readouts.csv``: one row per (model, readout), with a ``decoder`` column.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from flimexplore.errors import OutputError, ResumeError
from flimexplore.study.config import StudyConfig
from flimexplore.study.readout_table import (
    ATTENTION_COLUMNS,
    READOUT_COLUMNS,
    READOUTS,
    TRAINED,
    join_readouts,
    joined_columns,
    other_readouts,
)

__all__ = [
    "COLUMNS", "FIT_COLUMNS", "REPEAT_COLUMNS", "ResultStore", "aggregate_fits", "atomic_write_bytes", "read_results",
    "result_columns", "typed_row",
]

TMP_SUFFIX = ".tmp"
_OUR_FILES = (
    "config.json", "results.csv", "repeats.csv", "readouts.csv", "summary.json", "heatmap_split*.png", "heatmap_overview.png",
    "heatmap_overview_*.png", "heatmap_user.png", "probe",
)
LOCK_NAME = ".lock"

COLUMNS = (
    "model",
    "image",
    "image_stem",
    "split",
    "bg_index",
    "obj_row",
    "obj_col",
    "bg_row",
    "bg_col",
    "radius",
    "seed",
    "best_epoch",
    "val_dice",
    "val_jaccard",
    "val_sensitivity",
    "val_specificity",
    "test_dice",
    "test_jaccard",
    "test_sensitivity",
    "test_specificity",
)
REPEAT_COLUMNS = ("val_dice_sd", "val_dice_lo", "val_dice_hi", "n_repeats")
"""Appended to ``results.csv`` when every model is fitted more than once (``--repeats R``, R > 1)."""
FIT_COLUMNS = (*COLUMNS[:10], "repeat", "seed", "cluster_seed", *COLUMNS[11:])
"""``repeats.csv``: one row per fit of a model (``repeat`` 0..R-1; ``cluster_seed`` -1 for a clustering without one)."""
_INT_COLUMNS = {
    "model", "image", "split", "bg_index", "obj_row", "obj_col", "bg_row", "bg_col", "radius", "seed", "best_epoch",
    "repeat", "cluster_seed", "n_repeats",
}
_TEXT_COLUMNS = {"image_stem", "decoder"}
_KNOWN = set(COLUMNS) | set(REPEAT_COLUMNS) | set(FIT_COLUMNS) | set(ATTENTION_COLUMNS)


def result_columns(repeats: int) -> tuple[str, ...]:
    """Columns of ``results.csv`` for a study fitting every model ``repeats`` times."""
    return COLUMNS + REPEAT_COLUMNS if repeats > 1 else COLUMNS


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename, fsync of the folder)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes the file private (0600); results are meant to be shared
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


@functools.cache
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX); a no-op where folders cannot be opened."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _format(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):.6f}"
    return str(value)


def read_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a ``results.csv`` written by a study into a list of typed rows."""
    with open(path, newline="") as fh:
        return [typed_row(raw) for raw in csv.DictReader(fh)]


def typed_row(raw: dict[str, str]) -> dict[str, Any]:
    """One row of results text with its values typed (ints, the stem as text, floats); other text columns stay text."""
    return {
        k: (int(v) if k in _INT_COLUMNS else float(v) if k in _KNOWN and k not in _TEXT_COLUMNS else v)
        for k, v in raw.items()
    }


class ResultStore:
    """An output folder that collects a study's results as models finish.

    Opening a folder locks it (until :meth:`close`, or the process ends), so
    that two runs never write into one folder at once; removes temporary
    files and model files a crash left behind; and checks that a study
    already there has the same settings.

    Parameters
    ----------
    out : path-like
        Folder; created if missing.
    config : StudyConfig
        Resolved settings of the study (dataset defaults filled in).
    identity : dict
        Facts of the data that must match on resume (e.g. the marked image's
        name and the dataset's size).

    Raises
    ------
    ResumeError
        If the folder holds finished models of a study with different
        settings (the message names each one).  A folder with settings but
        no finished model yet is taken over: nothing would be lost.
    OutputError
        If the folder cannot be created or written, is locked by another
        running study, or holds files flimexplore did not write.
    """

    def __init__(self, out: str | os.PathLike, config: StudyConfig, identity: dict[str, Any]) -> None:
        self.out = Path(out)
        self._lock: Any = None
        if self.out.exists() and not self.out.is_dir():
            raise OutputError(f"--out {self.out} is a file; give a folder (it is created if missing)")
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            self._lock = _lock(self.out)
            _probe_writable(self.out)
        except OSError as err:
            self.close()
            raise OutputError(f"cannot write into the output folder {self.out}: {_reason(err)}") from err
        try:
            self._open(config, identity)
        except BaseException:
            self.close()
            raise

    def _open(self, config: StudyConfig, identity: dict[str, Any]) -> None:
        record = {"config": config.to_dict(), "identity": identity}
        self.repeats = config.repeats
        self.decoders = config.decoders
        self.readouts_on = other_readouts(config.decoders, config.attention)
        self._base = result_columns(config.repeats)
        self.columns = joined_columns(self._base) if self.readouts_on else self._base
        cfg_path, csv_path, fits_path = self.out / "config.json", self.out / "results.csv", self.out / "repeats.csv"
        diffs: dict[str, tuple[Any, Any]] = {}
        if cfg_path.exists():
            diffs = _differences(cfg_path, record)  # also refuses a config.json that is not ours
            _remove_temporaries(self.out)
        elif csv_path.exists() or any((self.out / "models").glob("*.npz")):
            raise OutputError(
                f"{self.out} holds results.csv or models/*.npz but no config.json, so it is not a flimexplore "
                "study folder (or its config.json was deleted); use another --out folder"
            )
        self._rows: dict[int, dict[str, Any]] = {}
        self._fits: dict[tuple[int, int], dict[str, Any]] = {}
        self._readouts: dict[tuple[int, str], dict[str, Any]] = {}
        if csv_path.exists():
            plain = (COLUMNS, COLUMNS + REPEAT_COLUMNS)
            rows = _read_table(csv_path, (*plain, *(joined_columns(c) for c in plain)))
            self._rows = {r["model"]: r for r in rows if r.get("decoder", TRAINED) == TRAINED}
        if (self.out / "readouts.csv").exists():
            self._readouts = {(r["model"], r["decoder"]): r for r in _read_table(self.out / "readouts.csv", (READOUT_COLUMNS,))}
        if fits_path.exists():
            self._fits = {(r["model"], r["repeat"]): r for r in _read_table(fits_path, (FIT_COLUMNS,))}
        elif self._rows and "n_repeats" in next(iter(self._rows.values())):
            raise OutputError(f"{self.out} holds a results.csv of repeated fits but no repeats.csv; use another --out folder")
        else:  # a folder of single fits: each row is fit 0 of its model
            seed = -1 if config.clustering != "kmeans++" else config.cluster_seed
            self._fits = {(m, 0): _fit_of(r, 0, seed) for m, r in self._rows.items()}
        if self.readouts_on or self._readouts:  # results.csv is a join: the trained rows come from the fits
            self._rows = _typed(self._base, aggregate_fits(self._fits, self.repeats)) if self._fits else {}
        grown = _readouts_grown(diffs, config)
        old_repeats = (diffs.pop("repeats")[0] or 1) if "repeats" in diffs else None  # None: from before repeats
        if old_repeats is not None and old_repeats > config.repeats and self._rows:
            diffs["repeats"] = (old_repeats, config.repeats)  # fewer fits than stored: refuse, never drop finished fits
        if diffs and self._rows:
            said = ", ".join(f"{k}: folder has {a!r}, asked {b!r}" for k, (a, b) in sorted(diffs.items()))
            raise ResumeError(
                f"{self.out} holds {len(self._rows)} finished models of a study with different settings "
                f"({said}); use another --out folder, or the same settings to resume"
                + (" (--repeats may grow: the fits already made are kept)" if "repeats" in diffs else "")
                + (" (--decoders and --attention may grow: the readouts already made are kept)"
                   if {"decoders", "attention"} & set(diffs) else "")
            )
        if diffs or old_repeats is not None or grown or not cfg_path.exists():  # new study, more fits or readouts
            self._write(cfg_path, json.dumps(record, indent=2, sort_keys=True).encode())
        self._drop_orphans()

    def _drop_orphans(self) -> None:
        """Remove model files whose models are not in results.csv (a crash between the two writes)."""
        models = self.out / "models"
        try:
            models.mkdir(exist_ok=True)
        except OSError as err:
            raise OutputError(f"cannot create {models}: {_reason(err)}") from err
        for f in sorted(models.glob("*.npz")):
            if not set(_model_ids(f)) & set(self._rows):
                f.unlink()

    def close(self) -> None:
        """Release the folder's lock and remove its ``.lock`` file.

        The lock is also released when the process ends, even by ``kill -9``
        (then an empty ``.lock`` file stays; the next run takes it over).
        """
        if self._lock is not None:
            try:
                (self.out / LOCK_NAME).unlink(missing_ok=True)  # while still holding the lock, see _lock
            except OSError:
                pass  # a read-only folder: the file stays, harmlessly
            self._lock.close()
            self._lock = None

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, path: Path, data: bytes) -> None:
        try:
            atomic_write_bytes(path, data)
        except OSError as err:
            raise OutputError(
                f"cannot write {path}: {_reason(err)}; the {len(self._rows)} models finished before are kept"
            ) from err

    @property
    def done(self) -> set[int]:
        """Ids of the models already in the table."""
        return set(self._rows)

    def rows(self) -> list[dict[str, Any]]:
        """All finished rows, sorted by model id."""
        return [self._rows[k] for k in sorted(self._rows)]

    def fits(self) -> dict[tuple[int, int], dict[str, Any]]:
        """Every stored fit, keyed by ``(model, repeat)`` (columns of :data:`FIT_COLUMNS`)."""
        return dict(self._fits)

    def add(self, fits: Iterable[dict[str, Any]], arrays: dict[str, NDArray], models: Iterable[int] = ()) -> None:
        """Record finished fits: the parameters of ``models`` first (their fit 0), then the tables.

        Parameters
        ----------
        fits : iterable of dict
            Rows of :data:`FIT_COLUMNS`.
        arrays : dict of str to ndarray with leading axis ``len(models)``
            Parameters of ``models`` (none when only later fits were made).
        models : iterable of int
            The models ``arrays`` belong to.
        """
        fits, models = list(fits), [int(m) for m in models]
        if not fits:
            return
        if models:
            buf = io.BytesIO()
            np.savez(buf, model=np.asarray(models), **arrays)
            self._write(self.out / "models" / f"{min(models):06d}-{max(models):06d}.npz", buf.getvalue())
        table = dict(self._fits)
        for f in fits:
            table[(f["model"], f["repeat"])] = {k: f[k] for k in FIT_COLUMNS}
        self._fits = table
        self._write_fits()
        if self.readouts_on:
            self._write_joined()
            return
        rows = aggregate_fits(self._fits, self.repeats)
        self._write(self.out / "results.csv", _csv_text(self.columns, [rows[k] for k in sorted(rows)]))
        self._rows = {r["model"]: r for r in read_results(self.out / "results.csv")}

    def _write_fits(self) -> None:
        """Write ``repeats.csv`` when results.csv cannot hold every fit (repeated fits, or a join of readouts)."""
        if self.repeats > 1 or self.readouts_on or (self.out / "repeats.csv").exists():
            table = self._fits
            self._write(self.out / "repeats.csv", _csv_text(FIT_COLUMNS, [table[k] for k in sorted(table)]))
            # keep the values as they are on disk, so a resumed run aggregates the same numbers
            self._fits = {(r["model"], r["repeat"]): r for r in read_results(self.out / "repeats.csv")}

    def _write_joined(self) -> None:
        """Render ``results.csv`` as the join of the trained rows and ``readouts.csv``."""
        self._rows = _typed(self._base, aggregate_fits(self._fits, self.repeats))
        joined = join_readouts(self._rows, self._readouts, self.decoders, self._base)
        self._write(self.out / "results.csv", _csv_text(self.columns, joined))

    def readouts(self) -> dict[tuple[int, str], dict[str, Any]]:
        """Every stored readout row, keyed by ``(model, decoder)`` (columns of :data:`READOUT_COLUMNS`)."""
        return dict(self._readouts)

    def joined_rows(self) -> list[dict[str, Any]]:
        """The rows of ``results.csv`` with other readouts (one per model and readout); empty without them."""
        if not self.readouts_on:
            return []
        return join_readouts(self._rows, self._readouts, self.decoders, self._base)

    def add_readouts(self, rows: Iterable[dict[str, Any]]) -> None:
        """Record finished readouts (rows of :data:`READOUT_COLUMNS`), then render ``results.csv`` again."""
        rows = list(rows)
        if not rows:
            return
        table = dict(self._readouts)
        for r in rows:
            table[(int(r["model"]), r["decoder"])] = {k: r[k] for k in READOUT_COLUMNS}
        order = sorted(table, key=lambda k: (k[0], READOUTS.index(k[1])))
        self._write(self.out / "readouts.csv", _csv_text(READOUT_COLUMNS, [table[k] for k in order]))
        self._readouts = {(r["model"], r["decoder"]): r for r in read_results(self.out / "readouts.csv")}
        self._write_fits()  # before results.csv stops holding the fits of a folder of single fits
        self._write_joined()

    def load_arrays(self) -> dict[int, dict[str, NDArray]]:
        """Parameters of every stored model, keyed by model id."""
        out: dict[int, dict[str, NDArray]] = {}
        for f in sorted((self.out / "models").glob("*.npz")):
            try:
                with np.load(f) as z:
                    for j, m in enumerate(z["model"]):
                        if int(m) in self._rows:
                            out[int(m)] = {k: z[k][j] for k in z.files if k != "model"}
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
                raise OutputError(_unreadable(f, err)) from err
        return out

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        """Write a JSON file atomically into the folder."""
        self._write(self.out / name, json.dumps(data, indent=2, sort_keys=True).encode())

    def write_bytes(self, name: str, data: bytes) -> None:
        """Write a file (e.g. an encoded PNG figure) atomically into the folder."""
        self._write(self.out / name, data)

    def write_png(self, name: str, rgb: NDArray[np.uint8]) -> None:
        """Write an RGB image atomically into the folder."""
        import imageio.v3 as iio

        self._write(self.out / name, iio.imwrite("<bytes>", rgb, extension=".png"))


def aggregate_fits(fits: dict[tuple[int, int], dict[str, Any]], repeats: int) -> dict[int, dict[str, Any]]:
    """One ``results.csv`` row per model from its fits ``0 .. repeats - 1``.

    The row takes the model's place, seed and best epoch from its first fit
    and the mean of every score over its fits; with ``repeats > 1`` it adds
    :data:`REPEAT_COLUMNS` (:func:`flimexplore.study.repeats.interval_columns`).
    With one fit the row is that fit's, as a study without repeats writes it.
    """
    from flimexplore.study.repeats import interval_columns

    by_model: dict[int, list[dict[str, Any]]] = {}
    for (m, r), f in sorted(fits.items()):
        if r < repeats:
            by_model.setdefault(m, []).append(f)
    out = {}
    for m, group in by_model.items():
        row = {k: group[0][k] for k in COLUMNS}
        if len(group) > 1:
            for k in COLUMNS[COLUMNS.index("val_dice"):]:
                row[k] = round(float(np.mean([g[k] for g in group])), 6)
        if repeats > 1:
            row |= interval_columns(np.array([g["val_dice"] for g in group], dtype=np.float64))
        out[m] = row
    return out


def _typed(columns: tuple[str, ...], rows: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Rows as they read back from a table of ``columns`` (the values a resumed run sees), by model."""
    text = _csv_text(columns, [rows[k] for k in sorted(rows)]).decode()
    return {r["model"]: r for r in (typed_row(raw) for raw in csv.DictReader(io.StringIO(text)))}


def _readouts_grown(diffs: dict[str, tuple[Any, Any]], config: StudyConfig) -> bool:
    """Drop ``decoders`` and ``attention`` from ``diffs`` when ``config`` only adds readouts; say if it did.

    Decoders may be added, and attention may be asked for (any decoder implies
    it); removing either would drop stored rows or columns, so it stays a difference.
    """
    if not {"decoders", "attention"} & set(diffs):
        return False
    old_dec = diffs["decoders"][0] if "decoders" in diffs else config.decoders
    old_dec = tuple(old_dec) if old_dec is not None else (TRAINED,)  # a folder from before readouts
    old_att = bool(diffs["attention"][0]) if "attention" in diffs else config.attention
    grows = set(old_dec) <= set(config.decoders) and (
        not other_readouts(old_dec, old_att) or other_readouts(config.decoders, config.attention)
    )
    if grows:
        diffs.pop("decoders", None)
        diffs.pop("attention", None)
    return grows


def _fit_of(row: dict[str, Any], repeat: int, cluster_seed: int) -> dict[str, Any]:
    """A fit row (:data:`FIT_COLUMNS`) from a results row of a single-fit study."""
    return {k: (repeat if k == "repeat" else cluster_seed if k == "cluster_seed" else row[k]) for k in FIT_COLUMNS}


def _csv_text(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([_format(r[c]) for c in columns])
    return text.getvalue().encode()


def _read_table(path: Path, allowed: tuple[tuple[str, ...], ...]) -> list[dict[str, Any]]:
    """Rows of a results table whose header is one of ``allowed``; OutputError otherwise."""
    try:
        rows = read_results(path)
        if rows and tuple(rows[0]) not in allowed:
            raise ValueError(f"its columns are not {', '.join(allowed[-1])}")
    except (OSError, ValueError, TypeError) as err:
        raise OutputError(
            f"cannot read {path}: {_reason(err)}; it was not written by this version of flimexplore. Use another --out folder"
        ) from err
    return rows


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__


def _unreadable(path: Path, err: BaseException) -> str:
    return (
        f"cannot read model file {path}: {_reason(err)}; delete it and run the same command again "
        "to recompute its models"
    )


def _model_ids(path: Path) -> list[int]:
    try:
        with np.load(path) as z:
            return [int(m) for m in z["model"]]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise OutputError(_unreadable(path, err)) from err


def _differences(cfg_path: Path, record: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Settings and data facts that differ between a folder's config.json and a new study."""
    try:
        old = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as err:
        raise OutputError(f"cannot read {cfg_path}: {_reason(err)}; use another --out folder") from err
    if not isinstance(old, dict) or not isinstance(old.get("config"), dict) or not isinstance(old.get("identity"), dict):
        raise OutputError(f"{cfg_path} was not written by flimexplore; use another --out folder")
    diffs = {}
    defaults = StudyConfig().to_dict()
    for part in ("config", "identity"):
        for k, v in record[part].items():
            if k not in old[part] and part == "config" and k in defaults and v == defaults[k]:
                continue  # a setting added later, at its default: the folder's study had it too
            if old[part].get(k) != v:
                diffs[k] = (old[part].get(k), v)
    return diffs


def _probe_writable(folder: Path) -> None:
    """Raise OSError now, rather than after the first chunk of models, if `folder` is read-only."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".probe.", suffix=TMP_SUFFIX)
    os.close(fd)
    os.unlink(tmp)


def _remove_temporaries(folder: Path) -> None:
    """Delete temporary files of our atomic writes that a crash or ``kill -9`` left behind."""
    ours = [folder.glob(f".{name}.*{TMP_SUFFIX}") for name in _OUR_FILES]
    ours.append((folder / "models").glob(f".*.npz.*{TMP_SUFFIX}"))
    for found in ours:
        for f in found:
            f.unlink(missing_ok=True)


def _lock(folder: Path) -> Any:
    """Hold an exclusive lock on the folder; raise OutputError if another study holds it.

    The holder deletes ``.lock`` before it releases it (:meth:`ResultStore.close`),
    so a lock taken on a file that was deleted meanwhile is worthless: then the
    file is opened again.
    """
    for _ in range(5):
        handle = open(folder / LOCK_NAME, "a+")  # noqa: SIM115 - kept open while the study runs
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, atomic writes still protect every file
            return handle
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            handle.close()
            raise OutputError(
                f"another running study is writing into {folder}; wait for it to finish, stop it, "
                "or use another --out folder"
            ) from err
        try:
            if os.stat(folder / LOCK_NAME).st_ino == os.fstat(handle.fileno()).st_ino:
                return handle
        except FileNotFoundError:
            pass
        handle.close()  # the previous holder removed the file between our open and flock
    raise OutputError(f"cannot lock {folder}: another study keeps starting and finishing there; try again")
