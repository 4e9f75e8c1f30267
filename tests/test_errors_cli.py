"""Bad input on the command line: one line on stderr, exit 2, no traceback unless --debug (issue 5)."""

import os
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import torch

from flimexplore.cli import main
from flimexplore.errors import ConfigError, DatasetError
from flimexplore.study.store import read_results

TINY = ["--n-images", "12", "--splits", "1", "--n-bg", "3", "--epochs", "3"]


def write_folder(root, n=6, size=32):
    """A valid images/masks folder of `n` noisy RGB images with a 12x12 object each."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        mask = np.zeros((size, size), np.uint8)
        mask[10:22, 8 + i % 4 : 20 + i % 4] = 255
        iio.imwrite(root / "images" / f"im{i:02d}.png", (rng.random((size, size, 3)) * 255).astype(np.uint8))
        iio.imwrite(root / "masks" / f"im{i:02d}.png", mask)
    return root


def one_error_line(err: str, match: str) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("flimexplore: error: ")
    assert match in lines[0], lines[0]


def damaged_folder(tmp_path, damage):
    root = write_folder(tmp_path / "d")
    if damage == "bad_mask":  # im05 is the marked image of seed 0 (im02 is a test image, and may lack an object)
        iio.imwrite(root / "masks" / "im05.png", np.zeros((32, 32), np.uint8))
    elif damage == "shape":
        iio.imwrite(root / "masks" / "im02.png", np.full((30, 32), 255, np.uint8))
    elif damage == "corrupt":
        (root / "images" / "im02.png").write_bytes(b"not a png at all")
    elif damage == "unmatched":
        (root / "masks" / "im02.png").rename(root / "masks" / "other.png")
    elif damage == "nan":
        (root / "images" / "im02.png").unlink()
        pixels = np.full((32, 32), 0.5, np.float32)
        pixels[3, 3] = np.nan
        tifffile.imwrite(root / "images" / "im02.tif", pixels)
    elif damage == "seeds_outside":
        (root / "markers").mkdir()
        (root / "markers" / "im02-seeds.txt").write_text("1 32 32\n5 33 -1 0\n")
    elif damage == "seeds_malformed":
        (root / "markers").mkdir()
        (root / "markers" / "im02-seeds.txt").write_text("one 32 32\n")
    return root


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ("bad_mask", "marked image 'im05' (--image 0) of dataset 'd' has no object pixels; the marked image must hold "
         "both object and background (validation and test images need not); marked images of this split that hold "
         "both: --image 1 ('im04'), --image 2 ('im00')"),
        ("shape", "has shape (30, 32) but its image im02.png has shape (32, 32)"),
        ("corrupt", "is not a readable PNG image"),
        ("unmatched", "1 images in"),
        ("nan", "im02.tif: image holds NaN or infinite values"),
        ("seeds_outside", "im02-seeds.txt line 2: '5 33 -1 0': (x 5, y 33) is outside the 32x32 image"),
        ("seeds_malformed", "im02-seeds.txt line 1: 'one 32 32' holds a non-integer field"),
    ],
)
def test_bad_folder_dataset(tmp_path, capsys, damage, match):
    root = damaged_folder(tmp_path, damage)
    assert (
        main(["study", "--dataset", str(root), "--n-bg", "2", "--radius", "2", "--out", str(tmp_path / "o")])
        == 2
    )
    one_error_line(capsys.readouterr().err, match)
    assert not (tmp_path / "o").exists()  # nothing is written for a study that cannot start


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--dataset", "no/such/folder"], "no dataset named 'no/such/folder' and no folder at that path"),
        (["--dataset", "EMPTY"], "has neither images/ + masks/ nor orig/ + label/ sub-folders"),
        (["--image", "7"], "marked image 7 does not exist: the split has 3 marked images (0..2)"),
        (["--radius", "0"], "radius (--radius) must be None or an integer >= 1, got 0"),
        (["--radius", "-1"], "radius (--radius) must be None or an integer >= 1, got -1"),
        (["--radius", "100"], "marker radius 100 is too big for a 128x128 image"),
        (["--n-bg", "0"], "n_bg (--n-bg) must be None or an integer >= 1, got 0"),
        (["--n-bg", "900"], "900 background markers of radius 3 do not fit: only"),
        (["--epochs", "0"], "epochs (--epochs) must be an integer >= 1, got 0"),
        (["--epochs", "-2"], "epochs (--epochs) must be an integer >= 1, got -2"),
        (["--splits", "0"], "splits (--object-markers) must be an integer >= 1, got 0"),
        (["--object-markers", "0"], "splits (--object-markers) must be an integer >= 1, got 0"),
        (["--n-images", "3"], "the dataset has 3 images but the split needs at least 5"),
        (["--lr", "nan"], "lr (--lr) must be a finite number > 0, got nan"),
        (["--seed", "-1"], "seed (--seed) must be an integer >= 0, got -1"),
        (["--chunk", "0"], "model_chunk (--chunk) must be an integer >= 1, got 0"),
        (["--memory-mb", "0"], "memory_mb (--memory-mb) must be a finite number > 0"),
        (
            ["--dense", "--dense-spacing", "0"],
            "dense_spacing (--dense-spacing) must be None or an integer >= 1",
        ),
        (["--device", "tpu"], "unknown device 'tpu'; use auto, cpu or cuda"),
        (["--radius", "abc"], "argument --radius: invalid int value: 'abc'"),
    ],
)
def test_bad_arguments(tmp_path, capsys, args, match):
    (tmp_path / "EMPTY").mkdir()
    args = [str(tmp_path / "EMPTY") if a == "EMPTY" else a for a in args]
    code = None
    try:
        code = main(["study", *TINY, *args, "--out", str(tmp_path / "o")])
    except SystemExit as exit_:  # argparse errors exit from inside main
        code = exit_.code
    assert code == 2
    one_error_line(capsys.readouterr().err, match)
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda(tmp_path, capsys):
    assert main(["study", *TINY, "--device", "cuda", "--out", str(tmp_path / "o")]) == 2
    one_error_line(
        capsys.readouterr().err, "device 'cuda' was requested but CUDA is not available on this machine"
    )


def test_output_folder_problems(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["study", *TINY, "--out", str(f)]) == 2
    one_error_line(capsys.readouterr().err, "file is a file; give a folder")
    out = str(tmp_path / "o")
    assert main(["study", *TINY, "--out", out, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["study", *TINY, "--epochs", "4", "--seed", "5", "--out", out]) == 2
    one_error_line(
        capsys.readouterr().err,
        "holds 3 finished models of a study with different settings (epochs: folder has 3, asked 4",
    )
    assert len(read_results(tmp_path / "o" / "results.csv")) == 3


def test_debug_shows_the_traceback_in_process(tmp_path):
    with pytest.raises(ConfigError, match="epochs"):
        main(["--debug", "study", *TINY, "--epochs", "0", "--out", str(tmp_path / "o")])


def test_out_of_memory_is_one_line_and_keeps_the_work(tmp_path, capsys, monkeypatch):
    from flimexplore.study.context import StudyContext

    real, calls = StudyContext.evaluate, []

    def second_chunk_runs_out(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError
        return real(self, *args, **kwargs)

    monkeypatch.setattr(StudyContext, "evaluate", second_chunk_runs_out)
    out = tmp_path / "o"
    assert main(["study", *TINY, "--chunk", "1", "--quiet", "--out", str(out)]) == 2
    one_error_line(
        capsys.readouterr().err, f"out of memory; 1 of 3 models are kept in {out}; run the same command"
    )
    assert main(["study", *TINY, "--chunk", "1", "--out", str(out)]) == 0
    assert "3 models on cpu (batched); 1 already done" in capsys.readouterr().err


def test_interrupt_before_the_first_chunk(tmp_path, capsys, monkeypatch):
    import flimexplore.study.run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(flimexplore.study.run, "run_study", interrupted)
    assert main(["study", *TINY, "--out", str(tmp_path / "o")]) == 130
    assert "flimexplore: interrupted; 0 models are kept in" in capsys.readouterr().err


def test_python_m_flimexplore_in_subprocesses(tmp_path):
    """The real entry point: exit 2 and one line; --debug adds the traceback. Run side by side."""
    bad = damaged_folder(tmp_path, "bad_mask")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    runs = {
        "radius": [
            "study",
            *TINY,
            "--radius",
            "0",
            "--out",
            str(tmp_path / "o2"),
        ],  # fails before torch loads
        "debug": ["--debug", "study", "--dataset", str(bad), "--out", str(tmp_path / "o3")],
        "usage": ["study", "--epochs", "many", "--out", str(tmp_path / "o4")],
    }
    if torch.cuda.is_available():
        runs["bad_mask"] = ["study", "--dataset", str(bad), "--n-bg", "2", "--out", str(tmp_path / "o1")]
    else:  # torch is loaded before this error
        runs["cuda"] = ["study", "--dataset", str(bad), "--device", "cuda", "--out", str(tmp_path / "o5")]
    procs = {
        k: subprocess.Popen(
            [sys.executable, "-m", "flimexplore", *a],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for k, a in runs.items()
    }
    done = {k: (p.wait(timeout=120), p.stderr.read()) for k, p in procs.items()}
    for p in procs.values():
        p.stdout.close()
        p.stderr.close()
    expected = {
        "bad_mask": "marked image 'im05' (--image 0) of dataset 'd' has no object pixels",
        "radius": "radius (--radius) must be None or an integer >= 1, got 0",
        "usage": "argument --epochs: invalid int value: 'many'",
        "cuda": "CUDA is not available on this machine",
    }
    for k, match in expected.items():
        if k in done:
            code, err = done[k]
            assert code == 2, (k, err)
            one_error_line(err, match)
    code, err = done["debug"]
    assert code == 1 and "Traceback (most recent call last)" in err
    assert f"{DatasetError.__module__}.DatasetError" in err and "'im05' (--image 0) of dataset 'd' has no object pixels" in err


def test_a_binarised_mask_is_reported(tmp_path, capsys):
    root = write_folder(tmp_path / "d")
    grey = iio.imread(root / "masks" / "im03.png") // 2
    grey[12, 12] = 200
    iio.imwrite(root / "masks" / "im03.png", grey)
    args = ["study", "--dataset", str(root), "--splits", "1", "--n-bg", "2", "--radius", "2", "--epochs", "2"]
    assert main([*args, "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    line = "flimexplore: warning: 1 mask holds 3 to 8 distinct values, like a label image, and was read as"
    assert err.startswith(line) and "im03.png (values 0/127/200). Pass --object-label V[,V...]" in err.splitlines()[0]
