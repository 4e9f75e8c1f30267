"""Tests of folder datasets in the images/masks and the LIDS orig/label layouts."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
import skimage.io
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st

from flimexplore.data import load_dataset, load_folder, write_seeds
from flimexplore.data.folder import as_rgb_float
from flimexplore.errors import DatasetError, MarkerError, MaskWarning

GREY = (np.arange(16 * 20, dtype=np.uint16).reshape(16, 20) % 256).astype(np.uint8)
MASK = np.zeros((16, 20), dtype=np.uint8)
MASK[4:10, 5:12] = 255


def save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".tif", ".tiff"):
        rgb = array.ndim == 3 and array.shape[2] in (3, 4)
        tifffile.imwrite(path, array, photometric="rgb" if rgb else "minisblack")
    else:
        skimage.io.imsave(path, array, check_contrast=False)


def folder(root, pairs, layout=("images", "masks")):
    """Write {stem+suffix: (image, mask)} pairs; masks go to <stem>.png."""
    for name, (image, mask) in pairs.items():
        save(root / layout[0] / name, image)
        save(root / layout[1] / (Path(name).stem + ".png"), mask)
    return root


def test_images_masks_layout(tmp_path):
    rgb = np.stack([GREY, 255 - GREY, np.zeros_like(GREY)], axis=2)
    rgba = np.concatenate([rgb, np.full_like(GREY, 7)[..., None]], axis=2)
    root = folder(tmp_path / "mine", {"b.png": (GREY, MASK), "a.PNG": (rgb, MASK), "c.png": (rgba, MASK)})
    ds = load_folder(root)
    assert ds.name == "mine" and ds.stems == ("a", "b", "c") and ds.markers == {}
    assert (ds.radius, ds.n_bg, ds.n_superpixels) == (3, 30, 20)
    assert "binarised" not in ds.description and str(root.resolve()) in ds.origin
    np.testing.assert_allclose(ds.images[0], rgb / 255.0, atol=1e-7)
    np.testing.assert_allclose(ds.images[1], np.repeat(GREY[..., None] / 255.0, 3, axis=2), atol=1e-7)
    np.testing.assert_allclose(ds.images[2], rgb / 255.0, atol=1e-7)
    for image, mask in zip(ds.images, ds.masks, strict=True):
        assert image.dtype == np.float32 and image.shape == (16, 20, 3)
        np.testing.assert_array_equal(mask, MASK > 0)


def test_tiff_dtypes_scaling(tmp_path):
    u16 = (GREY.astype(np.uint16) * 257)[..., None].repeat(3, axis=2)
    f32 = GREY.astype(np.float32) * 10.0 - 100.0  # leaves [0, 1]: min-max scaled
    root = folder(tmp_path, {"u.tif": (u16, MASK), "f.tiff": (f32, MASK)})
    ds = load_folder(root)
    np.testing.assert_allclose(ds.images[1], u16 / 65535.0, atol=1e-6)
    expected = (GREY - GREY.min()) / (GREY.max() - GREY.min())
    np.testing.assert_allclose(ds.images[0][..., 1], expected, atol=1e-6)


def test_jpeg_is_read(tmp_path):
    root = folder(tmp_path, {"j.jpg": (np.stack([GREY] * 3, axis=2), MASK)})
    assert load_folder(root).images[0].shape == (16, 20, 3)


def test_multi_valued_and_rgb_masks(tmp_path):
    labels = np.zeros((16, 20), np.uint8)
    labels[1:4, 1:4], labels[8:12, 8:12] = 1, 2
    rgb_mask = np.zeros((16, 20, 3), np.uint8)
    rgb_mask[2:5, 2:5, 2] = 200  # object only in the blue channel
    root = folder(tmp_path, {"l.png": (GREY, labels), "r.png": (GREY, rgb_mask)})
    with pytest.warns(MaskWarning, match=r"1 mask holds 3 to 8 distinct values, like a label image.*l\.png \(values 0/1/2\)"):
        ds = load_folder(root)
    np.testing.assert_array_equal(ds.masks[0], labels > 0)
    np.testing.assert_array_equal(ds.masks[1], rgb_mask[..., 2] > 0)
    assert "like a label image" in ds.description and "l.png" in ds.description


def test_lids_layout_with_markers(tmp_path):
    root = folder(tmp_path / "lids", {"000001.png": (GREY, MASK), "000002.png": (GREY, MASK)}, ("orig", "label"))
    (root / "markers").mkdir()
    write_seeds(root / "markers" / "000002-seeds.txt", np.array([[5, 6, 1], [0, 19, 0]]), (16, 20))
    ds = load_dataset(root)
    assert ds.stems == ("000001", "000002") and list(ds.markers) == ["000002"]
    np.testing.assert_array_equal(ds.markers["000002"], [[5, 6, 1], [0, 19, 0]])
    assert load_dataset(str(root), n_images=1).markers == {}


def test_n_images_takes_the_first_stems(tmp_path):
    root = folder(tmp_path, {f"{s}.png": (GREY, MASK) for s in "dcba"})
    assert load_folder(root, n_images=2).stems == ("a", "b")


def test_missing_path_and_file_path(tmp_path):
    with pytest.raises(DatasetError, match="no dataset folder at"):
        load_folder(tmp_path / "nope")
    with pytest.raises(DatasetError, match="no dataset named"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(DatasetError, match="is a file"):
        load_folder(tmp_path / "f.txt")


def test_no_layout_and_empty_folder(tmp_path):
    (tmp_path / "pictures").mkdir()
    with pytest.raises(DatasetError, match=r"neither images/ \+ masks/.*found: pictures/"):
        load_folder(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    with pytest.raises(DatasetError, match="images holds no images"):
        load_folder(tmp_path)


def test_unmatched_stems_listed_both_ways(tmp_path):
    root = folder(tmp_path, {f"i{k}.png": (GREY, MASK) for k in range(7)})
    for k in range(7):
        (root / "masks" / f"i{k}.png").rename(root / "masks" / f"m{k}.png")
    (root / "masks" / "m0.png").rename(root / "masks" / "i0.png")
    with pytest.raises(DatasetError) as info:
        load_folder(root)
    message = str(info.value)
    assert "6 images" in message and "['i1', 'i2', 'i3', 'i4', 'i5']" in message and "i6" not in message
    assert "6 masks" in message and "['m1', 'm2', 'm3', 'm4', 'm5']" in message


def test_duplicate_stems(tmp_path):
    root = folder(tmp_path, {"a.png": (GREY, MASK)})
    save(root / "images" / "a.tif", GREY)
    with pytest.raises(DatasetError, match="two files with stem 'a'"):
        load_folder(root)


def test_corrupt_image(tmp_path):
    root = folder(tmp_path, {"a.png": (GREY, MASK)})
    (root / "images" / "a.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DatasetError, match=r"a\.png is not a readable PNG image"):
        load_folder(root)


@pytest.mark.parametrize(
    ("image", "mask", "match"),
    [
        (GREY, MASK[:, :18], r"shape \(16, 18\) but its image a\.tif has shape \(16, 20\)"),
        (np.where(MASK > 0, np.nan, 0.5).astype(np.float32), MASK, "NaN or infinite"),
        (np.full((16, 20), np.inf, np.float32), MASK, "NaN or infinite"),
        (GREY[:8, :8], MASK[:8, :8], "smaller than 16x16"),
    ],
)
def test_bad_pairs_are_named(tmp_path, image, mask, match):
    root = folder(tmp_path, {"a.tif": (image, mask)})
    with pytest.raises(DatasetError, match=match) as info:
        load_folder(root)
    assert "a." in str(info.value)


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("a-seeds.txt", "1 20\n0 0 -1 1\n", "line 1: header"),
        ("a-seeds.txt", "1 20 16\n0 0 1\n", "line 2: .*3 fields"),
        ("a-seeds.txt", "2 20 16\n0 0 -1 1\n", "announces 2 markers but 1"),
        ("a-seeds.txt", "2 20 16\n0 0 -1 1\n20 3 -1 0\n", r"line 3: '20 3 -1 0'.*outside"),
        ("a-seeds.txt", "1 16 20\n0 0 -1 1\n", r"is for a 20x16 image .*but its image is 16x20 .*x and y look swapped"),
        ("a-seeds.txt", "1 30 30\n0 0 -1 1\n", r"is for a 30x30 image .*but its image is 16x20 \(width 20, height 16\)$"),
        ("zzz-seeds.txt", "1 20 16\n0 0 -1 1\n", "no image with stem 'zzz'"),
    ],
)
def test_bad_seeds_files(tmp_path, name, text, match):
    root = folder(tmp_path, {"a.png": (GREY, MASK)}, ("orig", "label"))
    (root / "markers").mkdir()
    (root / "markers" / name).write_text(text)
    with pytest.raises(MarkerError, match=match):
        load_folder(root)


def test_as_rgb_float_scales_each_dtype():
    grey8 = np.array([[0, 255]] * 16 * 8, dtype=np.uint8).reshape(16, 16)
    out = as_rgb_float(grey8, "x")
    assert out.dtype == np.float32 and out.shape == (16, 16, 3)
    np.testing.assert_array_equal(out[0, :2, 0], [0.0, 1.0])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    np.testing.assert_allclose(as_rgb_float(np.full((16, 16), 65535, np.uint16), "x"), 1.0)
    floats = np.linspace(-3, 5, 256, dtype=np.float32).reshape(16, 16)
    scaled = as_rgb_float(floats, "x")
    assert scaled.min() == 0.0 and scaled.max() == 1.0
    kept = np.full((16, 16, 3), 0.25, np.float32)
    np.testing.assert_array_equal(as_rgb_float(kept, "x"), kept)
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 3] = 255
    np.testing.assert_array_equal(as_rgb_float(rgba, "x"), 0.0)


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros((8, 20), np.uint8), "smaller than 16x16"),
        (np.zeros((16, 16, 5), np.uint8), "not a grey, RGB or RGBA"),
        (np.full((16, 16), np.inf, np.float32), "NaN or infinite"),
    ],
)
def test_as_rgb_float_errors_name_the_file(array, match):
    with pytest.raises(DatasetError, match=f"file.png: .*{match}"):
        as_rgb_float(array, "file.png")


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(16, 48),
    w=st.integers(16, 48),
    dtype=st.sampled_from(["uint8", "uint16", "float32"]),
    rgb=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_random_images_round_trip(h, w, dtype, rgb, seed):
    rng = np.random.default_rng(seed)
    shape = (h, w, 3) if rgb else (h, w)
    if dtype == "float32":
        image = rng.random(shape, dtype=np.float32)
        image.flat[:2] = (0.0, 1.0)
        expected = image
    else:
        top = np.iinfo(dtype).max
        image = rng.integers(0, top, size=shape, endpoint=True).astype(dtype)
        expected = image / top
    if not rgb:
        expected = np.repeat(expected[..., None], 3, axis=2)
    mask = rng.random((h, w)) < 0.3
    mask.flat[:2] = (True, False)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        save(root / "images" / ("x.png" if dtype == "uint8" else "x.tif"), image)
        save(root / "masks" / "x.png", mask.astype(np.uint8) * 255)
        ds = load_folder(root)
    out = ds.images[0]
    assert out.dtype == np.float32 and out.shape == (h, w, 3)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    np.testing.assert_array_equal(ds.masks[0], mask)
