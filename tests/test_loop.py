"""The simulated annotation loop (issue 18 §2): curves, markers needed, resume, determinism, the CLI, sweeps."""

import concurrent.futures as cf
import csv
import dataclasses
import json

import imageio.v3 as iio
import numpy as np
import pytest

from flimexplore.cli import main
from flimexplore.data import load_dataset
from flimexplore.errors import ConfigError
from flimexplore.loop.config import LoopConfig
from flimexplore.loop.noc import band, curve_area, markers_needed, summarise
from flimexplore.loop.run import LoopContext, simulate, simulate_all
from flimexplore.loop.sweep import simulate_sweep_all
from flimexplore.study.config import StudyConfig
from flimexplore.study.progress import StopStudy
from flimexplore.study.run import run_study_all

STUDY = StudyConfig(dataset="fish", n_images=16, seed=3, epochs=4)
LOOP = LoopConfig(study=STUDY, max_markers=4, repeats=2, candidates=3)
FILES = ("curve.csv", "noc.csv", "markers.csv", "curve.png")


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def files(folder):
    """Every output file of a loop folder but the timings (summary.json) and the run records, as bytes."""
    found = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    return {k: v for k, v in found.items() if k in FILES or k.startswith("seeds/")}


@pytest.fixture(scope="module")
def context():
    return LoopContext.prepare(LOOP, "cpu")


@pytest.fixture(scope="module")
def finished(tmp_path_factory, context):
    out = tmp_path_factory.mktemp("loop")
    result = simulate_all(LOOP, out, context=context)
    return out, result


def test_markers_needed_and_area_on_a_hand_made_curve():
    n = [2, 3, 4, 5, 6]
    assert markers_needed(n, [0.6, 0.81, 0.78, 0.86, 0.91], 0.80, 6) == 3
    assert markers_needed(n, [0.6, 0.81, 0.78, 0.86, 0.91], 0.85, 6) == 5
    assert markers_needed(n, [0.6, 0.81, 0.78, 0.86, 0.91], 0.95, 6) == 7  # not reached: K + 1
    assert curve_area([2, 4], [0.4, 0.8]) == pytest.approx(0.6)
    s = summarise({0: (n, [0.6, 0.81, 0.78, 0.86, 0.91]), 1: (n, [0.7, 0.7, 0.8, 0.8, 0.8]),
                   2: (n, [0.5, 0.6, 0.7, 0.75, 0.79])}, (0.80, 0.90), 6)
    first, second = s["noc"]
    assert first["per_repeat"] == [3, 4, 7] and first["n_reached"] == 2 and first["mean"] == pytest.approx(14 / 3, abs=1e-6)
    sd = np.std([3, 4, 7], ddof=1)
    assert first["sd"] == pytest.approx(sd, abs=1e-6)
    assert 14 / 3 - 4.302653 * sd / np.sqrt(3) < 2 and 14 / 3 + 4.302653 * sd / np.sqrt(3) > 7
    assert first["lo"] == 2 and first["hi"] == 7  # the t interval, cut to what NoC can be: 2 .. K + 1
    areas = s["area"]["per_repeat"]
    half = 4.302653 * np.std(areas, ddof=1) / np.sqrt(3)
    assert s["area"]["lo"] == pytest.approx(np.mean(areas) - half, abs=1e-5)
    assert second["per_repeat"] == [6, 7, 7] and second["n_reached"] == 1
    one = summarise({0: (n, [0.6, 0.81, 0.78, 0.86, 0.91])}, (0.80,), 6)
    assert one["noc"][0]["sd"] is None and one["noc"][0]["lo"] is None and one["area"]["mean"] == pytest.approx(3.205 / 4, abs=1e-6)
    x, mean, lo, hi = band({0: (n, [0.6] * 5), 1: (n, [0.8] * 5)})
    assert np.allclose(mean, 0.7) and (lo >= 0).all() and (hi <= 1).all() and np.allclose(hi, 1.0)


