
"""Bad input raises a specific FlimExploreError with a readable message (issue 5, API side)."""

import dataclasses
import errno
import os
import shutil
from contextlib import nullcontext

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import torch

from flimexplore.data import Dataset, load_dataset
from flimexplore.engine.scores import metrics_from_counts
from flimexplore.errors import (
    ConfigError,
    DatasetError,
    DeviceError,
    FlimExploreError,
    MarkerError,
    MaskWarning,
    OutputError,
    ResumeError,
)
from flimexplore.markers import MarkerSet, sample_markers, validate_markers
from flimexplore.study.config import StudyConfig
from flimexplore.study.context import StudyContext
from flimexplore.study.run import dense_positions, run_study, run_study_all
from flimexplore.study.store import ResultStore, read_results

TINY = StudyConfig(dataset="fish", n_images=12, splits=1, n_bg=3, epochs=3, seed=1)


def write_folder(root, n=6, size=32):
    """A valid images/masks folder of `n` noisy RGB images with a 12x12 object each."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        iio.imwrite(root / "images" / f"im{i:02d}.png", (rng.random((size, size, 3)) * 255).astype(np.uint8))
        iio.imwrite(root / "masks" / f"im{i:02d}.png", square_mask(size, i))
    return root


def square_mask(size, shift=0):
    mask = np.zeros((size, size), np.uint8)
    mask[10:22, 8 + shift % 4 : 20 + shift % 4] = 255
    return mask


@pytest.fixture(scope="module")
def tiny_context():
    return StudyContext(TINY, device="cpu")


@pytest.fixture(scope="module")
def finished(tiny_context, tmp_path_factory):
    """A folder holding the finished TINY study (copy it before changing it)."""
    out = tmp_path_factory.mktemp("finished") / "o"
    run_study_all(TINY, out, context=tiny_context)
    return out


# --- the dataset -------------------------------------------------------------------------------


def test_missing_and_empty_dataset_paths(tmp_path):
    with pytest.raises(
        DatasetError, match="no dataset named .* and no folder at that path; known names: fish"
    ):
        StudyContext(TINY.replace(dataset=str(tmp_path / "missing")), device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="neither images/ \\+ masks/ nor orig/ \\+ label/"):
        load_dataset(tmp_path / "empty")
    (tmp_path / "e2" / "images").mkdir(parents=True)
    (tmp_path / "e2" / "masks").mkdir()
    with pytest.raises(DatasetError, match="holds no images"):
        load_dataset(tmp_path / "e2")


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ("shape", r"masks/im03\.png has shape \(32, 20\) but its image im03\.png has shape \(32, 32\)"),
        ("no_object", r"marked image 'im02' \(--image 0\) of dataset 'd' has no object pixels; the marked image must "
         r"hold both .*: --image 1 \('im01'\), --image 2 \('im05'\)$"),
        ("no_background", r"marked image 'im02' \(--image 0\) of dataset 'd' has no background pixels"),
        ("corrupt", r"im03\.png is not a readable PNG image"),
        ("unmatched", r"images in .* have no mask .*\['im03'\].*masks in .* have no image .*\['zz03'\]"),
        ("nan", r"im03\.tif: image holds NaN or infinite values"),
        ("inf", r"im03\.tif: image holds NaN or infinite values"),
    ],
)
def test_bad_folder_datasets_are_named(tmp_path, damage, match):
    root = write_folder(tmp_path / "d")
    image, mask = root / "images" / "im03.png", root / "masks" / "im03.png"
    if damage == "shape":
        iio.imwrite(mask, square_mask(32)[:, :20])
    elif damage == "no_object":  # im02 is the marked image of seed 1
        iio.imwrite(root / "masks" / "im02.png", np.zeros((32, 32), np.uint8))
    elif damage == "no_background":
        iio.imwrite(root / "masks" / "im02.png", np.full((32, 32), 7, np.uint8))
    elif damage == "corrupt":
        image.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    elif damage == "unmatched":
        mask.rename(root / "masks" / "zz03.png")
    else:
        image.unlink()
        pixels = np.random.default_rng(1).random((32, 32, 3)).astype(np.float32)
        pixels[5, 5, 1] = np.nan if damage == "nan" else np.inf
        tifffile.imwrite(root / "images" / "im03.tif", pixels, photometric="rgb")
    warns = pytest.warns(MaskWarning, match=r"im02\.png \(100 %\)") if damage == "no_background" else nullcontext()
    with pytest.raises(DatasetError, match=match), warns:
        StudyContext(TINY.replace(dataset=str(root), n_bg=2, radius=2), device="cpu")


def test_label_like_mask_is_read_non_zero_and_warned(tmp_path):
    root = write_folder(tmp_path / "d")
    grey = square_mask(32, 3) // 255 * 128
    grey[10:14] *= 2  # three values: 0, 128, 256 -> 0
    grey[20, 10] = 40
    iio.imwrite(root / "masks" / "im03.png", grey.astype(np.uint8))
    with pytest.warns(MaskWarning, match=r"like a label image, and was read as 'non-zero = object': im03\.png"):
        ds = load_dataset(root)
    assert "like a label image" in ds.description
    assert ds.masks[3].sum() == (grey > 0).sum()


def test_seeds_file_malformed_or_outside_the_image(tmp_path):
    root = write_folder(tmp_path / "d")
    (root / "markers").mkdir()
    seeds = root / "markers" / "im01-seeds.txt"
    seeds.write_text("1 32 32\n40 3 -1 1\n")
    with pytest.raises(MarkerError, match=r"im01-seeds\.txt line 2: .*outside the 32x32 image"):
        load_dataset(root)
    seeds.write_text("2 32 32\n4 3 -1 1\n")
    with pytest.raises(MarkerError, match="announces 2 markers but 1"):
        load_dataset(root)
    seeds.write_text("1 32 32\n4 x -1 1\n")
    with pytest.raises(MarkerError, match="line 2: .*non-integer"):
        load_dataset(root)


def test_nan_in_a_dataset_built_in_memory_never_reaches_the_engine():
    ds = load_dataset("fish", n_images=12)
    images = list(ds.images)
    images[4] = images[4].copy()
    images[4][0, 0, 0] = np.nan
    with pytest.raises(DatasetError, match="NaN or infinite"):
        dataclasses.replace(ds, images=images)
    images[4][0, 0, 0] = 0.5
    good = dataclasses.replace(ds, images=images)
    good.images[4][0, 0, 0] = np.inf  # arrays are mutable: the context checks again
    with pytest.raises(DatasetError, match="'fish_004' .* NaN or infinite"):
        StudyContext(TINY, device="cpu", dataset=good)


def test_too_few_images_for_the_split():
    with pytest.raises(DatasetError, match="has 3 images but the split needs at least 5"):
        StudyContext(TINY.replace(n_images=3), device="cpu")


@pytest.mark.parametrize("image", [3, 7])
def test_marked_image_out_of_range(image):
    with pytest.raises(
        DatasetError, match=f"marked image {image} does not exist: the split has 3 marked images"
    ):
        StudyContext(TINY.replace(image=image), device="cpu")


# --- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"radius": 0}, r"radius \(--radius\) must be None or an integer >= 1, got 0"),
        ({"radius": -1}, r"radius \(--radius\) must be None or an integer >= 1, got -1"),
        ({"radius": 2.5}, r"radius .* got 2.5"),
        ({"n_bg": 0}, r"n_bg \(--n-bg\) must be None or an integer >= 1, got 0"),
        ({"epochs": 0}, r"epochs \(--epochs\) must be an integer >= 1, got 0"),
        ({"epochs": -3}, r"epochs .* got -3"),
        ({"splits": 0}, r"splits \(--object-markers\) must be an integer >= 1, got 0"),
        ({"image": -1}, r"image \(--image\) must be an integer >= 0, got -1"),
        ({"n_images": 0}, r"n_images \(--n-images\) must be None or an integer >= 1"),
        ({"lr": 0.0}, r"lr \(--lr\) must be a finite number > 0, got 0.0"),
        ({"lr": float("nan")}, r"lr .* got nan"),
        ({"seed": -1}, r"seed \(--seed\) must be an integer >= 0"),
        ({"dense_spacing": 0}, r"dense_spacing \(--dense-spacing\) must be None or an integer >= 1"),
        ({"dataset": ""}, r"dataset \(--dataset\) must be a preset name or a folder path"),
        ({"epochs": True}, r"epochs .* got True"),
    ],
)
def test_settings_out_of_range_are_refused_before_any_work(change, match):
    cfg = TINY.replace(**change)
    with pytest.raises(ConfigError, match=match):
        cfg.validate()
    with pytest.raises(ConfigError, match=match):
        StudyContext(cfg, device="cpu")
    with pytest.raises(ConfigError, match=match):
        next(run_study(cfg, device="cpu"))


def test_every_wrong_setting_is_named_at_once():
    with pytest.raises(ConfigError) as info:
        TINY.replace(epochs=0, lr=-1.0, splits=0).validate()
    assert all(name in str(info.value) for name in ("epochs", "lr", "splits"))


def test_config_normalises_numpy_and_paths(tmp_path):
    cfg = StudyConfig(dataset=tmp_path, epochs=np.int64(3), lr=np.float32(0.5), dense=np.bool_(True))
    assert cfg.dataset == str(tmp_path) and type(cfg.epochs) is int and type(cfg.lr) is float
    assert StudyConfig.from_json(cfg.validate().to_json()) == cfg
    with pytest.raises(ConfigError, match="unknown study settings"):
        StudyConfig.from_dict({"epoch": 3})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"engine": "fast"}, "engine .* 'batched' or 'sequential'"),
        ({"model_chunk": 0}, r"model_chunk \(--chunk\) must be an integer >= 1"),
        ({"memory_mb": 0}, r"memory_mb \(--memory-mb\) must be a finite number > 0"),
        ({"memory_mb": float("inf")}, "memory_mb"),
    ],
)
def test_run_options_out_of_range(kwargs, match, tiny_context):
    with pytest.raises(ConfigError, match=match):
        next(run_study(TINY, context=tiny_context, **kwargs))


# --- markers -------------------------------------------------------------------------------------


def test_radius_too_big_and_too_many_markers(tiny_context):
    with pytest.raises(
        MarkerError, match="radius 100 is too big for a 128x128 image.* largest radius that fits is 42"
    ):
        next(run_study(TINY.replace(radius=100), context=tiny_context))
    with pytest.raises(MarkerError, match=r"500 background markers of radius 3 do not fit: only (\d+) fit"):
        next(run_study(TINY.replace(n_bg=500), context=tiny_context))
    with pytest.raises(MarkerError, match="no object pixel keeps"):
        mask = np.zeros((64, 64), bool)
        mask[:3, :3] = True
        sample_markers(mask, 2, 3)


def test_dense_spacing_zero_is_refused_not_replaced():
    mask = np.zeros((40, 40), bool)
    mask[15:25, 15:25] = True
    with pytest.raises(MarkerError, match="spacing must be positive, got 0"):
        dense_positions(mask, np.array([20, 20]), radius=2, spacing=0)


@pytest.mark.parametrize(
    ("obj", "bg", "radius", "match"),
    [
        ([20, 20], [[2, 2]], 0, "radius must be a positive integer"),
        ([20, 20, 1], [[2, 2]], 2, "object marker centre must be one integer"),
        ([20.5, 20], [[2, 2]], 2, "object marker centre must be one integer"),
        ([20, 20], [2, 2], 2, r"shape \(N, 2\)"),
        ([20, 20], [[2.2, 2]], 2, r"integer \(row, col\) pairs"),
        ([20, 20], [[2, 2], [-1, 5]], 2, r"background #1 marker centre \(-1, 5\) is outside the 40x40 image"),
        ([2, 2], [[3, 3]], 2, r"object marker centre \(2, 2\) lies on the background"),
        ([20, 20], [[2, 2], [12, 12]], 2, r"background #1 marker centre \(12, 12\) lies on the object"),
    ],
)
def test_user_markers_are_validated(obj, bg, radius, match):
    mask = np.zeros((40, 40), bool)
    mask[10:30, 10:30] = True
    with pytest.raises(MarkerError, match=match):
        validate_markers(MarkerSet(np.array(obj), np.array(bg), radius), mask)


def test_the_engine_refuses_markers_on_the_wrong_class(tiny_context):
    mask = tiny_context.mask
    obj = np.argwhere(mask)[:1]
    bg = np.argwhere(~mask)[:1]
    with pytest.raises(MarkerError, match="object marker 0 at .* lies on the background"):
        tiny_context.evaluate(bg, bg, [0])
    with pytest.raises(MarkerError, match="background marker 0 at .* lies on the object"):
        tiny_context.evaluate(obj, obj, [0])
    with pytest.raises(MarkerError, match="outside the 128x128 image"):
        tiny_context.evaluate(obj, np.array([[500, 3]]), [0])
    with pytest.raises(MarkerError, match="1 marker pairs but 2 seeds"):
        tiny_context.evaluate(obj, bg, [0, 1])


def test_user_markers_at_the_border_are_evaluated(tiny_context):
    """Disks clipped by the border differ in size; the context evaluates them in groups."""
    mask, r = tiny_context.mask, tiny_context.config.radius
    inner = np.zeros_like(mask)
    inner[20:-20, 20:-20] = True
    obj = np.repeat(np.argwhere(mask & inner)[:1], 3, axis=0)
    bg = np.array([[0, 0], [1, 64], np.argwhere(~mask & inner)[0]])  # corner, edge, inside
    assert not mask[bg[:, 0], bg[:, 1]].any()
    validate_markers(MarkerSet(obj[0], bg, r), mask)
    together = tiny_context.evaluate(obj, bg, [5, 6, 7])
    alone = [tiny_context.evaluate(obj[i : i + 1], bg[i : i + 1], [5 + i]) for i in range(3)]
    for i in range(3):
        assert together.val["dice"][i] == pytest.approx(alone[i].val["dice"][0], abs=1e-6)
        assert together.best_epoch[i] == alone[i].best_epoch[0]
        np.testing.assert_allclose(together.arrays["kernels"][i], alone[i].arrays["kernels"][0], atol=1e-6)


# --- device ----------------------------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda():
    with pytest.raises(DeviceError, match="CUDA is not available on this machine.*use --device cpu or auto"):
        StudyContext(TINY, device="cuda")


def test_unknown_device():
    with pytest.raises(DeviceError, match="unknown device 'tpu'; use auto, cpu or cuda"):
        StudyContext(TINY, device="tpu")


# --- the output folder -----------------------------------------------------------------------------


def test_resume_with_other_settings_names_them(tmp_path, finished):
    out = shutil.copytree(finished, tmp_path / "o")
    with pytest.raises(ResumeError) as info:
        run_study_all(TINY.replace(epochs=4, seed=2), out, device="cpu")
    said = str(info.value)
    assert "holds 3 finished models of a study with different settings" in said
    assert "epochs: folder has 3, asked 4" in said and "seed: folder has 1, asked 2" in said
    assert len(read_results(out / "results.csv")) == 3  # nothing was touched


def test_changed_pixels_refuse_to_resume(tmp_path, tiny_context, finished):
    out = shutil.copytree(finished, tmp_path / "o")
    ds = tiny_context.dataset
    images = [im.copy() for im in ds.images]
    images[0][0, 0] = 1.0 - images[0][0, 0]
    other = Dataset(
        ds.name, images, ds.masks, ds.stems, ds.description, ds.origin, ds.radius, ds.n_bg, ds.n_superpixels
    )
    with pytest.raises(ResumeError, match="data_sha256: folder has"):
        run_study_all(TINY, out, context=StudyContext(TINY, "cpu", dataset=other))


def test_a_folder_without_finished_models_is_taken_over(tmp_path, tiny_context):
    out = tmp_path / "o"
    ResultStore(out, tiny_context.config.replace(epochs=9), tiny_context.identity()).close()
    res = run_study_all(TINY, out, context=tiny_context)
    assert res.complete and len(read_results(out / "results.csv")) == 3


def test_out_is_a_file_or_below_a_file(tmp_path, tiny_context):
    f = tmp_path / "f.txt"
    f.write_text("x")
    with pytest.raises(OutputError, match="f.txt is a file; give a folder"):
        next(run_study(TINY, f, context=tiny_context))
    with pytest.raises(OutputError, match="cannot write into the output folder .*f.txt/sub"):
        next(run_study(TINY, f / "sub", context=tiny_context))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_folder(tmp_path, tiny_context):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="cannot write into the output folder .*ro: Permission denied"):
            next(run_study(TINY, out, context=tiny_context))
    finally:
        out.chmod(0o755)


def test_read_only_file_system_is_reported(tmp_path, tiny_context, monkeypatch):
    """The same check as above, for machines where the tests run as root: mkstemp fails."""
    import flimexplore.study.store as results

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(results.tempfile, "mkstemp", read_only)
    with pytest.raises(OutputError, match="cannot write into the output folder .*: Read-only file system"):
        next(run_study(TINY, tmp_path / "o", context=tiny_context))


def test_disk_full_mid_study_keeps_the_finished_chunks(tmp_path, tiny_context, monkeypatch):
    import flimexplore.study.store as results

    real, calls = results.atomic_write_bytes, []

    def fills_up(path, data):
        calls.append(path.name)
        if path.name == "results.csv" and calls.count("results.csv") == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, data)

    monkeypatch.setattr(results, "atomic_write_bytes", fills_up)
    out = tmp_path / "o"
    with pytest.raises(
        OutputError, match=r"cannot write .*results.csv: No space left on device; the 1 models"
    ):
        run_study_all(TINY, out, context=tiny_context, model_chunk=1)
    assert [r["model"] for r in read_results(out / "results.csv")] == [0]
    monkeypatch.setattr(results, "atomic_write_bytes", real)
    assert len(run_study_all(TINY, out, context=tiny_context, model_chunk=1).rows) == 3


def test_foreign_folders_are_not_used(tmp_path, tiny_context):
    a = tmp_path / "a"
    a.mkdir()
    (a / "config.json").write_text('{"learning_rate": 3}')
    with pytest.raises(OutputError, match="config.json was not written by flimexplore"):
        next(run_study(TINY, a, context=tiny_context))
    (a / "config.json").write_text("{not json")
    with pytest.raises(OutputError, match="cannot read .*config.json"):
        next(run_study(TINY, a, context=tiny_context))
    b = tmp_path / "b"
    b.mkdir()
    (b / "results.csv").write_text("x,y\n1,2\n")
    with pytest.raises(OutputError, match="no config.json, so it is not a flimexplore study folder"):
        next(run_study(TINY, b, context=tiny_context))
    assert (b / "results.csv").read_text() == "x,y\n1,2\n"


def test_a_folder_is_written_by_one_study_at_a_time(tmp_path, tiny_context):
    out = tmp_path / "o"
    first = run_study(TINY, out, context=tiny_context)
    next(first)
    with pytest.raises(OutputError, match="another running study is writing into"):
        next(run_study(TINY, out, context=tiny_context))
    first.close()  # ends the first study: its lock goes
    assert run_study_all(TINY, out, context=tiny_context).complete


# --- scores are always defined -----------------------------------------------------------------------


def test_dice_conventions_for_empty_masks_and_predictions():
    # (TP, FP, FN, TN): empty truth and prediction; empty prediction; empty truth; all wrong
    s = metrics_from_counts(np.array([[0, 0, 0, 9], [0, 0, 4, 5], [0, 3, 0, 6], [0, 9, 0, 0]]))
    assert s["dice"].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert s["sensitivity"].tolist() == [1.0, 0.0, 1.0, 1.0]
    assert s["specificity"].tolist() == [1.0, 1.0, 6 / 9, 0.0]
    assert all(np.isfinite(v).all() for v in s.values())


def test_degenerate_models_give_finite_scores(tmp_path, tiny_context):
    """A huge learning rate and a blank marked image still give defined numbers, never NaN."""
    res = run_study_all(
        TINY.replace(lr=1e6), tmp_path / "o", context=StudyContext(TINY.replace(lr=1e6), "cpu")
    )
    ds = tiny_context.dataset
    blank = dataclasses.replace(ds, images=[np.zeros_like(i) for i in ds.images])
    flat = run_study_all(TINY, tmp_path / "b", context=StudyContext(TINY, "cpu", dataset=blank))
    for out, r in ((tmp_path / "o", res), (tmp_path / "b", flat)):
        rows = read_results(out / "results.csv")
        assert len(rows) == len(r.rows) == 3
        assert all(np.isfinite(v) for row in rows for k, v in row.items() if k != "image_stem")
    assert flat.column("val_dice").tolist() == [0.0, 0.0, 0.0]


def test_every_error_is_a_flimexplore_error_and_a_value_error():
    for cls in (ConfigError, DatasetError, DeviceError, MarkerError, OutputError, ResumeError):
        assert issubclass(cls, FlimExploreError) and issubclass(cls, ValueError)
