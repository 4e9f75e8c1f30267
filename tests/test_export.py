"""Export (issue 10): LIDS model folder and model.pt reproduce the model's predictions exactly."""

import json

import numpy as np
import pytest
import torch

from flimexplore.cli.export import DEPRECATED
from flimexplore.cli.main import main
from flimexplore.engine.arch import read_arch
from flimexplore.errors import OutputError
from flimexplore.export import (
    build_net,
    from_libift_rows,
    libift_offsets,
    load_torch,
    read_lids,
    to_input,
    to_libift_rows,
)
from flimexplore.study.run import run_study_all


def test_libift_row_order_on_a_kernel_with_distinct_values():
    # kernel j, channel c, row r, column x holds 1000 j + 100 c + 10 r + x
    n, c, k = 2, 3, 3
    j, ch, r, x = np.meshgrid(np.arange(n), np.arange(c), np.arange(k), np.arange(k), indexing="ij")
    kernels = (1000 * j + 100 * ch + 10 * r + x).astype(np.float32)
    m = to_libift_rows(kernels)
    assert m.shape == (k * k * c, n)
    assert libift_offsets(3) == [(0, 0), (-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
    # centre first, channels innermost: rows 0..2 are the centre (row 1, column 1) of channels 0, 1, 2
    assert m[:3, 0].tolist() == [11, 111, 211]
    # then the top-left offset, then top-centre, ...: row a * C + c
    assert m[3:6, 1].tolist() == [1000, 1100, 1200]
    assert m[6:9, 0].tolist() == [1, 101, 201]
    assert m[4 * 3 + 2, 0] == 210  # offset 4 = (0, -1): row 1, column 0, channel 2
    assert m[-1, 1] == 1222
    np.testing.assert_array_equal(from_libift_rows(m, c), kernels)


@pytest.fixture(scope="module", params=[{}, {"layers": 2, "pool": "max", "kernel_size": 5}], ids=["paper", "two_layers"])
def study(request, tmp_path_factory, small_config):
    out = tmp_path_factory.mktemp("study")
    cfg = small_config.replace(n_images=12, splits=1, n_bg=2, epochs=3, **request.param)
    res = run_study_all(cfg, out, device="cpu")
    return out, res


@pytest.mark.slow
def test_export_round_trips_exactly(study, tmp_path):
    out, res = study
    model = res.rows[1]["model"]
    dest = tmp_path / "export"
    assert main(["export", str(out), "--model", str(model), "--out", str(dest)]) == 0
    settings = res.config.flim()
    names = {p.name for p in dest.iterdir()}
    assert {"arch.json", "conv1-kernels.npy", "conv1-mean.txt", "conv1-stdev.txt", "model.pt", "decision.json"} <= names
    assert ("conv2-kernels.npy" in names) == (settings.layers == 2)
    arch = json.loads((dest / "arch.json").read_text())
    assert arch["nlayers"] == settings.layers and arch["layer1"]["conv"]["kernel_size"] == [settings.kernel_size] * 2 + [0]
    assert read_arch(dest / "arch.json").read_layer == settings.read_layer

    ctx = res.context
    arrays = res.arrays[model]
    net = load_torch(dest / "model.pt")
    lids_settings, lids_arrays = read_lids(dest)
    from_lids = build_net(lids_arrays, lids_settings)
    for key in ("kernels", "norm_mean", "norm_std", "gamma", "weight"):
        np.testing.assert_array_equal(lids_arrays[key], arrays[key])
    found = 0
    for i in list(ctx.split.val)[:3] + list(ctx.split.test)[:2]:
        image = ctx.dataset.images[i]
        expected = ctx.predict(arrays, image)
        with torch.no_grad():
            got_pt = net.predict(to_input(image))[0].numpy()
            got_lids = from_lids.predict(to_input(image))[0].numpy()
        np.testing.assert_array_equal(got_pt, expected)
        np.testing.assert_array_equal(got_lids, expected)
        found += int(expected.sum())
    assert found > 0  # the model predicts some object: the comparison is not between empty masks


def test_export_refuses_a_missing_model(study, tmp_path):
    out, _ = study
    with pytest.raises(OutputError, match="model 9999 is not stored"):
        from flimexplore.export import export_model

        export_model(out, 9999, tmp_path / "x")
    assert main(["export", str(tmp_path), "--model", "0", "--out", str(tmp_path / "y")]) == 2


# -- the command line's spellings (issue 20 §2) -------------------------------------------------


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory, small_config):
    out = tmp_path_factory.mktemp("tiny_study")
    res = run_study_all(small_config.replace(n_images=12, splits=1, n_bg=2, epochs=2), out, device="cpu")
    return out, res.rows[0]["model"]


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_the_deprecated_spelling_writes_the_same_files_and_warns_once(tiny_study, tmp_path, capsys):
    study, model = tiny_study
    new, old = tmp_path / "new", tmp_path / "old"
    assert main(["export", str(study), "--model", str(model), "--out", str(new)]) == 0
    assert capsys.readouterr().err == ""
    assert main(["export", "--out", str(study), "--model", str(model), str(old)]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"flimexplore: warning: {DEPRECATED}"]
    assert captured.err == (
        "flimexplore: warning: 'export --out STUDY DEST' is deprecated and will be removed in the next release; "
        "use 'flimexplore export STUDY --model N --out DEST'\n"
    )
    assert f"into {old}" in captured.out
    assert _files(new) == _files(old)
    assert {"arch.json", "conv1-kernels.npy", "model.pt"} <= set(_files(new))
    assert not (study / "arch.json").exists()  # the study folder is read, never written


def test_the_study_may_follow_the_options(tiny_study, tmp_path, capsys):
    study, model = tiny_study
    assert main(["export", "--model", str(model), "--out", str(tmp_path / "m"), str(study)]) == 0
    assert capsys.readouterr().err == ""
    assert (tmp_path / "m" / "model.pt").is_file()


def test_two_study_folders_are_refused_in_one_line(tiny_study, tmp_path, capsys):
    study, model = tiny_study
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text((study / "config.json").read_text())
    assert main(["export", str(study), "--model", str(model), "--out", str(other)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("flimexplore: error: both ") and len(err.splitlines()) == 1
    assert "flimexplore export STUDY --model N --out DEST" in err
    assert sorted(p.name for p in other.iterdir()) == ["config.json"]  # nothing written