def test_every_step_adds_one_marker_of_the_right_class_and_the_files_say_so(finished, context):
    out, result = finished
    curve = read_csv(out / "curve.csv")
    assert list(curve[0]) == ["policy", "repeat", "step", "n_markers", "marker_pixels", "val_dice", "test_dice"]
    assert len(curve) == 3 * 2 * 3  # policies x repeats x steps (2, 3, 4 markers)
    markers = read_csv(out / "markers.csv")
    mask = context.view.masks[0]
    for policy in ("random", "advised", "error"):
        for r in ("0", "1"):
            rows = [m for m in markers if m["policy"] == policy and m["repeat"] == r]
            assert [int(m["step"]) for m in rows] == [0, 0, 1, 2]  # two to start, then one per step
            assert all(int(m["label"]) == int(mask[int(m["row"]), int(m["col"])]) for m in rows)
            steps = [c for c in curve if c["policy"] == policy and c["repeat"] == r]
            assert [int(c["n_markers"]) for c in steps] == [2, 3, 4]
            assert int(steps[2]["marker_pixels"]) > int(steps[0]["marker_pixels"])
    assert {m["how"] for m in markers} <= {"start", "random", "advised", "error", "uncertain"}
    noc = read_csv(out / "noc.csv")
    assert [(n["policy"], n["target"]) for n in noc][:3] == [("random", "0.800000"), ("random", "0.850000"), ("random", "0.900000")]
    png = iio.imread(out / "curve.png")
    assert png.shape[1] >= 512
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["policies"]) == {"random", "advised", "error"} and summary["complete"]
    seeds = sorted((out / "seeds" / "error" / "r1").iterdir())
    assert [p.name for p in seeds] == ["step00", "step01", "step02"]


def test_step_zero_of_repeat_zero_is_the_studys_model_zero(finished):
    out, _ = finished
    study = run_study_all(STUDY.replace(splits=1, n_bg=1), device="cpu")
    first = next(c for c in read_csv(out / "curve.csv") if c["policy"] == "random" and c["repeat"] == "0")
    assert float(first["val_dice"]) == study.rows[0]["val_dice"]


def test_a_steps_seeds_files_train_the_steps_model_again(finished, tmp_path, capsys):
    out, result = finished
    step = next(c for c in read_csv(out / "curve.csv") if c["policy"] == "error" and c["repeat"] == "0" and c["step"] == "2")
    folder = out / "seeds" / "error" / "r0" / "step02"
    seeds = sorted(folder.iterdir())
    argv = ["score", *[a for p in seeds for a in ("--seeds", str(p))], "--n-images", "16", "--seed", "3", "--epochs", "4",
            "--quiet", "--out", str(tmp_path / "s")]
    assert main(argv) == 0
    row = read_csv(tmp_path / "s" / "results.csv")[0]
    assert row["val_dice"] == step["val_dice"] and row["test_dice"] == step["test_dice"]


def test_same_seed_same_curves_and_other_seeds_other_draws(finished, tmp_path, context):
    out, _ = finished
    again = tmp_path / "again"
    simulate_all(LOOP, again, context=context)
    assert files(again) == files(out)
    other = simulate_all(LOOP.replace(policies=("random",), repeats=1), context=context)
    shifted = LoopConfig(study=STUDY.replace(seed=4), max_markers=4, repeats=1, policies=("random",))
    moved = simulate_all(shifted, device="cpu")
    assert other.runs[("random", 0)]["markers"] != moved.runs[("random", 0)]["markers"]


def test_resume_after_a_stop_is_byte_identical(finished, tmp_path, context):
    out, _ = finished
    part = tmp_path / "part"
    gen = simulate(LOOP, part, context=context)
    for _ in range(8):  # the start, then into the third run
        next(gen)
    with pytest.raises(StopIteration) as stop:
        gen.throw(StopStudy())
    assert not stop.value.value.complete and len(list((part / "runs").iterdir())) == 2
    assert not (part / "curve.csv").exists()
    gen = simulate(LOOP, part, context=context)
    assert "2 runs already done" in next(gen).message
    for _ in gen:
        pass
    assert files(part) == files(out)
    with pytest.raises(Exception, match="different settings"):
        simulate_all(LOOP.replace(max_markers=5), part, context=context)


def test_held_out_masks_never_move_a_marker(finished, tmp_path):
    out, _ = finished
    data = load_dataset("fish", n_images=16)
    ctx = LoopContext.prepare(LOOP, "cpu", dataset=data)
    keep = set(ctx.study.split.marked)
    flipped = dataclasses.replace(data, masks=tuple(m if i in keep else ~m for i, m in enumerate(data.masks)))
    inverted = LoopContext.prepare(LOOP, "cpu", dataset=flipped)
    result = simulate_all(LOOP, tmp_path / "flip", context=inverted)
    assert (tmp_path / "flip" / "markers.csv").read_bytes() == (out / "markers.csv").read_bytes()
    assert (tmp_path / "flip" / "curve.csv").read_bytes() != (out / "curve.csv").read_bytes()  # the scores did change
    assert result.complete


