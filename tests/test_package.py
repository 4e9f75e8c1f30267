import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_importing_the_package_is_cheap():
    code = "import sys, flimexplore; flimexplore.StudyConfig; print(sorted(m for m in ('torch', 'plotly', 'ipywidgets') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_public_names_resolve():
    import flimexplore

    for name in flimexplore.__all__:
        assert getattr(flimexplore, name) is not None


LINT = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")


@pytest.mark.skipif(LINT is None, reason="import-linter is not installed (pip install -e '.[dev]')")
def test_layering_contracts_hold():
    proc = subprocess.run([LINT], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
