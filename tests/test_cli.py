import json
import subprocess
import sys

from flimexplore.cli import main
from flimexplore.study.store import read_results


def test_datasets_lists_the_presets(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("fish", "eggs", "fundus", "nuclei"):
        assert name in out


def test_study_writes_the_contracted_files(tmp_path, capsys):
    out = tmp_path / "o"
    args = ["study", "--n-images", "12", "--splits", "2", "--n-bg", "3", "--epochs", "4", "--seed", "1", "--out", str(out)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "[    6/6]" in err
    rows = read_results(out / "results.csv")
    assert len(rows) == 6
    for col in ("image", "split", "obj_row", "obj_col", "bg_row", "bg_col", "radius", "val_dice", "test_dice", "best_epoch"):
        assert col in rows[0]
    summary = json.loads((out / "summary.json").read_text())
    assert {"n_models", "val_dice_min", "val_dice_max", "device"} <= set(summary)
    assert (out / "heatmap_split1.png").exists()


def test_study_on_a_folder_dataset(tmp_path):
    import imageio.v3 as iio

    from flimexplore.data import load_dataset

    ds = load_dataset("eggs", n_images=10)
    (tmp_path / "d" / "images").mkdir(parents=True)
    (tmp_path / "d" / "masks").mkdir()
    for stem, im, m in zip(ds.stems, ds.images, ds.masks, strict=True):
        iio.imwrite(tmp_path / "d" / "images" / f"{stem}.png", (im * 255).astype("uint8"))
        iio.imwrite(tmp_path / "d" / "masks" / f"{stem}.png", m.astype("uint8") * 255)
    out = tmp_path / "o"
    assert main(["study", "--dataset", str(tmp_path / "d"), "--splits", "1", "--n-bg", "3", "--epochs", "3", "--out", str(out), "--quiet"]) == 0
    assert len(read_results(out / "results.csv")) == 3


def test_score_analyse_advise_and_vary_object_on_a_folder_dataset(tmp_path):
    """Issue 8's commands on a user's folder: score reproduces the study, analyse and advise run."""
    import json

    import imageio.v3 as iio

    from flimexplore.data import load_dataset

    ds = load_dataset("eggs", n_images=10)
    data = tmp_path / "d"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    for stem, im, m in zip(ds.stems, ds.images, ds.masks, strict=True):
        iio.imwrite(data / "images" / f"{stem}.png", (im * 255).astype("uint8"))
        iio.imwrite(data / "masks" / f"{stem}.png", m.astype("uint8") * 255)
    common = ["--dataset", str(data), "--splits", "1", "--n-bg", "3", "--epochs", "2", "--quiet"]
    assert main(["study", *common, "--out", str(tmp_path / "s")]) == 0
    study = read_results(tmp_path / "s" / "results.csv")
    assert main(["score", *common, "--pairs", str(tmp_path / "s" / "results.csv"), "--out", str(tmp_path / "sc")]) == 0
    scored = read_results(tmp_path / "sc" / "results.csv")
    assert [r["val_dice"] for r in scored] == [r["val_dice"] for r in study]
    assert main(["analyse", str(tmp_path / "s"), "--out", str(tmp_path / "a"), "--n-boot", "50", "--quiet"]) == 0
    report = json.loads((tmp_path / "a" / "analysis.json").read_text())
    assert report and (tmp_path / "a" / "analysis.png").exists()
    assert main(["advise", "--dataset", str(data), "--split", "0", "--probe", "4", "--epochs", "2", "--out", str(tmp_path / "adv")]) == 0
    assert (tmp_path / "adv" / "advice.csv").read_text().startswith("rank,bg_row,bg_col,score")
    assert main(["study", *common, "--vary", "object", "--out", str(tmp_path / "v")]) == 0
    varied = read_results(tmp_path / "v" / "results.csv")
    assert len({(r["bg_row"], r["bg_col"]) for r in varied}) == 1 and len({(r["obj_row"], r["obj_col"]) for r in varied}) == 3


def test_bad_input_is_one_line_and_status_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "flimexplore", "study", "--dataset", str(tmp_path / "missing"), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("flimexplore: error:") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
