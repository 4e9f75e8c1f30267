"""Assemble ``benchmarks/data/clutter``: real coins on cluttered natural photographs, with exact masks.

The marker advice was built on synthetic presets whose backgrounds are a few
textures; users' data have natural, cluttered backgrounds.  This folder data
set puts one real object on such a background, from licence-clean images
that ship inside scikit-image's wheel (nothing is downloaded):

* objects: the 24 Greek coins of ``skimage.data.coins()`` (Brooklyn Museum,
  "no known copyright restrictions"), cut out with scikit-image's own
  gallery recipe (Sobel elevation, watershed from dark/bright seeds, holes
  filled);
* backgrounds: crops of ``astronaut`` (NASA, public domain), ``coffee``
  (CC0, Rachel Michetti), ``chelsea`` (CC0, Stefan van der Walt), ``rocket``
  (SpaceX, public domain) and ``camera`` (CC0, Lav Varshney).

Image ``k`` (seeded by ``k``): a random square crop (45-75 % of the shorter
side) of one photograph, resized to 128 x 128 and maybe mirrored; one coin,
scaled to a diameter of 26-40 px and turned by a multiple of 90 degrees,
pasted at a random position at least 6 px from the border.  The mask is the
pasted coin's, exactly.  Run from the repository root::

    python scripts/make_clutter_dataset.py [--n 60] [--out benchmarks/data/clutter]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from scipy import ndimage as ndi
from skimage import data, filters, measure, segmentation, transform

SIDE = 128
SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "camera")


def coins() -> list[tuple[np.ndarray, np.ndarray]]:
    """Every coin of ``skimage.data.coins()`` as (grey float crop, bool mask), largest first."""
    image = data.coins()
    markers = np.zeros_like(image)
    markers[image < 30], markers[image > 150] = 1, 2
    found = ndi.binary_fill_holes(segmentation.watershed(filters.sobel(image), markers) - 1)
    out = []
    for region in sorted(measure.regionprops(measure.label(found)), key=lambda p: -p.area):
        if region.area < 400:
            continue
        r0, c0, r1, c1 = region.bbox
        out.append((image[r0:r1, c0:c1].astype(np.float64) / 255.0, region.image))
    return out


def background(rng: np.random.Generator) -> np.ndarray:
    name = SOURCES[int(rng.integers(len(SOURCES)))]
    photo = getattr(data, name)().astype(np.float64) / 255.0
    if photo.ndim == 2:
        photo = np.repeat(photo[..., None], 3, axis=-1)
    h, w = photo.shape[:2]
    side = int(rng.uniform(0.45, 0.75) * min(h, w))
    r, c = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = transform.resize(photo[r : r + side, c : c + side, :3], (SIDE, SIDE), anti_aliasing=True)
    return crop[:, ::-1] if rng.random() < 0.5 else crop


def compose(k: int, pieces: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Image ``k``: uint8 RGB (128, 128, 3) and its bool mask."""
    rng = np.random.default_rng([2026, k])
    image = background(rng)
    grey, shape = pieces[int(rng.integers(len(pieces)))]
    scale = rng.uniform(26, 40) / max(shape.shape)
    turns = int(rng.integers(4))
    grey = np.rot90(transform.rescale(grey, scale, anti_aliasing=True), turns)
    shape = np.rot90(transform.rescale(shape.astype(float), scale, anti_aliasing=True) > 0.5, turns)
    h, w = shape.shape
    r, c = int(rng.integers(6, SIDE - h - 6)), int(rng.integers(6, SIDE - w - 6))
    mask = np.zeros((SIDE, SIDE), bool)
    mask[r : r + h, c : c + w] = shape
    image[r : r + h, c : c + w][shape] = grey[shape][:, None]
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8), mask


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=60)
    p.add_argument("--out", type=Path, default=Path("benchmarks/data/clutter"))
    args = p.parse_args()
    pieces = coins()
    for sub in ("images", "masks"):
        (args.out / sub).mkdir(parents=True, exist_ok=True)
    for k in range(args.n):
        image, mask = compose(k, pieces)
        iio.imwrite(args.out / "images" / f"clutter_{k:03d}.png", image)
        iio.imwrite(args.out / "masks" / f"clutter_{k:03d}.png", (mask * 255).astype(np.uint8))
    print(f"wrote {args.n} images and masks into {args.out} ({len(pieces)} coins, sources {', '.join(SOURCES)})")


if __name__ == "__main__":
    main()
