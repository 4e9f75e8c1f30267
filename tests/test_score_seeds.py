"""Any markers a user draws (issue 18 §1): several strokes per class on one or several marked images train one model."""

import numpy as np
import pytest
import torch

from flimexplore.cli import main
from flimexplore.data import write_seeds
from flimexplore.engine.batched import train_models
from flimexplore.engine.colour import lab_norm
from flimexplore.engine.settings import FlimSettings
from flimexplore.errors import MarkerError
from flimexplore.markers import marker_pixels
from flimexplore.study.marked import ImageMarkers
from flimexplore.study.score_seeds import score_seeds_all

EPOCHS = 3


def strokes(mask: np.ndarray, label: int, n: int, radius: int = 2) -> np.ndarray:
    """``n`` separate disks of one class spread over the class, as seeds rows."""
    where = np.argwhere(mask if label == 1 else ~mask)
    where = where[(where.min(axis=1) >= 6) & (where[:, 0] < mask.shape[0] - 6) & (where[:, 1] < mask.shape[1] - 6)]
    centres = where[np.linspace(len(where) // 5, 4 * len(where) // 5, n).astype(int)]
    px = np.unique(np.concatenate([marker_pixels(c, radius, mask.shape) for c in centres]), axis=0)
    return np.column_stack([px, np.full(len(px), label)])


def drawn(mask: np.ndarray, n_obj: int = 2, n_bg: int = 3) -> np.ndarray:
    return np.concatenate([strokes(mask, 1, n_obj), strokes(mask, 0, n_bg)]).astype(np.int64)


def marked_mask(ctx, k):
    return ctx.dataset.masks[ctx.split.marked[k]]


@pytest.mark.parametrize("settings", [None, FlimSettings(layers=2), FlimSettings(clustering="kmeans++", restarts=2)])
def test_one_image_given_as_a_list_trains_the_same_model_bit_for_bit(small_context, settings):
    m = drawn(small_context.mask)
    obj, bg = m[m[:, 2] == 1, :2], m[m[:, 2] == 0, :2]
    one = train_models(small_context.marked, [obj], [bg], [11], epochs=EPOCHS, settings=settings)
    listed = train_models([small_context.marked], [[obj]], [[bg]], [11], epochs=EPOCHS, settings=settings)
    for a, b in zip(one.bank.layers, listed.bank.layers, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a.astuple(), b.astuple(), strict=True))
    assert all(torch.equal(x, y) for x, y in zip(one.params.astuple(), listed.params.astuple(), strict=True))
    assert torch.equal(one.losses, listed.losses) and torch.equal(one.bn.running_var, listed.bn.running_var)


def test_image_markers_on_the_marked_image_alone_equal_the_single_model_path(small_context):
    m = drawn(small_context.mask)
    obj, bg = m[m[:, 2] == 1, :2], m[m[:, 2] == 0, :2]
    single = small_context.evaluate_markers([obj], [bg], [5])
    multi = small_context.evaluate_image_markers([ImageMarkers.from_rows({small_context.config.image: m})], [5])
    for part in ("val", "test"):
        for k, v in getattr(single, part).items():
            assert np.array_equal(v, getattr(multi, part)[k]), (part, k)
    for k, v in single.arrays.items():
        assert np.array_equal(v, multi.arrays[k]), k


def test_two_marked_images_share_normalisation_patches_and_decision_layer(small_context):
    ctx = small_context
    a, b = drawn(marked_mask(ctx, 0), 1, 1), drawn(marked_mask(ctx, 1), 1, 2)
    two = ctx.evaluate_image_markers([ImageMarkers.from_rows({0: a, 1: b})], [5], keep_trained=True)
    images = [lab_norm(ctx.dataset.images[ctx.split.marked[k]]) for k in (0, 1)]
    values = np.concatenate([im[m[:, 0], m[:, 1]] for im, m in zip(images, (a, b), strict=True)])
    assert np.allclose(two.arrays["norm_mean"][0], values.mean(axis=0), atol=1e-5)  # every marked pixel of both images
    alone = ctx.evaluate_image_markers([ImageMarkers.from_rows({0: a})], [5])
    assert not np.array_equal(two.arrays["kernels"], alone.arrays["kernels"])
    n_pixels = sum(marked_mask(ctx, k).size for k in (0, 1))
    bn = two.trained.bn  # batch norm over the pixels of both marked images
    assert torch.allclose(bn.running_var, bn.var * n_pixels / (n_pixels - 1))
    # an image may hold one class only: the object pixels all lie on image 1 here
    only = ImageMarkers.from_rows({0: a[a[:, 2] == 0], 1: b})
    assert 0.0 <= ctx.evaluate_image_markers([only], [5]).val["dice"][0] <= 1.0


def test_image_markers_refuse_what_does_not_fit(small_context):
    shapes = small_context.marked_shapes
    with pytest.raises(MarkerError, match="no marked image 5"):
        ImageMarkers.from_rows({5: [[3, 3, 1], [9, 9, 0]]}).check(shapes)
    with pytest.raises(MarkerError, match="outside the 128x128 marked image 0"):
        ImageMarkers.from_rows({0: [[3, 300, 1], [9, 9, 0]]}).check(shapes)
    with pytest.raises(MarkerError, match="no object pixel"):
        ImageMarkers.from_rows({0: [[9, 9, 0]], 1: [[4, 4, 0]]}).check(shapes)


@pytest.fixture
def seeds_dir(tmp_path, small_context):
    ctx = small_context
    folder = tmp_path / "markers"
    folder.mkdir()
    for k in (0, 1):
        stem = ctx.dataset.stems[ctx.split.marked[k]]
        write_seeds(folder / f"{stem}-seeds.txt", drawn(marked_mask(ctx, k)), marked_mask(ctx, k).shape)
    return folder


def _base(cfg, out):
    return ["--n-images", str(cfg.n_images), "--seed", str(cfg.seed), "--epochs", str(EPOCHS), "--quiet", "--out", str(out)]


def test_score_trains_one_model_from_the_seeds_files_of_two_marked_images_and_resumes(tmp_path, seeds_dir, small_config,
                                                                                      small_context, capsys):
    files = sorted(seeds_dir.iterdir())
    out = tmp_path / "o"
    assert main(["score", "--seeds", str(files[0]), "--image", "0", "--seeds", str(files[1]), "--image", "1",
                 *_base(small_config, out)]) == 0
    text = (out / "results.csv").read_text().splitlines()
    assert len(text) == 2 and "1 models (your markers) scored" in capsys.readouterr().out
    cfg = small_config.replace(epochs=EPOCHS)
    res = score_seeds_all(cfg, seeds_dir, context=small_context)  # a folder (LIDS markers/): the stems name the images
    assert round(float(res.rows[0]["val_dice"]), 6) == float(text[1].split(",")[12])
    marks = res.markers[0]
    direct = small_context.evaluate_image_markers([marks], [res.rows[0]["seed"]])
    assert res.rows[0]["val_dice"] == round(float(direct.val["dice"][0]), 6) and marks.images == (0, 1)
    before = (out / "results.csv").read_bytes()
    assert main(["score", "--seeds", str(seeds_dir), *_base(small_config, out)]) == 0  # the same model: resumed
    assert (out / "results.csv").read_bytes() == before and (out / "heatmap_split0.png").exists()


def _error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("flimexplore: error:") and "\n" not in err
    return err


def test_bad_seeds_files_give_one_line_naming_the_file_and_the_fix(tmp_path, small_config, small_context, capsys):
    ctx = small_context
    shape = ctx.mask.shape
    out = tmp_path / "o"
    val_stem = ctx.dataset.stems[ctx.split.val[0]]
    cases = []

    def case(name, text_or_rows, needle, extra=()):
        path = tmp_path / name
        if isinstance(text_or_rows, str):
            path.write_text(text_or_rows)
        else:
            write_seeds(path, text_or_rows, shape)
        cases.append((path, needle, list(extra)))

    good = drawn(ctx.mask)
    case("nosuch-seeds.txt", good, "not an image of dataset")
    case(f"{val_stem}-seeds.txt", good, "a validation image of this split")
    case("a-seeds.txt", "2 128 128\n5 5 -1 1\n9 9 -1 2\n", "label 2 is not 0 (background) or 1 (object)", ["--image", "0"])
    case("b-seeds.txt", "", "is empty", ["--image", "0"])
    case("c-seeds.txt", "0 128 128\n", "holds no marker pixel", ["--image", "0"])
    case("d-seeds.txt", "2 128 128\n5 5 -1 1\n400 9 -1 0\n", "outside the 128x128 image", ["--image", "0"])
    case("e-seeds.txt", good[good[:, 2] == 1], "no background pixel", ["--image", "0"])
    case("f.txt", good, "does not say which image")
    case("g-seeds.txt", good, "--image 7 does not exist", ["--image", "7"])
    for path, needle, extra in cases:
        err = _error(capsys, ["score", "--seeds", str(path), *extra, *_base(small_config, out)])
        assert str(path) in err and needle in err, err
    err = _error(capsys, ["score", "--seeds", str(cases[0][0]), "--seeds", str(cases[1][0]), "--image", "0",
                          *_base(small_config, out)])
    assert "one --image K per --seeds FILE" in err
    path = tmp_path / "h-seeds.txt"
    write_seeds(path, good, shape)
    err = _error(capsys, ["score", "--seeds", str(path), "--image", "0", "--seeds", str(path), "--image", "0",
                          *_base(small_config, out)])
    assert "both mark image 0" in err
    assert not out.exists()  # nothing half-written
