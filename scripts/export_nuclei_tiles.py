"""Cut the DSB2018 nuclei image of the stardist 0.9.2 wheel into the 16 tiles flimexplore ships.

Run once by a maintainer (not at install or run time)::

    pip install --no-deps stardist==0.9.2
    python scripts/export_nuclei_tiles.py [--out flimexplore/data/nuclei_tiles]

It reads ``stardist/data/images/img2d.tif`` (uint16 image) and ``mask2d.tif``
(uint16 instance labels) from the installed wheel *as files* (stardist is never
imported), cuts both into 4 x 4 tiles of 128 x 128 and writes them losslessly
as ``nuclei_r<row>_c<col>.png`` (16-bit grey, the raw intensities) and
``nuclei_r<row>_c<col>_labels.png`` (8-bit instance labels, 0 = background).
flimexplore.data.nuclei normalises the tiles at load time, exactly as it did when
it read the TIFF files, so the loaded arrays are unchanged (tests pin a hash).
"""

from __future__ import annotations

import argparse
import importlib.metadata
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import tifffile

TILE = 128
NAMES = ("stardist/data/images/img2d.tif", "stardist/data/images/mask2d.tif")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "flimexplore/data/nuclei_tiles"))
    args = p.parse_args()
    dist = importlib.metadata.distribution("stardist")
    if dist.version != "0.9.2":
        raise SystemExit(f"need stardist 0.9.2, found {dist.version}")
    image_path, label_path = (Path(str(dist.locate_file(n))) for n in NAMES)
    raw, labels = tifffile.imread(image_path), tifffile.imread(label_path)
    assert raw.dtype == np.uint16 and raw.shape == (512, 512) and labels.shape == raw.shape
    assert labels.max() < 256, "labels must fit in 8 bits"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for r in range(raw.shape[0] // TILE):
        for c in range(raw.shape[1] // TILE):
            window = np.s_[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE]
            stem = f"nuclei_r{r}_c{c}"
            iio.imwrite(out / f"{stem}.png", np.ascontiguousarray(raw[window]), extension=".png")
            iio.imwrite(out / f"{stem}_labels.png", labels[window].astype(np.uint8), extension=".png")
            back = iio.imread(out / f"{stem}.png")
            assert back.dtype == np.uint16 and np.array_equal(back, raw[window]), "PNG round trip changed the tile"
    print(f"wrote 32 PNG files to {out}")


if __name__ == "__main__":
    main()
