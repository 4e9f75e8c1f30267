"""Users' data and markers: tiles without object, seeds files as an extra model, scribbles, several disks."""

import json

import imageio.v3 as iio
import numpy as np
import pytest

from flimexplore.cli.main import main
from flimexplore.colormap import OBJECT_HEX
from flimexplore.data import load_dataset, write_seeds
from flimexplore.errors import MarkerError
from flimexplore.markers import marker_pixels, marker_union, sample_marker_groups, sample_markers
from flimexplore.study.config import StudyConfig
from flimexplore.study.context import StudyContext
from flimexplore.study.run import plan_markers, run_study_all
from flimexplore.study.store import read_results

SMALL = dict(splits=1, n_bg=3, radius=2, epochs=2)
# split_dataset(6, seed=0): test (3, 2), marked (5, 4, 0), validation (1,)
MARKED, VAL, TEST = 5, 1, 2


def folder(root, n=6, shape=(32, 32), layout=("images", "masks"), empty=()):
    """n noisy images with a 12x12 object each (none in the images listed in `empty`)."""
    rng = np.random.default_rng(0)
    (root / layout[0]).mkdir(parents=True)
    (root / layout[1]).mkdir()
    for i in range(n):
        image = (rng.random((*shape, 3)) * 255).astype(np.uint8)
        mask = np.zeros(shape, np.uint8)
        if i not in empty:
            mask[4:14, 16 + i % 4 : 28 + i % 4] = 255  # above the diagonal: transposed, it is background
            image[mask > 0, 0] = image[mask > 0, 0] // 2 + 128  # a little signal for the models
        iio.imwrite(root / layout[0] / f"im{i:02d}.png", image)
        iio.imwrite(root / layout[1] / f"im{i:02d}.png", mask)
    return root


def scribbles():
    """Seeds rows (row, col, label) of an L-shaped object stroke and two background strokes (for image im05)."""
    obj = [(r, 22) for r in range(5, 13)] + [(12, c) for c in range(23, 26)]
    bg = [(30, c) for c in range(2, 13)] + [(r, 2) for r in range(16, 28)]
    return np.array([(r, c, 1) for r, c in obj] + [(r, c, 0) for r, c in bg], np.int64)


def test_images_without_object_in_validation_and_test_are_scored_by_the_conventions(tmp_path):
    root = folder(tmp_path / "d", empty=(VAL, TEST))
    cfg = StudyConfig(dataset=str(root), **SMALL)
    result = run_study_all(cfg, tmp_path / "o", device="cpu")
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["n_val_images_without_object"] == 1 and summary["n_test_images_without_object"] == 1
    ctx = result.context
    for row in result.rows:  # one validation image without object: Dice 1 if nothing is predicted, else 0
        predicted = ctx.predict(result.arrays[row["model"]], ctx.dataset.images[VAL])
        assert row["val_dice"] == (0.0 if predicted.any() else 1.0)
        assert row["val_sensitivity"] == 1.0 and row["val_specificity"] == round(1 - predicted.mean(), 6)


def test_the_explorer_runs_on_object_free_tiles_and_counts_them(tmp_path):
    from flimexplore.widgets import Explorer

    root = folder(tmp_path / "d", empty=(VAL, TEST))
    app = Explorer(str(root), sync=True, projections=False, device="cpu", **SMALL)
    app.run()
    assert app.state.error == "" and app.state.result.complete
    assert "1 of 1 validation images hold no object" in app.state.status
    api = run_study_all(StudyConfig(dataset=str(root), **SMALL), None, device="cpu")
    assert [r["val_dice"] for r in app.state.result.rows] == [r["val_dice"] for r in api.rows]


