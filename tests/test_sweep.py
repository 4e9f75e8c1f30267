"""Tests of the protocol sweep in this process: plan, files, resume after the driver is killed."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from flimexplore.errors import ConfigError
from flimexplore.study.config import StudyConfig
from flimexplore.study.store import read_results
from flimexplore.sweep import parse_images, plan_sweep, read_sweep, run_sweep, run_sweep_all

ROOT = Path(__file__).resolve().parents[1]
TINY = StudyConfig(n_images=8, splits=1, n_bg=3, epochs=2)


def drain(gen):
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return stop.value, events


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted in-process sweep of fish, marked images 0 and 1 (6 models)."""
    out = tmp_path_factory.mktemp("sweep") / "ref"
    result, events = drain(run_sweep(["fish"], "0,1", TINY, out, device="cpu", model_chunk=1))
    return out, result, events


def test_parse_images():
    assert parse_images("all") == (0, 1, 2)
    assert parse_images("0, 2") == (0, 2)
    assert parse_images(1) == (1,)
    for bad in ("3", "0,0", "x", "", [True]):
        with pytest.raises(ConfigError, match="images"):
            parse_images(bad)


def test_plan_has_one_folder_per_dataset_and_image(tmp_path):
    folder = tmp_path / "my data"
    folder.mkdir()
    tasks = plan_sweep(["fish", str(folder)], "0,2", TINY.replace(epochs=3))
    assert [t.folder.split("/")[1] for t in tasks] == ["image0", "image2"] * 2
    assert tasks[0].folder == "fish/image0" and tasks[2].folder.startswith("my_data-")
    assert all(t.config.epochs == 3 for t in tasks) and [t.config.image for t in tasks] == [0, 2, 0, 2]
    with pytest.raises(ConfigError, match="repeat"):
        plan_sweep(["fish", "Fish"])
    with pytest.raises(ConfigError, match="at least one dataset"):
        plan_sweep([])


def test_sweep_writes_study_folders_csv_and_json(reference, tmp_path):
    out, result, events = reference
    assert result.complete and result.computed == 6 and len(result.summaries) == 2
    rows = read_sweep(out)
    assert len(rows) == 6 and {r["dataset"] for r in rows} == {"fish"}
    assert [(r["image"], r["model"]) for r in rows] == [(i, m) for i in (0, 1) for m in range(3)]
    report = json.loads((out / "sweep.json").read_text())
    for image in (0, 1):
        entry = report["datasets"]["fish"][f"image{image}"]
        val = np.array([r["val_dice"] for r in rows if r["image"] == image])
        assert entry["complete"] and entry["n_models"] == 3
        assert entry["val_dice_min"] == val.min() and entry["val_dice_max"] == val.max()
        assert entry["val_dice_mean"] == pytest.approx(val.mean(), abs=1e-12)
    # the study folders are plain `flimexplore study` folders: same rows as a study run alone
    from flimexplore.study.run import run_study_all

    alone = run_study_all(TINY.replace(dataset="fish", image=1), tmp_path / "alone", device="cpu", model_chunk=1)
    assert read_results(out / "fish/image1/results.csv") == alone.rows
    assert (out / "fish/image1/heatmap_split0.png").exists() and (out / "fish/image1/summary.json").exists()
    assert events[-1].done == events[-1].total == 6 and events[-1].tasks_done == 2


def test_rerun_of_a_complete_sweep_computes_nothing(reference):
    out, _, _ = reference
    before = (out / "fish/image0/results.csv").read_bytes()
    result, events = drain(run_sweep(["fish"], "0,1", TINY, out, device="cpu", model_chunk=1))
    assert result.computed == 0 and result.complete and len(events) == 1
    assert (out / "fish/image0/results.csv").read_bytes() == before


def test_killed_driver_resumes_without_recomputing(reference, tmp_path):
    ref_out, _, _ = reference
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "flimexplore", "sweep", "--dataset", "fish", "--images", "0,1", "--n-images", "8",
           "--splits", "1", "--n-bg", "3", "--epochs", "2", "--chunk", "1", "--device", "cpu", "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = out / "fish/image0/results.csv"
    deadline = time.monotonic() + 400  # seconds on an idle CI machine; minutes on a loaded one
    while time.monotonic() < deadline and proc.poll() is None:
        if first.exists() and len(read_results(first)) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    stored = sum(len(read_results(p)) for p in out.glob("fish/image*/results.csv"))
    assert 2 <= stored < 6, f"the kill came too late or too early ({stored} models stored): {err.decode()[-2000:]}"
    result, events = drain(run_sweep(["fish"], "0,1", TINY, out, device="cpu", model_chunk=1))
    assert result.computed == 6 - stored  # nothing finished is trained again
    assert events[1].done == stored
    ours, ref = read_sweep(out), read_sweep(ref_out)
    assert [(r["image"], r["model"], r["seed"]) for r in ours] == [(r["image"], r["model"], r["seed"]) for r in ref]
    assert max(abs(a["val_dice"] - b["val_dice"]) for a, b in zip(ours, ref, strict=True)) <= 1e-6


def test_cli_sweep_without_dask_names_the_extra(monkeypatch, capsys, tmp_path):
    import builtins

    from flimexplore.cli.main import main

    real = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name == "distributed" or name.startswith("distributed."):
            raise ImportError("No module named 'distributed'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    code = main(["sweep", "--dataset", "fish", "--workers", "2", "--out", str(tmp_path / "s")])
    assert code == 2
    assert 'pip install "flimexplore[dask]"' in capsys.readouterr().err


def test_executor_path_matches_in_process(reference, tmp_path):
    """The driver/worker path (any concurrent.futures executor) writes the same rows and complete folders."""
    from concurrent.futures import ThreadPoolExecutor

    ref_out, _, _ = reference
    with ThreadPoolExecutor(1) as ex:
        result = run_sweep_all(["fish"], "0", TINY, tmp_path / "exe", executor=ex, device="cpu", model_chunk=1)
    assert result.complete and result.computed == 3
    ours = read_sweep(tmp_path / "exe")
    ref = [r for r in read_sweep(ref_out) if r["image"] == 0]
    assert [(r["model"], r["seed"], r["bg_row"]) for r in ours] == [(r["model"], r["seed"], r["bg_row"]) for r in ref]
    assert max(abs(a["val_dice"] - b["val_dice"]) for a, b in zip(ours, ref, strict=True)) <= 1e-6
    summary = json.loads((tmp_path / "exe/fish/image0/summary.json").read_text())
    assert summary["complete"] and summary["n_models"] == 3
    assert (tmp_path / "exe/fish/image0/heatmap_split0.png").exists()
