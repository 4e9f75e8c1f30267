"""Smoke test of the benchmark scripts: each runs with --quick and writes the promised JSON keys."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

KEYS = {
    "advice": {"rows", "per_dataset", "variants", "machine", "n_random"},
    "sweep": {
        "n_models",
        "device",
        "sequential_s",
        "batched_s",
        "speedup",
        "max_abs_dice_diff",
        "models_per_s",
        "peak_rss_mb",
        "phases_32_models",
        "matmul_peak_gflop_per_s",
        "machine",
    },
    "latency": {
        "n_changes",
        "device",
        "median_s",
        "p90_s",
        "target_s",
        "meets_target",
        "peak_rss_mb",
        "machine",
    },
    "scaling": {"rows", "device", "time_exponent_markers", "time_exponent_images", "peak_rss_mb", "machine"},
    "dense": {
        "n_models",
        "device",
        "wall_s",
        "study_s",
        "models_per_s",
        "peak_rss_mb",
        "meets_target",
        "machine",
    },
    "markers": {"n_models", "device", "rows", "scribble_to_disk_ratio", "pixels_as_disks_identical", "peak_rss_mb", "machine"},
    "masks": {"rows", "device", "n_images", "peak_rss_mb", "machine"},
    "uncertainty": {"rows", "splits", "machine", "protocol", "peak_rss_mb"},
    "readouts": {"rows", "timing", "protocol", "peak_rss_mb", "machine"},
    "heatmap_png": {"old_png_s", "figure_s", "overview_s", "figure_to_old_ratio", "default_study_figures_s", "machine"},
    "loop": {"rows", "per_dataset", "settings", "target_s", "meets_target", "machine", "peak_rss_mb"},
    "process": {"rows", "walls", "ratio", "baseline", "command", "machine", "peak_rss_mb"},
    "plain": {
        "rows",
        "plain_s_per_model",
        "batched_s_per_model",
        "ratio",
        "n_plain_models",
        "dice_agreement",
        "machine",
        "peak_rss_mb",
    },
}
EXTRA_ARGS = {"process": ["--baseline", "HEAD"]}  # HEAD exists in a shallow clone too


@pytest.mark.parametrize("name", sorted(KEYS))
def test_benchmark_runs_quick_and_writes_its_json(name, tmp_path):
    out = tmp_path / f"{name}.json"
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), "--quick", "--device", "cpu", "--json", str(out),
         *EXTRA_ARGS.get(name, [])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert KEYS[name] <= result.keys()
    assert result["peak_rss_mb"] > 0
    if name == "sweep":
        assert result["n_models"] > 0 and result["max_abs_dice_diff"] <= 1e-3
        assert {p["phase"] for p in result["phases_32_models"]} == {"train", "conv", "score"}
    if name == "scaling":
        assert {r["sweep"] for r in result["rows"]} == {"markers", "validation"}
    if name == "markers":
        assert result["pixels_as_disks_identical"] and result["scribble_to_disk_ratio"] > 0
        assert len(result["scribble_to_disk_ratio_per_round"]) == 1 and result["warmup_rounds"] == 0
    if name == "process":  # both codes ran and were profiled, phase by phase
        assert {r["code"] for r in result["rows"]} == {"now", "baseline"}
        assert all(r["engine_evaluate_s"] > 0 and r["figures_and_summary_s"] > 0 for r in result["rows"])
    if name == "loop":  # three policies on the quick dataset, NoC and areas in range, every step timed
        assert {r["policy"] for r in result["rows"]} == {"random", "advised", "error"}
        k = result["settings"]["max_markers"]
        assert all(2 <= r["noc80"] <= k + 1 and 0 <= r["area"] <= 1 for r in result["rows"])
        fish = result["per_dataset"]["fish"]
        assert fish["refit_s_median"] > 0 and fish["timed_now"] == fish["steps"] and len(fish["comparisons"]) == 3
    if name == "readouts":
        assert {r["decoder"] for r in result["rows"]} == {"trained", "vanilla", "probability", "mean", "labeled"}
        assert all(r["s_per_model"] > 0 and r["val_dice_min"] <= r["val_dice_max"] for r in result["rows"])
    if name == "masks":  # thresholded JPEG masks of the fish preset equal the PNG ones; "non-zero" did not
        by = {r["masks"]: r for r in result["rows"]}
        assert by["jpeg75"]["pixels_differing_from_png"] == 0 and by["jpeg40"]["val_dice_mean"] == by["png"]["val_dice_mean"]
        assert by["jpeg40-nonzero"]["object_share"] > 0.5
    if name == "plain":  # two plain models timed and scored against the engine's rows of the same models
        assert result["n_plain_models"] == len(result["rows"]) == 2 and result["ratio"] > 1
        assert all(0 <= r["plain_val_dice"] <= 1 and 0 <= r["plain_test_dice"] <= 1 for r in result["rows"])
        assert all(1 <= r["plain_best_epoch"] <= result["config"]["epochs"] for r in result["rows"])
        assert 0 <= result["dice_agreement"]["val"]["mean_abs_diff"] <= 1
    if name == "dense":
        assert result["n_models"] > 0 and result["heatmaps"] == ["heatmap_split0.png"]