def test_only_the_marked_image_must_hold_an_object_and_the_error_lists_the_others(tmp_path, capsys):
    root = folder(tmp_path / "d", empty=(MARKED,))
    with pytest.raises(Exception, match=r"marked image 'im05' \(--image 0\).*--image 1 \('im04'\), --image 2 \('im00'\)"):
        StudyContext(StudyConfig(dataset=str(root), **SMALL), device="cpu")
    assert StudyContext(StudyConfig(dataset=str(root), image=1, **SMALL), device="cpu").stem == "im04"
    root = folder(tmp_path / "e", empty=(5, 4, 0))
    assert main(["study", "--dataset", str(root), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "none of this split's 3 marked images does; --seed 1 draws a split whose marked images" in err


@pytest.fixture(scope="module")
def tiny_ctx(tmp_path_factory):
    root = folder(tmp_path_factory.mktemp("tiny") / "d")
    return StudyContext(StudyConfig(dataset=str(root), splits=1, n_bg=4, radius=2, epochs=2), device="cpu")


def test_evaluate_markers_equals_evaluate_for_disks_and_does_not_depend_on_batching(tiny_ctx):
    ctx = tiny_ctx
    ms = plan_markers(ctx)[0]
    r, shape = ctx.config.radius, ctx.mask.shape
    disks = ctx.evaluate(np.stack([ms.obj] * 4), ms.bg, [1, 2, 3, 4])
    px = ctx.evaluate_markers([marker_pixels(ms.obj, r, shape)] * 4, [marker_pixels(b, r, shape) for b in ms.bg], [1, 2, 3, 4])
    np.testing.assert_array_equal(px.val["dice"], disks.val["dice"])
    np.testing.assert_array_equal(px.arrays["kernels"], disks.arrays["kernels"])
    # scribble-like markers of different lengths, several components per class, in one call
    obj = [marker_union(ms.obj[None] + d, r, shape) for d in ([[0, 0]], [[0, 0], [0, 3]], [[0, 0], [3, 0], [0, 3]])]
    bg = [marker_union(ms.bg[: k + 1], r, shape) for k in range(3)]
    together = ctx.evaluate_markers(obj, bg, [5, 6, 7])
    alone = [ctx.evaluate_markers([o], [b], [s]) for o, b, s in zip(obj, bg, [5, 6, 7], strict=True)]
    np.testing.assert_array_equal(together.val["dice"], [a.val["dice"][0] for a in alone])
    np.testing.assert_array_equal(together.best_epoch, [a.best_epoch[0] for a in alone])
    with pytest.raises(MarkerError, match=r"background pixel \(200, 3\) of model 0 is outside the 32x32"):
        ctx.evaluate_markers([obj[0]], [np.array([[200, 3]])], [1])
    with pytest.raises(MarkerError, match="2 object markers, 1 background markers and 1 seeds"):
        ctx.evaluate_markers(obj[:2], bg[:1], [1])


def test_several_markers_per_model_are_sampled_by_the_rules_and_painted_together(tmp_path):
    mask = np.zeros((64, 64), bool)
    mask[16:48, 16:48] = True
    one = sample_markers(mask, 5, 3, np.random.default_rng(7))
    same = sample_marker_groups(mask, 5, (1, 1), 3, np.random.default_rng(7))
    np.testing.assert_array_equal(same.obj[0], one.obj)
    np.testing.assert_array_equal(same.bg[:, 0], one.bg)
    g = sample_marker_groups(mask, 4, (2, 3), 3, np.random.default_rng(0))
    centres = np.concatenate([g.obj, g.bg.reshape(-1, 2)])
    d = np.sqrt(((centres[:, None] - centres[None]) ** 2).sum(-1)) + np.eye(len(centres)) * 99
    assert d.min() >= 4.5 and mask[g.obj[:, 0], g.obj[:, 1]].all() and not mask[g.bg[..., 0], g.bg[..., 1]].any()
    with pytest.raises(MarkerError, match=r"30 models x 3 background markers of radius 3 do not fit: only \d+ fit"):
        sample_marker_groups(mask, 30, (1, 3), 3, 0)

    cfg = StudyConfig(dataset=str(folder(tmp_path / "d")), markers_per_model=(2, 2), **SMALL)
    result = run_study_all(cfg, tmp_path / "o", device="cpu")
    ms = result.markers[0]
    assert ms.obj.shape == (2, 2) and ms.bg.shape == (3, 2, 2) and len(result.rows) == 3
    ctx, r = result.context, cfg.radius or result.config.radius
    direct = ctx.evaluate_markers(
        [marker_union(ms.obj, r, ctx.mask.shape)] * 3, [marker_union(b, r, ctx.mask.shape) for b in ms.bg],
        [row["seed"] for row in result.rows],
    )
    np.testing.assert_allclose([row["val_dice"] for row in result.rows], direct.val["dice"], atol=5e-7)
    layer = result.heatmap(0)
    for row, bgs in zip(result.rows, ms.bg, strict=True):
        for c in bgs:  # each of a model's disks shows its model's Dice at its centre
            assert layer.value[c[0], c[1]] == pytest.approx(row["val_dice"])
    assert (tmp_path / "o" / "heatmap_split0.png").exists()
    again = run_study_all(cfg, tmp_path / "o", device="cpu")  # resumes: nothing recomputed, same rows
    assert again.rows == result.rows


def test_lids_seeds_file_is_scored_as_one_extra_model_and_resumes(tmp_path, capsys):
    root = folder(tmp_path / "lids", layout=("orig", "label"))
    (root / "markers").mkdir()
    seeds = scribbles()
    write_seeds(root / "markers" / "im05-seeds.txt", seeds[:, [0, 1, 2]], (32, 32))
    cfg = StudyConfig(dataset=str(root), **SMALL)
    result = run_study_all(cfg, tmp_path / "o", device="cpu")
    assert len(result.rows) == 4
    user = result.rows[-1]
    assert (user["model"], user["split"], user["bg_index"]) == (3, -1, -1)
    ctx = result.context
    obj, bg = seeds[seeds[:, 2] == 1, :2], seeds[seeds[:, 2] == 0, :2]
    direct = ctx.evaluate_markers([obj], [bg], [user["seed"]])
    assert user["val_dice"] == round(float(direct.val["dice"][0]), 6)
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["user_markers"]["n_object_pixels"] == len(obj) and summary["user_markers"]["model"] == 3
    assert summary["n_models"] == 4 and summary["splits"][0]["n_models"] == 3
    heat = iio.imread(tmp_path / "o" / "heatmap_user.png")[..., :3]  # a figure: the 32x32 image drawn 16x at (74, 24)
    k = 16
    magenta = [int(OBJECT_HEX[i : i + 2], 16) for i in (1, 3, 5)]  # object pixels in the object marker's colour
    assert max(heat.shape[:2]) >= 512 and (heat[74 + obj[:, 0] * k + k // 2, 24 + obj[:, 1] * k + k // 2] == magenta).all()
    assert np.isfinite(result.heatmap(-1).value[bg[:, 0], bg[:, 1]]).all()
    before = (tmp_path / "o" / "results.csv").read_bytes()
    args = ["study", "--dataset", str(root), "--splits", "1", "--n-bg", "3", "--radius", "2", "--epochs", "2"]
    assert main([*args, "--out", str(tmp_path / "o")]) == 0
    assert "4 already done" in capsys.readouterr().err
    assert (tmp_path / "o" / "results.csv").read_bytes() == before


def test_markers_option_takes_a_file_or_a_folder(tmp_path, capsys):
    root = folder(tmp_path / "d")
    (tmp_path / "mine").mkdir()
    write_seeds(tmp_path / "mine" / "im05-seeds.txt", scribbles(), (32, 32))
    args = ["study", "--dataset", str(root), "--splits", "1", "--n-bg", "2", "--radius", "2", "--epochs", "1"]
    assert main([*args, "--markers", str(tmp_path / "mine"), "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--markers", str(tmp_path / "mine" / "im05-seeds.txt"), "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    a, b = (read_results(tmp_path / x / "results.csv") for x in "ab")
    assert len(a) == 3 and a[-1]["split"] == -1 and a == b
    assert main([*args, "--image", "1", "--markers", str(tmp_path / "mine"), "--out", str(tmp_path / "c")]) == 2
    assert "no im04-seeds.txt for the marked image 'im04' (found: im05-seeds.txt)" in capsys.readouterr().err
    write_seeds(tmp_path / "only-bg-seeds.txt", scribbles()[scribbles()[:, 2] == 0], (32, 32))
    assert main([*args, "--markers", str(tmp_path / "only-bg-seeds.txt"), "--out", str(tmp_path / "d")]) == 2
    assert "hold no object (label 1) pixels; a model needs both" in capsys.readouterr().err


def test_seeds_with_x_and_y_swapped_are_refused_on_square_and_other_images(tmp_path, capsys):
    # non-square image: the header (and the markers) are transposed
    root = folder(tmp_path / "wide", shape=(32, 40), layout=("orig", "label"))
    (root / "markers").mkdir()
    rows = np.vstack([scribbles(), [(30, c, 0) for c in range(30, 39)]])  # a stroke right of column 31
    text = [f"{len(rows)} 32 40"] + [f"{r} {c} -1 {label}" for r, c, label in rows]  # x <-> y
    (root / "markers" / "im05-seeds.txt").write_text("\n".join(text) + "\n")
    with pytest.raises(MarkerError, match=r"im05-seeds\.txt is for a 40x32 image .*x and y look swapped"):
        load_dataset(root)
    # non-square image, correct header, swapped lines: markers fall outside
    text[0] = f"{len(rows)} 40 32"
    (root / "markers" / "im05-seeds.txt").write_text("\n".join(text) + "\n")
    with pytest.raises(MarkerError, match=r"is outside the 40x32 image \(\d+ of \d+ markers are\); x and y look swapped"):
        load_dataset(root)
    # square image: the file fits either way; the markers disagree with the mask unless swapped
    rows = scribbles()
    root = folder(tmp_path / "square", layout=("orig", "label"))
    (root / "markers").mkdir()
    text = [f"{len(rows)} 32 32"] + [f"{r} {c} -1 {label}" for r, c, label in rows]
    (root / "markers" / "im05-seeds.txt").write_text("\n".join(text) + "\n")
    assert main(["study", "--dataset", str(root), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "im05-seeds.txt: only 0 % of its object markers lie on the object, but 100 % would with x and y exchanged" in err
    (root / "markers" / "im05-seeds.txt").rename(tmp_path / "swapped-seeds.txt")
    cfg = StudyConfig(dataset=str(root), markers=str(tmp_path / "swapped-seeds.txt"), **SMALL)
    with pytest.raises(MarkerError, match=r"swapped-seeds\.txt: only 0 % .*x and y look swapped"):
        StudyContext(cfg, device="cpu")


def test_markers_per_model_from_the_command_line(tmp_path, capsys):
    root = folder(tmp_path / "d")
    args = ["study", "--dataset", str(root), "--splits", "1", "--n-bg", "2", "--radius", "2", "--epochs", "1"]
    assert main([*args, "--markers-per-model", "2,2", "--out", str(tmp_path / "o")]) == 0
    rows = read_results(tmp_path / "o" / "results.csv")
    config = json.loads((tmp_path / "o" / "config.json").read_text())["config"]
    assert len(rows) == 2 and config["markers_per_model"] == [2, 2]
    assert main([*args, "--markers-per-model", "2,2", "--engine", "sequential", "--out", str(tmp_path / "s")]) == 2
    assert "--engine sequential scores the paper's one-disk markers only" in capsys.readouterr().err
    assert main([*args, "--markers-per-model", "1,40", "--out", str(tmp_path / "f")]) == 2
    assert "2 models x 40 background markers of radius 2 do not fit" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args, "--markers-per-model", "2", "--out", str(tmp_path / "u")])
    assert "--markers-per-model takes 2 comma-separated integers, got '2'" in capsys.readouterr().err
