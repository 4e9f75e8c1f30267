"""Nothing finished is lost: kill -9, Ctrl-C and Stop all resume to the uninterrupted result (issue 5)."""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from flimexplore.cli import main
from flimexplore.study.config import StudyConfig
from flimexplore.study.context import StudyContext
from flimexplore.study.run import StopStudy, run_study, run_study_all
from flimexplore.study.store import atomic_write_bytes, read_results

# 16 models in 8 chunks of 2: the first chunk is slow (warm-up), the others take a fraction of a second each.
ARGS = [
    "study",
    "--n-images",
    "12",
    "--splits",
    "2",
    "--n-bg",
    "8",
    "--epochs",
    "3",
    "--seed",
    "4",
    "--chunk",
    "2",
]
TOTAL = 16
# Like `python -m flimexplore`, but with Python's Ctrl-C handler even where the test runner ignores SIGINT
# (background jobs of a non-interactive shell inherit SIG_IGN, as a terminal's foreground job would not).
CTRL_C_ABLE = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from flimexplore.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """results.csv of the study run once, uninterrupted."""
    out = tmp_path_factory.mktemp("reference") / "o"
    assert main([*ARGS, "--out", str(out), "--quiet"]) == 0
    return (out / "results.csv").read_bytes()


def start(out, launcher):
    cmd = (
        [sys.executable, "-m", "flimexplore"] if launcher == "module" else [sys.executable, "-c", CTRL_C_ABLE]
    )
    return subprocess.Popen(
        [*cmd, *ARGS, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def wait_for_first_chunk(proc, out, timeout=120.0):
    t_end = time.monotonic() + timeout
    while not (out / "results.csv").exists():
        if proc.poll() is not None:
            pytest.fail(f"the study ended before its first chunk landed: {proc.stderr.read()}")
        if time.monotonic() > t_end:
            proc.kill()
            pytest.fail("no chunk landed in time")
        time.sleep(0.005)


def snapshot(out):
    """inode and mtime of every stored model file: a file rewritten on resume would change."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (out / "models").glob("*.npz")}


def leftovers(out):
    return [p.name for p in [*out.glob(".*.tmp"), *(out / "models").glob(".*.tmp")]]


def test_kill_9_then_rerun_gives_identical_results(tmp_path, reference, capsys):
    out = tmp_path / "o"
    proc = start(out, "module")
    wait_for_first_chunk(proc, out)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    rows = read_results(out / "results.csv")  # never half a row: every write is atomic
    assert 0 < len(rows) < TOTAL and len(rows) % 2 == 0, "the kill must land mid-study"
    assert [r["model"] for r in rows] == list(range(len(rows)))
    before = snapshot(out)

    assert main([*ARGS, "--out", str(out)]) == 0  # the same command, run in this process to save a start-up
    assert f"{TOTAL} models on cpu (batched); {len(rows)} already done" in capsys.readouterr().err
    assert (out / "results.csv").read_bytes() == reference
    after = snapshot(out)
    assert all(after[name] == stamp for name, stamp in before.items()), "finished models were recomputed"
    assert len(after) == TOTAL // 2 and leftovers(out) == []


def test_ctrl_c_exits_130_and_the_same_command_resumes(tmp_path, reference, capsys):
    out = tmp_path / "o"
    proc = start(out, "ctrl-c")
    wait_for_first_chunk(proc, out)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("flimexplore: interrupted; ") and "run the same command again to resume" in last
    kept = int(last.split("interrupted; ")[1].split(" of ")[0])
    rows = read_results(out / "results.csv")
    assert f" of {TOTAL} models are kept in {out}" in last and 2 <= kept <= len(rows) < TOTAL

    assert main([*ARGS, "--out", str(out)]) == 0
    assert f"{len(rows)} already done" in capsys.readouterr().err
    assert (out / "results.csv").read_bytes() == reference


# --- the explorer's Stop, at the API level ------------------------------------------------------------

CFG = StudyConfig(dataset="fish", n_images=12, splits=2, n_bg=4, epochs=3, seed=2)


@pytest.fixture(scope="module")
def ctx():
    return StudyContext(CFG, device="cpu")


@pytest.fixture(scope="module")
def full(ctx, tmp_path_factory):
    """The study run once, uninterrupted: its result, its results.csv and its folder (copy it, do not change it)."""
    out = tmp_path_factory.mktemp("full") / "o"
    return run_study_all(CFG, out, context=ctx, model_chunk=3), (out / "results.csv").read_bytes(), out


def counting_evaluate(monkeypatch):
    """Record the seeds of every model the engine trains."""
    trained, real = [], StudyContext.evaluate

    def evaluate(self, obj, bg, seeds, *args, **kwargs):
        trained.extend(seeds)
        return real(self, obj, bg, seeds, *args, **kwargs)

    monkeypatch.setattr(StudyContext, "evaluate", evaluate)
    return trained


def test_stop_returns_the_partial_result_and_keeps_the_rows(tmp_path, ctx, full, monkeypatch):
    out = tmp_path / "o"
    gen = run_study(CFG, out, context=ctx, model_chunk=3)
    assert next(gen).done == 0
    ev = next(gen)
    while ev.inside is not None:  # progress inside the first chunk (slow machines)
        ev = next(gen)
    assert ev.done == 3
    with pytest.raises(StopIteration) as stop:
        gen.throw(StopStudy())
    partial = stop.value.value
    assert not partial.complete and [r["model"] for r in partial.rows] == [0, 1, 2]
    assert read_results(out / "results.csv") == partial.rows and set(partial.arrays) == {0, 1, 2}
    assert not (out / "summary.json").exists()

    trained = counting_evaluate(monkeypatch)
    gen = run_study(CFG, out, context=ctx, model_chunk=3)
    first = next(gen)
    assert first.done == 3 and "3 already done" in first.message
    with pytest.raises(StopIteration) as stop:
        while True:
            next(gen)
    resumed = stop.value.value
    assert len(trained) == 8 - 3, "finished models were trained again"
    assert resumed.complete and (out / "results.csv").read_bytes() == full[1]
    for m, arrays in full[0].arrays.items():
        for key, value in arrays.items():
            np.testing.assert_array_equal(resumed.arrays[m][key], value, err_msg=f"model {m} {key}")


def test_stop_at_the_first_event_returns_an_empty_result(tmp_path, ctx):
    gen = run_study(CFG, tmp_path / "o", context=ctx)
    next(gen)
    with pytest.raises(StopIteration) as stop:
        gen.throw(StopStudy())
    assert stop.value.value.rows == [] and not stop.value.value.complete
    assert run_study_all(CFG, tmp_path / "o", context=ctx).complete  # the folder is free again


def test_a_crash_between_the_two_writes_of_a_chunk(tmp_path, ctx, full, monkeypatch):
    """kill -9 after a chunk's model file but before its rows: the orphan is removed and recomputed."""
    out = shutil.copytree(full[2], tmp_path / "o")
    lines = (out / "results.csv").read_bytes().splitlines(keepends=True)
    (out / "results.csv").write_bytes(b"".join(lines[:-2]))  # rows of models 6 and 7 never landed
    (out / ".results.csv.k9x.tmp").write_bytes(b"half a ro")  # a temporary file kill -9 left behind
    (out / "models" / ".000006-000007.npz.k9x.tmp").write_bytes(b"PK")
    trained = counting_evaluate(monkeypatch)
    assert run_study_all(CFG, out, context=ctx, model_chunk=3).complete
    assert len(trained) == 2
    assert (out / "results.csv").read_bytes() == full[1] and leftovers(out) == []


def test_a_lost_model_file_is_recomputed(tmp_path, ctx, full, monkeypatch):
    out = shutil.copytree(full[2], tmp_path / "o")
    (out / "models" / "000003-000005.npz").unlink()
    trained = counting_evaluate(monkeypatch)
    res = run_study_all(CFG, out, context=ctx, model_chunk=3)
    assert len(trained) == 3 and set(res.arrays) == set(range(8))
    assert (out / "results.csv").read_bytes() == full[1]


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "results.csv"
    path.write_bytes(b"old\n")

    def crash(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(path, b"new\n")
    assert path.read_bytes() == b"old\n" and [p.name for p in tmp_path.iterdir()] == ["results.csv"]
