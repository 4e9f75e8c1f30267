"""Tests of the sweep on a 2-worker Dask LocalCluster: same results as in-process, and a killed worker is survived."""

import os
import signal
import time

import pytest

from flimexplore.study.config import StudyConfig
from flimexplore.sweep import read_sweep, run_sweep, run_sweep_all

pytest.importorskip("distributed")
pytestmark = pytest.mark.slow

TINY = StudyConfig(n_images=8, splits=1, n_bg=3, epochs=2)


@pytest.fixture(scope="module")
def client():
    from flimexplore.sweep import dask_client

    c = dask_client(workers=2)
    yield c
    cluster = c.cluster
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def in_process(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "inproc"
    run_sweep_all(["fish"], "0,1", TINY, out, device="cpu", model_chunk=1)
    return read_sweep(out)


def same(a, b):
    assert [(r["image"], r["model"], r["seed"], r["bg_row"], r["bg_col"], r["best_epoch"]) for r in a] == [
        (r["image"], r["model"], r["seed"], r["bg_row"], r["bg_col"], r["best_epoch"]) for r in b
    ]
    for part in ("val", "test"):
        assert max(abs(x[f"{part}_dice"] - y[f"{part}_dice"]) for x, y in zip(a, b, strict=True)) <= 1e-6


def test_two_workers_match_in_process(client, in_process, tmp_path):
    out = tmp_path / "dask"
    result = run_sweep_all(["fish"], "0,1", TINY, out, executor=client, device="cpu", model_chunk=1)
    assert result.complete and result.computed == 6
    same(read_sweep(out), in_process)
    for image in (0, 1):  # the driver wrote complete study folders
        assert (out / f"fish/image{image}/summary.json").exists()
        assert (out / f"fish/image{image}/heatmap_split0.png").exists()
    # a concurrent.futures executor (here: Dask's own) takes the same path
    exe = tmp_path / "executor"
    run_sweep_all(["fish"], "0", TINY, exe, executor=client.get_executor(), device="cpu", model_chunk=1)
    same(read_sweep(exe), [r for r in in_process if r["image"] == 0])


def test_worker_killed_mid_task_is_retried(client, in_process, tmp_path):
    gen = run_sweep(["fish"], "0,1", TINY, tmp_path / "killed", executor=client, device="cpu", model_chunk=1)
    killed = None
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            result = stop.value
            break
        if killed is None:
            deadline = time.monotonic() + 30
            while killed is None and time.monotonic() < deadline:
                busy = {w: keys for w, keys in client.processing().items() if any("-models-" in str(k) for k in keys)}
                if busy:
                    killed = next(iter(busy))
                    pid = client.run(os.getpid, workers=[killed])[killed]
                    os.kill(pid, signal.SIGKILL)  # the worker process dies mid-task
                time.sleep(0.01)
    assert killed is not None, "no chunk of models was ever running"
    assert result.complete and result.computed == 6
    same(read_sweep(tmp_path / "killed"), in_process)
