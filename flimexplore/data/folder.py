"""Users' own datasets: a folder of images and masks, optionally with LIDS markers.

Two layouts are accepted, with images and masks matched by file stem::

    DIR/images/<stem>.png   DIR/masks/<stem>.png    (images/masks layout)
    DIR/orig/<stem>.png     DIR/label/<stem>.png    (LIDS layout)
    DIR/markers/<stem>-seeds.txt                    (optional, either layout)

Files ending in .png, .jpg, .jpeg, .tif or .tiff (any case) are read; other
files are ignored.  A mask pixel that is non-zero in any channel is object.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import tifffile
from numpy.typing import NDArray

from flimexplore.data._dataset import Dataset
from flimexplore.data.seeds import read_seeds
from flimexplore.errors import DatasetError, MarkerError

__all__ = ["IMAGE_SUFFIXES", "MIN_SIDE", "as_rgb_float", "load_folder"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
LAYOUTS = (("images", "masks"), ("orig", "label"))
SEEDS_SUFFIX = "-seeds.txt"
MIN_SIDE = 16


def load_folder(path: str | os.PathLike[str], n_images: int | None = None) -> Dataset:
    """Load a folder dataset in the images/masks or the LIDS orig/label layout.

    Images are scaled to [0, 1] (uint8 / 255, uint16 / 65535, other dtypes
    min-max scaled when they leave [0, 1]); grey is replicated to RGB and alpha
    dropped.  Masks are binarised, non-zero = object; when a mask holds more
    than two values the description says so.  Suggested settings: radius 3
    (5 when the median image side is 256 px or more), n_bg 30, n_superpixels 20.

    Parameters
    ----------
    path : str or path-like
        The dataset folder (see the module docstring for the layouts).
    n_images : int or None, optional
        Load at most this many images, the first by sorted stem; None loads all.

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
        differ, a mask lacks object or background, a value is NaN or inf, or an
        image is smaller than 16x16 px.
    MarkerError
        If a seeds file is malformed, names no image, is for another image
        shape or places a marker outside its image.
    """
    root = Path(path)
    if not root.exists():
        raise DatasetError(f"no dataset folder at {root}")
    if not root.is_dir():
        raise DatasetError(f"{root} is a file; a dataset is a folder holding images/ and masks/ (or orig/ and label/)")
    if n_images is not None and n_images < 1:
        raise DatasetError(f"n_images must be at least 1, got {n_images}")
    image_dir, mask_dir = _layout(root)
    images, masks = _listing(image_dir), _listing(mask_dir)
    _match(images, masks, image_dir, mask_dir)
    stems = sorted(images)[:n_images]
    pairs = [_read_pair(images[s], masks[s]) for s in stems]
    multi = [masks[s].name for s, (_, _, many) in zip(stems, pairs, strict=True) if many]
    description = f"folder dataset '{root.name}': {len(stems)} images ({image_dir.name}/ + {mask_dir.name}/)"
    if multi:
        description += (
            f"; {len(multi)} masks with more than 2 values were binarised, non-zero = object ({', '.join(multi[:3])})"
        )
    side = float(np.median([min(p[1].shape) for p in pairs]))
    shapes = {s: p[1].shape for s, p in zip(stems, pairs, strict=True)}
    return Dataset(
        name=root.name or str(root),
        images=tuple(p[0] for p in pairs),
        masks=tuple(p[1] for p in pairs),
        stems=tuple(stems),
        description=description,
        origin=f"user folder {root.resolve()}; licence as given by its owner",
        radius=3 if side < 256 else 5,
        n_bg=30,
        n_superpixels=20,
        markers=_markers(root / "markers", set(images), shapes),
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


def _read(path: Path) -> np.ndarray:
    """Read an image file as an array, or raise DatasetError naming the file."""
    try:
        data = path.read_bytes()  # decoders then never hold the file open, even on failure
        if path.suffix.lower() in (".tif", ".tiff"):
            return np.asarray(tifffile.imread(io.BytesIO(data)))
        return np.asarray(iio.imread(data, plugin="pillow", extension=path.suffix.lower()))
    except Exception as err:  # imageio and tifffile raise many kinds of error on bad files
        raise DatasetError(
            f"{path} is not a readable image (damaged, or not PNG/JPEG/TIFF inside); replace the file "
            "or remove it and its partner image or mask"
        ) from err


def _read_pair(image_path: Path, mask_path: Path) -> tuple[NDArray[np.float32], NDArray[np.bool_], bool]:
    """Read one image and its mask; return the RGB float image, the bool mask and whether it was multi-valued."""
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
    mask = raw != 0 if raw.ndim == 2 else (raw != 0).any(axis=2)
    if not mask.any():
        raise DatasetError(f"{mask_path}: mask has no object pixels (all zero)")
    if mask.all():
        raise DatasetError(f"{mask_path}: mask has no background pixels (no zero)")
    return image, mask, np.unique(raw).size > 2


def _markers(folder: Path, all_stems: set[str], shapes: dict[str, tuple[int, int]]) -> dict[str, NDArray[np.int64]]:
    """Read ``<stem>-seeds.txt`` files of `folder` for the loaded stems, checking image shapes."""
    if not folder.is_dir():
        return {}
    out = {}
    for p in sorted(folder.glob(f"*{SEEDS_SUFFIX}")):
        stem = p.name[: -len(SEEDS_SUFFIX)]
        if stem not in all_stems:
            raise MarkerError(f"seeds file {p} names no image: there is no image with stem {stem!r}")
        if stem not in shapes:  # an image left out by n_images
            continue
        markers, shape = read_seeds(p)
        if shape != shapes[stem]:
            (h, w), (ih, iw) = shape, shapes[stem]
            raise MarkerError(f"seeds file {p} is for a {h}x{w} image but image {stem!r} is {ih}x{iw}")
        out[stem] = markers
    return out
