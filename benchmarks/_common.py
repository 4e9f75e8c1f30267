"""Helpers shared by the benchmark scripts: machine facts, peak memory, tables, JSON.

The scripts import this module by name (``python benchmarks/sweep.py`` puts
``benchmarks/`` first on ``sys.path``); it is not part of the package.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def parser(name: str, description: str) -> argparse.ArgumentParser:
    """The options every benchmark takes: --device, --json, --quick, --threads."""
    p = argparse.ArgumentParser(prog=f"benchmarks/{name}.py", description=description)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: %(default)s)")
    p.add_argument(
        "--json",
        type=Path,
        default=RESULTS / f"{name}.json",
        help="where to write the results (default: %(default)s)",
    )
    p.add_argument("--quick", action="store_true", help="a tiny smoke run (seconds), not a measurement")
    p.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)"
    )
    return p


def setup_threads(threads: int | None) -> int:
    """Apply ``--threads`` and return the number of intra-op threads in use."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def device(name: str, requested: str) -> str | None:
    """Resolve ``--device`` with the engine's rules; print its one-line error and return None if unusable."""
    from flimexplore.engine.batched import resolve_device
    from flimexplore.errors import DeviceError

    try:
        return str(resolve_device(requested))
    except DeviceError as err:
        print(f"{name}: {err}", file=sys.stderr)
        return None


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (``ru_maxrss``)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


def cpu_model() -> str:
    """The CPU's marketing name, or the platform's best guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str) -> dict[str, Any]:
    """Facts about where the numbers were taken (device, CPU, threads, versions, load)."""
    import torch

    info: dict[str, Any] = {
        "device": device,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def synchronize(device: str) -> None:
    """Wait for queued GPU work so that wall-clock times are honest."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: str) -> tuple[float, Any]:
    """Wall-clock seconds of one call, and its result."""
    synchronize(device)
    t0 = time.perf_counter()
    out = fn()
    synchronize(device)
    return time.perf_counter() - t0, out


def matmul_peak_gflops(device: str, size: int = 2048, repeats: int = 5) -> float:
    """Best float32 GFLOP/s of a square matrix product on this device and thread count."""
    import torch

    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b
    best = min(timed(lambda: a @ b, device)[0] for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table of ``rows`` (dicts) in the order of ``columns``."""

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(f"wrote {path}")
