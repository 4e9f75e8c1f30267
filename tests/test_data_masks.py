"""Mask conventions of users' folders: object values, lossy (JPEG) masks, label images, inverted masks."""

import struct
import zlib

import imageio.v3 as iio
import numpy as np
import pytest

from flimexplore.cli.main import main
from flimexplore.data import load_dataset, load_folder
from flimexplore.data.folder import MAX_PIXELS, image_size
from flimexplore.data.masks import normalise_object_label, read_mask
from flimexplore.engine.scores import dice
from flimexplore.errors import DatasetError, MaskWarning
from flimexplore.study.config import StudyConfig

SIZE = 48


def disk_mask(shift=0):
    rr, cc = np.mgrid[:SIZE, :SIZE]
    return (rr - 24) ** 2 + (cc - 20 - shift) ** 2 <= 8**2  # about 9 % object


def write(root, masks, suffix=".png", quality=None, n=6):
    """n noisy RGB images with the given masks (uint8 arrays, one per image or one for all)."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        mask = masks[i] if isinstance(masks, list) else masks
        iio.imwrite(root / "images" / f"im{i:02d}.png", (rng.random((SIZE, SIZE, 3)) * 255).astype(np.uint8))
        extra = {"quality": quality} if quality else {}
        iio.imwrite(root / "masks" / f"im{i:02d}{suffix}", mask, extension=suffix, **extra)
    return root


@pytest.mark.parametrize("quality", [75, 40])
def test_jpeg_masks_are_thresholded_at_half_the_range_with_a_warning(tmp_path, quality):
    truth = [disk_mask(i % 3) for i in range(6)]
    root = write(tmp_path / "j", [t.astype(np.uint8) * 255 for t in truth], ".jpg", quality)
    raw = iio.imread(root / "masks" / "im00.jpg")
    assert len(np.unique(raw)) > 8 and (raw > 0).mean() > 1.1 * truth[0].mean()  # "non-zero" would grow the object
    with pytest.warns(MaskWarning, match=r"6 masks hold more than 8 grey values \(6 like lossy.*thresholded at half"):
        ds = load_folder(root)
    for got, want in zip(ds.masks, truth, strict=True):
        assert dice(got, want) > 0.97
    assert "Save masks as PNG" in ds.description


def test_inverted_masks_warn_and_object_label_0_reads_them(tmp_path):
    truth = disk_mask()
    root = write(tmp_path / "inv", (~truth).astype(np.uint8) * 255)
    with pytest.warns(MaskWarning, match=r"in 6 masks the object covers more than half .*im00\.png \(9\d %\).*--object-label 0"):
        ds = load_folder(root)
    assert ds.masks[0].sum() == (~truth).sum()
    ds = load_folder(root, object_label=(0,))
    np.testing.assert_array_equal(ds.masks[0], truth)
    assert "object = mask values 0" in ds.description


def test_refuge_label_masks_warn_and_object_label_selects_the_disc(tmp_path):
    rr, cc = np.mgrid[:SIZE, :SIZE]
    d2 = (rr - 24) ** 2 + (cc - 24) ** 2
    refuge = np.full((SIZE, SIZE), 255, np.uint8)
    refuge[d2 <= 10**2] = 128  # optic-disc rim
    refuge[d2 <= 4**2] = 0  # optic cup
    root = write(tmp_path / "refuge", refuge)
    with pytest.warns(MaskWarning) as record:
        load_folder(root)
    messages = [str(w.message) for w in record]
    assert any("like a label image" in m and "values 0/128/255" in m and "--object-label 0,128" in m for m in messages)
    assert any("the object covers more than half" in m for m in messages)
    disc = load_dataset(root, object_label=(0, 128))
    np.testing.assert_array_equal(disc.masks[0], d2 <= 10**2)
    cup = load_dataset(root, object_label="0")
    np.testing.assert_array_equal(cup.masks[0], d2 <= 4**2)


def test_object_label_values_absent_everywhere_warn(tmp_path):
    root = write(tmp_path / "b", disk_mask().astype(np.uint8) * 255)
    with pytest.warns(MaskWarning, match=r"no mask holds the --object-label values 7; the masks hold 0/255"):
        ds = load_folder(root, object_label=7)
    assert not any(m.any() for m in ds.masks)


def test_object_label_is_validated_everywhere():
    assert normalise_object_label([128, 0, 0]) == (0, 128)
    for bad in ("a", -1, [], [1.5], True):
        with pytest.raises(DatasetError, match="object_label"):
            normalise_object_label(bad)
    with pytest.raises(DatasetError, match="applies to mask files of folder datasets"):
        load_dataset("fish", n_images=2, object_label=(1,))
    cfg = StudyConfig(object_label=[0, 128], markers_per_model=[2, 3])
    assert cfg.object_label == (0, 128) and StudyConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(Exception, match=r"object_label \(--object-label\) must be"):
        StudyConfig(object_label=(-1,)).validate()


def test_colour_masks_with_object_label_are_refused():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[1, 1, 2] = 9
    with pytest.raises(DatasetError, match="colour channels differ"):
        read_mask(rgb, (9,), "m.png")
    assert read_mask(np.repeat(rgb[..., 2:], 3, axis=2), (9,), "m.png").mask.sum() == 1


def test_cli_prints_mask_warnings_as_one_line_and_object_label_changes_the_masks(tmp_path, capsys):
    refuge = np.full((SIZE, SIZE), 255, np.uint8)
    refuge[14:34, 10:30] = 128
    refuge[20:28, 16:24] = 0
    root = write(tmp_path / "refuge", refuge)
    args = ["study", "--dataset", str(root), "--splits", "1", "--n-bg", "2", "--radius", "2", "--epochs", "1"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err.splitlines()
    warned = [line for line in err if line.startswith("flimexplore: warning: ")]
    assert len(warned) == 2 and "--object-label 0,128" in warned[0] and "more than half" in warned[1]
    assert main([*args, "--object-label", "0,128", "--out", str(tmp_path / "b")]) == 0
    assert "warning" not in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--object-label", "zero", "--out", str(tmp_path / "c")])
    assert exit_info.value.code == 2
    assert "--object-label takes comma-separated integers, got 'zero'" in capsys.readouterr().err


def _png_header(width, height):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))


def test_huge_and_unreadable_images_say_so(tmp_path, capsys):
    root = write(tmp_path / "big", disk_mask().astype(np.uint8) * 255)
    (root / "images" / "im03.png").write_bytes(_png_header(15000, 15000))  # a header only: nothing to decode
    assert image_size(_png_header(15000, 15000), ".png") == (15000, 15000)
    with pytest.raises(DatasetError, match=r"im03\.png is 15000x15000 px \(225 megapixels\), more than the limit of 100 megapixels; downscale it or cut it into tiles"):
        load_folder(root)
    assert main(["study", "--dataset", str(root), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "15000x15000 px" in err and "pillow" not in err and len(err.strip().splitlines()) == 1
    (root / "images" / "im03.png").write_bytes(_png_header(64, 64)[:40])
    with pytest.raises(DatasetError, match=r"im03\.png is not a readable PNG image \(\d+ bytes; damaged, truncated"):
        load_folder(root)
    assert MAX_PIXELS == 100_000_000


def test_jpeg_header_size_is_read_without_decoding(tmp_path):
    data = iio.imwrite("<bytes>", np.zeros((20, 30, 3), np.uint8), extension=".jpg")
    assert image_size(data, ".jpg") == (30, 20)
    assert image_size(b"junk", ".png") is None


def test_the_explorer_shows_mask_warnings_next_to_the_settings(tmp_path):
    from flimexplore.widgets import Explorer

    truth = [disk_mask(i % 3) for i in range(6)]
    jpeg = write(tmp_path / "j", [t.astype(np.uint8) * 255 for t in truth], ".jpg", 75)
    app = Explorer(str(jpeg), sync=True, projections=False, device="cpu")
    assert app.state.error == ""
    assert "6 masks hold more than 8 grey values" in app.state.warning and "thresholded at half" in app.state.warning
    assert "Warning:" in app.controls.warning.value and "thresholded at half" in app.controls.warning.value
    inverted = write(tmp_path / "inv", (~truth[0]).astype(np.uint8) * 255)
    app.state.dataset = str(inverted)
    assert "object covers more than half" in app.state.warning and "--object-label 0" in app.state.warning
    app.state.object_label = "0"  # the fix the warning names: no warning, the disk is the object
    assert app.state.warning == "" and app.controls.warning.value == ""
    np.testing.assert_array_equal(app._dataset(str(inverted), None, (0,)).masks[0], truth[0])
