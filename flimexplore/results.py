"""The on-disk store of a study: results table, model parameters, summary, resume.

Layout of an output folder::

    config.json          the study's settings (and the dataset's identity)
    results.csv          one row per finished model, sorted by model id
    models/<a>-<b>.npz   parameters of models a..b (for figures and projections)
    summary.json         written when the study completes
    heatmap_split<k>.png one heatmap per object marker

Every file is written atomically (a temporary file in the same folder, then
``os.replace``), so a crash or ``kill -9`` leaves either the old or the new
version, never half a row.  Reopening a folder with the same settings
resumes; with different settings it refuses and names the differences.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from flimexplore.config import StudyConfig
from flimexplore.errors import ResumeError

__all__ = ["COLUMNS", "ResultStore", "atomic_write_bytes", "read_results"]

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
_INT_COLUMNS = {"model", "image", "split", "bg_index", "obj_row", "obj_col", "bg_row", "bg_col", "radius", "seed", "best_epoch"}


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _format(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):.6f}"
    return str(value)


def read_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a ``results.csv`` written by a study into a list of typed rows."""
    rows = []
    with open(path, newline="") as fh:
        for raw in csv.DictReader(fh):
            rows.append(
                {
                    k: (int(v) if k in _INT_COLUMNS else v if k == "image_stem" else float(v))
                    for k, v in raw.items()
                }
            )
    return rows


class ResultStore:
    """An output folder that collects a study's results as models finish.

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
        If the folder holds a study with different settings.
    """

    def __init__(self, out: str | os.PathLike, config: StudyConfig, identity: dict[str, Any]) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "models").mkdir(exist_ok=True)
        record = {"config": config.to_dict(), "identity": identity}
        cfg_path = self.out / "config.json"
        if cfg_path.exists():
            old = json.loads(cfg_path.read_text())
            diffs = {
                k: (old.get("config", {}).get(k), v)
                for k, v in record["config"].items()
                if old.get("config", {}).get(k) != v
            }
            diffs.update(
                {k: (old.get("identity", {}).get(k), v) for k, v in identity.items() if old.get("identity", {}).get(k) != v}
            )
            if diffs:
                said = ", ".join(f"{k}: folder has {a!r}, asked {b!r}" for k, (a, b) in sorted(diffs.items()))
                raise ResumeError(
                    f"{self.out} holds a study with different settings ({said}); "
                    "use another --out folder or the same settings to resume"
                )
        else:
            atomic_write_bytes(cfg_path, json.dumps(record, indent=2, sort_keys=True).encode())
        self._rows: dict[int, dict[str, Any]] = {}
        if (self.out / "results.csv").exists():
            self._rows = {r["model"]: r for r in read_results(self.out / "results.csv")}

    @property
    def done(self) -> set[int]:
        """Ids of the models already in the table."""
        return set(self._rows)

    def rows(self) -> list[dict[str, Any]]:
        """All finished rows, sorted by model id."""
        return [self._rows[k] for k in sorted(self._rows)]

    def add(self, rows: Iterable[dict[str, Any]], arrays: dict[str, NDArray]) -> None:
        """Record finished models: their parameters first, then their rows."""
        rows = list(rows)
        if not rows:
            return
        ids = [r["model"] for r in rows]
        buf = io.BytesIO()
        np.savez(buf, model=np.asarray(ids), **arrays)
        atomic_write_bytes(self.out / "models" / f"{min(ids):06d}-{max(ids):06d}.npz", buf.getvalue())
        for r in rows:
            self._rows[r["model"]] = {k: r[k] for k in COLUMNS}
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in self.rows():
            writer.writerow([_format(r[k]) for k in COLUMNS])
        atomic_write_bytes(self.out / "results.csv", text.getvalue().encode())
        self._rows = {r["model"]: r for r in read_results(self.out / "results.csv")}

    def load_arrays(self) -> dict[int, dict[str, NDArray]]:
        """Parameters of every stored model, keyed by model id."""
        out: dict[int, dict[str, NDArray]] = {}
        for f in sorted((self.out / "models").glob("*.npz")):
            with np.load(f) as z:
                for j, m in enumerate(z["model"]):
                    if int(m) in self._rows:
                        out[int(m)] = {k: z[k][j] for k in z.files if k != "model"}
        return out

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        """Write a JSON file atomically into the folder."""
        atomic_write_bytes(self.out / name, json.dumps(data, indent=2, sort_keys=True).encode())

    def write_png(self, name: str, rgb: NDArray[np.uint8]) -> None:
        """Write an RGB image atomically into the folder."""
        import imageio.v3 as iio

        atomic_write_bytes(self.out / name, iio.imwrite("<bytes>", rgb, extension=".png"))
