"""Regenerate the heatmap figures shown in the README from a real default study.

    python scripts/make_readme_heatmaps.py [--out runs/readme-heatmaps]

Runs ``flimexplore study`` with the default settings (the README's first
command: fish, marked image 0, 5 object markers x 30 background markers, 20
epochs, seed 0, fixed 0-1 colour scale) and copies ``heatmap_split0.png`` and
``heatmap_overview.png`` to ``docs/img/``.  A rerun resumes the stored study
and only redraws the figures.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from flimexplore.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]
COPIES = {"heatmap_split0.png": "study-heatmap-split0.png", "heatmap_overview.png": "study-heatmap-overview.png"}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "runs" / "readme-heatmaps"))
    args = p.parse_args()
    status = cli(["study", "--out", args.out])
    if status != 0:
        return status
    for name, target in COPIES.items():
        shutil.copyfile(Path(args.out) / name, ROOT / "docs" / "img" / target)
        print(f"docs/img/{target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
