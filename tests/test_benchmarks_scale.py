"""Smoke tests of the scale benchmarks: benchmarks/gpu.sh on the CPU, and sweep.py --workload W2 --quick."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run(cmd, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHON=sys.executable)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def test_gpu_script_runs_on_the_cpu_quick(tmp_path):
    out = tmp_path / "gpu.json"
    proc = run(["bash", str(ROOT / "benchmarks/gpu.sh"), "--device", "cpu", "--quick", "--json", str(out)], tmp_path)
    result = json.loads(out.read_text())
    assert result["device"] == "cpu" and result["quick"]
    w1, w2 = result["w1"], result["w2"]
    assert w1["n_models"] == 3 and w1["agrees_with_cpu"] and w1["max_abs_dice_diff_vs_cpu"] == 0.0
    assert result["precision"] == {"tf32": {"skipped": "CUDA only"}, "bf16": {"skipped": "CUDA only"}}
    assert w2["complete"] and w2["models_done"] == w2["models_total"] == 2
    assert "W1 on cpu" in proc.stdout


def test_gpu_script_refuses_cuda_without_it(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(ROOT / "benchmarks/gpu.sh"), "--quick", "--json", str(tmp_path / "g.json")],
                          capture_output=True, text=True, timeout=120, check=False, env=env)
    assert proc.returncode == 2 and "CUDA is not available" in proc.stderr
    assert not (tmp_path / "g.json").exists()


def test_w2_benchmark_quick_writes_the_scaling_tables(tmp_path):
    out = tmp_path / "w2.json"
    run([sys.executable, str(ROOT / "benchmarks/sweep.py"), "--workload", "W2", "--quick", "--device", "cpu",
         "--json", str(out)], tmp_path)
    result = json.loads(out.read_text())
    assert result["workload"] == "quick" and result["s_per_model"] > 0 and result["peak_rss_mb"] > 0
    assert [p["size"] for p in result["by_side"]] == [64, 96]
    assert [p["n_images"] for p in result["by_val"]] == [10, 14, 28]
    full = result["full"]  # the whole (tiny) protocol ran as one `flimexplore sweep` command
    assert full["models"] == 2 and not full["resumed"] and full["peak_rss_mb"] > 0
    assert full["command"].startswith("flimexplore sweep --dataset eggs")
    assert full["sweep_json"]["n_complete"] == 1 and full["sweep_json"]["n_models"] == 2
    assert result["s_per_model"] == full["s_per_model"]
