"""Simulated loops on a 2-worker Dask LocalCluster: the same markers and curves as in this process."""

import csv

import pytest

from flimexplore.loop.config import LoopConfig
from flimexplore.loop.run import simulate_all
from flimexplore.loop.sweep import simulate_sweep_all
from flimexplore.study.config import StudyConfig

pytest.importorskip("distributed")
pytestmark = pytest.mark.slow

LOOP = LoopConfig(study=StudyConfig(dataset="fish", n_images=16, seed=3, epochs=3), policies=("random", "advised", "error"),
                  max_markers=3, repeats=1, candidates=2)


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_two_dask_workers_compute_the_runs_the_driver_stores(tmp_path):
    from flimexplore.sweep import dask_client

    client = dask_client(workers=2)
    try:
        results = simulate_sweep_all(["fish"], "0,1", LOOP, tmp_path / "dask", executor=client, device="cpu")
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()
    assert sorted(results) == ["fish/image0", "fish/image1"]
    for k in (0, 1):
        here = simulate_all(LOOP.replace(study=LOOP.study.replace(image=k)), tmp_path / f"here{k}", device="cpu")
        folder = tmp_path / "dask" / "fish" / f"image{k}"
        assert (folder / "markers.csv").read_bytes() == (tmp_path / f"here{k}" / "markers.csv").read_bytes()
        for a, b in zip(rows(folder / "curve.csv"), rows(tmp_path / f"here{k}" / "curve.csv"), strict=True):
            assert abs(float(a["val_dice"]) - float(b["val_dice"])) <= 1e-6  # single-threaded workers may round apart
        assert here.complete and (folder / "curve.png").exists()