def test_next_image_after_moves_on_to_the_other_marked_images(context):
    cfg = LOOP.replace(policies=("error",), repeats=1, max_markers=5, next_image_after=2)
    result = simulate_all(cfg, context=LoopContext.prepare(cfg, "cpu", dataset=context.study.dataset))
    images = [m["image"] for m in result.runs[("error", 0)]["markers"]]
    assert images == [0, 0, 1, 1, 2]


def test_simulate_on_the_command_line(tmp_path, capsys):
    out = tmp_path / "o"
    argv = ["simulate", "--n-images", "16", "--seed", "3", "--epochs", "3", "--policies", "random,error", "--max-markers", "3",
            "--repeats", "1", "--targets", "0.5,0.7", "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "markers to Dice 0.50" in captured.out and "[    4/4]" in captured.err
    assert {p.name for p in out.iterdir()} >= {"config.json", "runs", "curve.csv", "noc.csv", "markers.csv", "curve.png", "seeds"}
    assert main(argv) == 0 and "2 runs already done" in capsys.readouterr().err
    for bad, needle in ((["--max-markers", "1"], "max_markers (--max-markers) must be an integer >= 2"),
                        (["--policies", "random,clever"], "policies (--policies)"),
                        (["--targets", "0.8,x"], "targets (--targets)")):
        assert main([*argv, *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("flimexplore: error:") and needle in err and "\n" not in err
    assert main([*argv[:-2], "--out", str(out), "--candidates", "5"]) == 2
    assert "different settings" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        LoopConfig(next_image_after=1).validate()


def test_simulate_on_the_command_line_over_datasets_and_marked_images(tmp_path, capsys):
    common = ["--n-images", "16", "--seed", "3", "--epochs", "3", "--policies", "random,error", "--max-markers", "3",
              "--repeats", "1"]
    many = tmp_path / "many"
    argv = ["simulate", "--dataset", "fish", "--dataset", "eggs", "--images", "0,1", *common, "--out", str(many)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    folders = ["eggs/image0", "eggs/image1", "fish/image0", "fish/image1"]
    assert all(f"{f}: random" in out for f in folders) and "4 loops; wrote" in out
    assert sorted(str(p.parent.relative_to(many)) for p in many.glob("*/*/curve.csv")) == folders
    # each folder is the loop a one-dataset, one-image command writes
    alone = tmp_path / "alone"
    assert main(["simulate", "--dataset", "eggs", "--image", "1", *common, "--out", str(alone)]) == 0
    assert (many / "eggs" / "image1" / "markers.csv").read_bytes() == (alone / "markers.csv").read_bytes()
    assert (many / "eggs" / "image1" / "curve.csv").read_bytes() == (alone / "curve.csv").read_bytes()
    capsys.readouterr()
    assert main(argv) == 0
    assert capsys.readouterr().err.count("2 runs already done") == 4  # resumed: nothing computed again
    assert main(["simulate", "--dataset", "fish", "--dataset", "nope", "--images", "0", *common,
                 "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad" / "fish").exists()  # every dataset is checked before any work


def test_loops_over_several_marked_images_on_an_executor(tmp_path, context):
    cfg = LOOP.replace(policies=("random", "error"), repeats=1, max_markers=3)
    with cf.ThreadPoolExecutor(2) as pool:
        results = simulate_sweep_all(["fish"], "0,1", cfg, tmp_path / "sweep", executor=pool, device="cpu")
    assert sorted(results) == ["fish/image0", "fish/image1"]
    alone = simulate_all(cfg, tmp_path / "alone", context=context)
    assert (tmp_path / "sweep" / "fish" / "image0" / "curve.csv").read_bytes() == (tmp_path / "alone" / "curve.csv").read_bytes()
    assert results["fish/image1"].context.study.config.image == 1 and alone.complete


def test_ctrl_c_keeps_the_finished_runs_and_the_same_command_resumes(tmp_path, capsys, monkeypatch):
    import flimexplore.loop.run as loop_run

    out = tmp_path / "o"
    argv = ["simulate", "--n-images", "16", "--seed", "3", "--epochs", "3", "--policies", "random,error", "--max-markers", "3",
            "--repeats", "2", "--out", str(out)]
    real, calls = loop_run.next_marker, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # during the third run
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(loop_run, "next_marker", interrupted)
    assert main(argv) == 130
    assert "interrupted; 2 finished runs are kept" in capsys.readouterr().err
    assert len(list((out / "runs").iterdir())) == 2 and not (out / "curve.csv").exists()
    monkeypatch.setattr(loop_run, "next_marker", real)
    assert main(argv) == 0 and "2 runs already done" in capsys.readouterr().err
    assert len(read_csv(out / "curve.csv")) == 2 * 2 * 2
