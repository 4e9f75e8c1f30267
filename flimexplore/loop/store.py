"""The results folder of a simulated loop: its settings and every finished run, stored atomically.

Layout::

    config.json               the settings every run shares, and the data's identity
    runs/<policy>-r<k>.json   one finished run (its steps and markers), written when the run ends

A run is written in one atomic step (:func:`flimexplore.study.store.atomic_write_bytes`:
a temporary file, then a rename), so an interrupted loop leaves whole runs
or none.  Reopening a folder with other shared settings (data, model,
``--max-markers``, ``--next-image-after``, ``--candidates``) is refused,
naming the differences; other policies, repeats or targets are fine, since
runs are kept per (policy, repeat).  Two loops must not write into one
folder at the same time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flimexplore.errors import OutputError, ResumeError
from flimexplore.loop.config import LoopConfig
from flimexplore.study.store import atomic_write_bytes

__all__ = ["LoopStore", "run_name"]


def run_name(policy: str, repeat: int) -> str:
    """File name of one run's record."""
    return f"{policy}-r{int(repeat)}.json"


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()


class LoopStore:
    """A loop's results folder, opened for resuming.

    Parameters
    ----------
    out : path-like
        The folder (created if missing).
    config : LoopConfig
        Settings with the radius resolved.
    identity : dict
        The data's identity (``StudyContext.identity()``).

    Raises
    ------
    ResumeError
        If the folder holds runs of a loop with other shared settings or data, or an unreadable run.
    OutputError
        If the folder cannot be created or written.
    """

    def __init__(self, out: str | os.PathLike[str], config: LoopConfig, identity: dict[str, Any]) -> None:
        self.folder = Path(out)
        record = {"loop": config.shared(), "identity": identity}
        try:
            (self.folder / "runs").mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(f"cannot create the results folder {self.folder}: {err}") from err
        path = self.folder / "config.json"
        if path.exists():
            try:
                stored = json.loads(path.read_text())
            except (OSError, ValueError) as err:
                raise ResumeError(f"{path} cannot be read ({err}); pick another --out or remove the folder") from err
            if stored != json.loads(_json_bytes(record)):
                diff = _differences(stored, record)
                raise ResumeError(
                    f"{self.folder} holds runs of a loop with different settings ({diff}); rerun with the same "
                    "settings to resume, or pick another --out"
                )
            return
        self.write_bytes("config.json", _json_bytes(record))

    def write_bytes(self, name: str, data: bytes) -> None:
        """Write a file of the folder atomically (its sub-folders are created)."""
        path = self.folder / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, data)
        except OSError as err:
            raise OutputError(f"cannot write {path}: {err}") from err

    def runs(self) -> dict[tuple[str, int], dict[str, Any]]:
        """Every stored run, keyed by (policy, repeat)."""
        out = {}
        for path in sorted((self.folder / "runs").glob("*.json")):
            try:
                record = json.loads(path.read_text())
                key = (str(record["policy"]), int(record["repeat"]))
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise ResumeError(f"{path} is not a finished run ({err}); delete it and rerun to compute it again") from err
            out[key] = record
        return out

    def add(self, record: dict[str, Any]) -> None:
        """Store one finished run."""
        self.write_bytes(f"runs/{run_name(record['policy'], record['repeat'])}", _json_bytes(record))


def _differences(stored: dict[str, Any], record: dict[str, Any]) -> str:
    """Settings that differ between a folder's config.json and the asked loop, as ``name: old -> new``."""
    old = {**stored.get("loop", {}), **stored.get("loop", {}).get("study", {}), **stored.get("identity", {})}
    new = {**record["loop"], **record["loop"]["study"], **record["identity"]}
    names = sorted(k for k in set(old) | set(new) if k != "study" and old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in names) or "the stored settings"
