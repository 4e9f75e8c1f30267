"""Users' own datasets: a folder of images and masks, optionally with LIDS markers.

Two layouts are accepted, with images and masks matched by file stem::

    DIR/images/<stem>.png   DIR/masks/<stem>.png    (images/masks layout)
    DIR/orig/<stem>.png     DIR/label/<stem>.png    (LIDS layout)
    DIR/markers/<stem>-seeds.txt                    (optional, either layout)

Files ending in .png, .jpg, .jpeg, .tif or .tiff (any case) are read; other
files are ignored.  Masks are read by :func:`flimexplore.data.masks.read_mask`:
non-zero = object for binary masks, the ``object_label`` values when given,
half the value range for lossy (JPEG) masks, with a
:class:`~flimexplore.errors.MaskWarning` whenever a guess was made.  Images
larger than :data:`MAX_PIXELS` are refused before they are decoded.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import tifffile
from numpy.typing import NDArray

from flimexplore.data._dataset import Dataset
from flimexplore.data.masks import MaskReading, normalise_object_label, read_mask, warn_about_masks
from flimexplore.data.seeds import check_seeds_shape, read_seeds
from flimexplore.data.store import STORE_BYTES, ImageStore, PackedMasks
from flimexplore.errors import DatasetError, MarkerError

__all__ = ["IMAGE_SUFFIXES", "MAX_PIXELS", "MIN_SIDE", "as_rgb_float", "image_size", "load_folder"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
LAYOUTS = (("images", "masks"), ("orig", "label"))
SEEDS_SUFFIX = "-seeds.txt"
MIN_SIDE = 16
MAX_PIXELS = 100_000_000
"""Largest image read, in pixels (100 megapixels: 1.2 GB as float32 RGB); larger ones are refused unread."""


def load_folder(
    path: str | os.PathLike[str], n_images: int | None = None, object_label: tuple[int, ...] | None = None
) -> Dataset:
    """Load a folder dataset in the images/masks or the LIDS orig/label layout.

    Images are scaled to [0, 1] (uint8 / 255, uint16 / 65535, other dtypes
    min-max scaled when they leave [0, 1]); grey is replicated to RGB and alpha
    dropped.  Masks: the `object_label` values are object; by default
    non-zero = object for masks of up to 8 values and half the value range
    for masks of more (lossy copies).  A :class:`~flimexplore.errors.MaskWarning`
    names the files whenever that was a guess (lossy or label-like masks, an
    object larger than half the image); the description repeats it.  A mask
    may hold no object.  Suggested settings: radius 3 (5 when the median image
    side is 256 px or more), n_bg 30, n_superpixels 20.

    Parameters
    ----------
    path : str or path-like
        The dataset folder (see the module docstring for the layouts).
    n_images : int or None, optional
        Load at most this many images, the first by sorted stem; None loads all.
    object_label : tuple of int, int, str or None, optional
        Mask values that are object (e.g. ``(0, 128)``, or ``"0,128"``, for
        the optic disc of REFUGE masks); None: see above.

    Returns
    -------
    Dataset
        Named after the folder; float32 (H, W, 3) images in [0, 1], bool (H, W)
        masks, stems sorted, markers read from ``markers/<stem>-seeds.txt``.

    Raises
    ------
    DatasetError
        If the folder is missing or has neither layout, holds no images, stems
        do not match (up to 5 are named each way), a file cannot be read, shapes
        differ, a value is NaN or inf, an image is smaller than 16x16 px or
        larger than :data:`MAX_PIXELS`, or `object_label` is malformed.
    MarkerError
        If a seeds file is malformed, names no image, is for another image
        shape, places a marker outside its image, or has x and y swapped.

    Warns
    -----
    MaskWarning
        When masks were thresholded, look like label images, or have an
        object covering more than half of the image (see above).
    """
    root = Path(path)
    if not root.exists():
        raise DatasetError(f"no dataset folder at {root}")
    if not root.is_dir():
        raise DatasetError(f"{root} is a file; a dataset is a folder holding images/ and masks/ (or orig/ and label/)")
    if n_images is not None and n_images < 1:
        raise DatasetError(f"n_images must be at least 1, got {n_images}")
    object_label = normalise_object_label(object_label)
    image_dir, mask_dir = _layout(root)
    images, masks = _listing(image_dir), _listing(mask_dir)
    _match(images, masks, image_dir, mask_dir)
    stems = sorted(images)[:n_images]
    pixels, mask_list, readings = _read_all(stems, images, masks, object_label)
    description = f"folder dataset '{root.name}': {len(stems)} images ({image_dir.name}/ + {mask_dir.name}/)"
    if object_label is not None:
        description += f"; object = mask values {', '.join(map(str, object_label))}"
    notes = warn_about_masks([masks[s].name for s in stems], readings, object_label)
    description += "".join(f"; warning: {n}" for n in notes)
    side = float(np.median([min(mask_list[i].shape) for i in range(len(stems))]))
    marked = {p.name[: -len(SEEDS_SUFFIX)] for p in (root / "markers").glob(f"*{SEEDS_SUFFIX}")} if (root / "markers").is_dir() else set()
    by_stem = {stem: mask_list[i] for i, stem in enumerate(stems) if stem in marked}  # only masks with seeds files
    return Dataset(
        name=root.name or str(root),
        images=pixels,
        masks=mask_list if isinstance(mask_list, PackedMasks) else tuple(mask_list),
        stems=tuple(stems),
        description=description,
        origin=f"user folder {root.resolve()}; licence as given by its owner",
        radius=3 if side < 256 else 5,
        n_bg=30,
        n_superpixels=20,
        markers=_markers(root / "markers", set(images), by_stem),
    )


def as_rgb_float(array: np.ndarray, where: str) -> NDArray[np.float32]:
    """Convert a grey, RGB or RGBA image of any dtype to float32 RGB in [0, 1].

    Parameters
    ----------
    array : ndarray of shape (H, W), (H, W, 1), (H, W, 2), (H, W, 3) or (H, W, 4)
        Grey, grey + alpha, RGB or RGBA image; alpha is dropped. uint8 is
        divided by 255, uint16 by 65535, bool taken as 0/1; other dtypes are
        min-max scaled if they leave [0, 1].
    where : str
        What the image is (a file path), for error messages.

    Returns
    -------
    ndarray of shape (H, W, 3), dtype float32
        Finite values in [0, 1]; grey is replicated to the three channels.

    Raises
    ------
    DatasetError
        If the shape is not an image's, a side is below 16 px, or a value is NaN or inf.
    """
    if array.ndim == 3 and array.shape[2] in (1, 2):
        array = array[..., 0]
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[..., :3]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise DatasetError(f"{where}: shape {array.shape} is not a grey, RGB or RGBA image")
    if min(array.shape[:2]) < MIN_SIDE:
        h, w = array.shape[:2]
        raise DatasetError(f"{where}: image of {h}x{w} px is smaller than {MIN_SIDE}x{MIN_SIDE}")
    if array.dtype == np.uint8:
        out = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        out = array.astype(np.float32) / 65535.0
    else:
        out = array.astype(np.float64)
        if not np.isfinite(out).all():
            raise DatasetError(f"{where}: image holds NaN or infinite values")
        lo, hi = out.min(), out.max()
        if lo < 0.0 or hi > 1.0:
            out = (out - lo) / (hi - lo) if hi > lo else np.zeros_like(out)
        out = out.astype(np.float32)
    if out.ndim == 2:
        out = np.repeat(out[:, :, None], 3, axis=2)
    return np.ascontiguousarray(np.clip(out, 0.0, 1.0))


def _layout(root: Path) -> tuple[Path, Path]:
    """Return the (images, masks) folders of `root`, or raise DatasetError naming both layouts."""
    for image_name, mask_name in LAYOUTS:
        if (root / image_name).is_dir() and (root / mask_name).is_dir():
            return root / image_name, root / mask_name
    found = sorted(p.name + "/" for p in root.iterdir() if p.is_dir())
    raise DatasetError(
        f"{root} has neither images/ + masks/ nor orig/ + label/ sub-folders (found: {', '.join(found) or 'none'})"
    )


def _listing(folder: Path) -> dict[str, Path]:
    """Map stem -> path of the image files in `folder`; raise DatasetError if none or a stem repeats."""
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_file() or p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if p.stem in out:
            raise DatasetError(f"{folder} holds two files with stem {p.stem!r}: {out[p.stem].name} and {p.name}")
        out[p.stem] = p
    if not out:
        raise DatasetError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return out


def _match(images: dict[str, Path], masks: dict[str, Path], image_dir: Path, mask_dir: Path) -> None:
    """Raise DatasetError naming up to 5 stems each way when image and mask stems differ."""
    no_mask = sorted(set(images) - set(masks))
    no_image = sorted(set(masks) - set(images))
    problems = []
    if no_mask:
        problems.append(f"{len(no_mask)} images in {image_dir} have no mask in {mask_dir}: {no_mask[:5]}")
    if no_image:
        problems.append(f"{len(no_image)} masks in {mask_dir} have no image in {image_dir}: {no_image[:5]}")
    if problems:
        raise DatasetError("; ".join(problems) + " (images and masks are matched by file stem)")


def image_size(data: bytes, suffix: str) -> tuple[int, int] | None:
    r"""Width and height of an encoded image from its header, without decoding it.

    Parameters
    ----------
    data : bytes
        The file's bytes.
    suffix : str
        Its suffix (``.png``, ``.jpg``, ``.tif``, ...), lower case.

    Returns
    -------
    tuple of int or None
        ``(width, height)``, or None when the header cannot be parsed (the
        decoder then says what is wrong).

    Examples
    --------
    >>> import struct, zlib
    >>> ihdr = struct.pack(">IIBBBBB", 15000, 12000, 8, 0, 0, 0, 0)
    >>> png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
    >>> image_size(png, ".png")
    (15000, 12000)
    """
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24 and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    if suffix in (".tif", ".tiff"):
        try:
            with tifffile.TiffFile(io.BytesIO(data)) as tif:
                shape = tif.pages[0].shape
        except Exception:  # noqa: BLE001 - tifffile raises many kinds of error on bad files
            return None
        return (int(shape[1]), int(shape[0])) if len(shape) >= 2 else None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the first start-of-frame segment of a JPEG."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # segments without a length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def _read(path: Path) -> np.ndarray:
    """Read an image file as an array, or raise DatasetError naming the file (size checked before decoding)."""
    try:
        data = path.read_bytes()  # decoders then never hold the file open, even on failure
    except OSError as err:
        raise DatasetError(f"cannot read image file {path}: {err.strerror or err}") from err
    suffix = path.suffix.lower()
    size = image_size(data, suffix)
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        w, h = size
        raise DatasetError(
            f"image file {path} is {w}x{h} px ({w * h / 1e6:.0f} megapixels), more than the limit of "
            f"{MAX_PIXELS // 10**6} megapixels; downscale it or cut it into tiles"
        )
    try:
        with warnings.catch_warnings():  # pillow warns of "decompression bombs" below our limit
            warnings.simplefilter("ignore")
            if suffix in (".tif", ".tiff"):
                return np.asarray(tifffile.imread(io.BytesIO(data)))
            return np.asarray(iio.imread(data, plugin="pillow", extension=suffix))
    except MemoryError as err:
        raise DatasetError(f"cannot read image file {path}: not enough memory to decode it") from err
    except Exception as err:  # imageio and tifffile raise many kinds of error on bad files
        what = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}.get(suffix, "")
        raise DatasetError(
            f"{path} is not a readable {what + ' ' if what else ''}image ({len(data)} bytes; damaged, truncated, "
            "or another format inside); replace the file or remove it and its partner image or mask"
        ) from err


def _read_all(
    stems: list[str], images: dict[str, Path], masks: dict[str, Path], object_label: tuple[int, ...] | None
) -> tuple[tuple[NDArray[np.float32], ...] | ImageStore, list[NDArray[np.bool_]] | PackedMasks, list[MaskReading]]:
    """Read every pair; once the images pass :data:`STORE_BYTES`, they go to an :class:`ImageStore` on disk and
    the masks to :class:`PackedMasks`."""
    held: list[NDArray[np.float32]] = []
    store: ImageStore | None = None
    mask_list: list[NDArray[np.bool_]] | PackedMasks = []
    readings, total = [], 0
    for stem in stems:
        image, mask, reading = _read_pair(images[stem], masks[stem], object_label)
        total += image.nbytes
        if store is None and total > STORE_BYTES:  # from here on: images on disk, masks as bits
            store = ImageStore()
            for name, earlier in zip(stems, held, strict=False):
                store.append(earlier, str(images[name]))
            held, mask_list = [], PackedMasks(mask_list)
        if store is not None:
            store.append(image, str(images[stem]))
        else:
            held.append(image)
        mask_list.append(mask)
        readings.append(reading)
    return (store if store is not None else tuple(held)), mask_list, readings


def _read_pair(
    image_path: Path, mask_path: Path, object_label: tuple[int, ...] | None
) -> tuple[NDArray[np.float32], NDArray[np.bool_], MaskReading]:
    """Read one image and its mask; return the RGB float image, the bool mask and how the mask was read."""
    image = as_rgb_float(_read(image_path), where=str(image_path))
    raw = _read(mask_path)
    if raw.ndim == 3 and raw.shape[2] in (2, 4):  # drop alpha
        raw = raw[..., : raw.shape[2] - 1]
    if raw.ndim not in (2, 3):
        raise DatasetError(f"{mask_path}: shape {raw.shape} is not a grey or RGB mask")
    if raw.shape[:2] != image.shape[:2]:
        raise DatasetError(
            f"{mask_path} has shape {raw.shape[:2]} but its image {image_path.name} has shape {image.shape[:2]}"
        )
    if raw.dtype.kind == "f" and not np.isfinite(raw).all():
        raise DatasetError(f"{mask_path}: mask holds NaN or infinite values")
    if raw.dtype.kind not in "biuf":
        raise DatasetError(f"{mask_path}: mask of dtype {raw.dtype} is not a numeric image")
    reading = read_mask(raw, object_label, str(mask_path))
    return image, reading.mask, reading


def _markers(folder: Path, all_stems: set[str], masks: dict[str, NDArray[np.bool_]]) -> dict[str, NDArray[np.int64]]:
    """Read ``<stem>-seeds.txt`` files of `folder` for the loaded stems, checking image shapes and x/y order."""
    if not folder.is_dir():
        return {}
    out = {}
    for p in sorted(folder.glob(f"*{SEEDS_SUFFIX}")):
        stem = p.name[: -len(SEEDS_SUFFIX)]
        if stem not in all_stems:
            raise MarkerError(f"seeds file {p} names no image: there is no image with stem {stem!r}")
        if stem not in masks:  # an image left out by n_images
            continue
        markers, shape = read_seeds(p, image_shape=masks[stem].shape)
        check_seeds_shape(p, markers, shape, masks[stem])
        out[stem] = markers
    return out
