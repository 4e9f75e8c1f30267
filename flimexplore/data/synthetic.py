"""Three synthetic presets that mimic the paper's datasets (Fish, Schisto, Refuge).

The images are synthetic: 128x128 scenes (any side from 32 to 512 with
``size``: the same scene, every length scaled by ``size / 128``) drawn with
exact masks from the real
CC0 textures that ship inside scikit-image's wheel (``brick``, ``grass``,
``gravel``), cropped at random with a seeded generator.  Each scene mixes
textured and plain background on purpose, so that where background markers
are drawn changes how well a FLIM model segments the object.  Image ``i`` of a
preset depends only on ``(seed, i)``: asking for fewer images gives the first
ones of the larger set.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import skimage.data
import skimage.draw
import skimage.transform
from numpy.typing import NDArray
from skimage.util import img_as_float32

from flimexplore.data._dataset import Dataset
from flimexplore.data.store import STORE_BYTES, ImageStore, PackedMasks
from flimexplore.errors import DatasetError

__all__ = ["make_eggs", "make_fish", "make_fundus"]

SIZE = 128
MIN_SIZE, MAX_SIZE = 32, 512
_UNCACHED_BYTES = 64 * 2**20  # larger renders are not kept in the cache (paper-sized sets are GBs)
ORIGIN = (
    "synthetic, drawn by flimexplore from scikit-image's bundled textures "
    "(brick, grass, gravel from CC0 Textures / DeviantArt, CC0 licence)"
)
Pair = tuple[NDArray[np.float32], NDArray[np.bool_]]


@lru_cache(maxsize=1)
def _textures() -> dict[str, NDArray[np.float32]]:
    """Return the bundled grey textures as float32 arrays of shape (512, 512)."""
    return {name: img_as_float32(getattr(skimage.data, name)()) for name in ("brick", "grass", "gravel")}


def _texture(rng: np.random.Generator, name: str, n: int) -> NDArray[np.float64]:
    """Return a random (n, n) window of a texture, zero mean, unit std, clipped to +-2.5."""
    tex = _textures()[name]
    r, c = rng.integers(0, tex.shape[0] - n, size=2) if n < tex.shape[0] else (0, 0)
    crop = np.rot90(tex[r : r + n, c : c + n], k=int(rng.integers(4)))
    return np.clip((crop - crop.mean()) / (crop.std() + 1e-6), -2.5, 2.5)


def _smooth(rng: np.random.Generator, cells: int, n: int) -> NDArray[np.float64]:
    """Return a smooth random (n, n) field in [0, 1] with about `cells` bumps per side."""
    big = skimage.transform.resize(rng.random((cells, cells)), (n, n), order=3, mode="reflect")
    return (big - big.min()) / (np.ptp(big) + 1e-9)


def _frame(cy: float, cx: float, angle: float, n: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return pixel coordinates (u along `angle`, v across it) centred on (cy, cx) of an (n, n) image."""
    y, x = np.mgrid[0:n, 0:n].astype(np.float64)
    u = (x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)
    v = -(x - cx) * np.sin(angle) + (y - cy) * np.cos(angle)
    return u, v


def _paint(image: np.ndarray, where: np.ndarray, colour, shade, alpha: float = 1.0) -> None:
    """Blend ``colour * shade`` into `image` (H, W, 3) where `where` is True, in place."""
    layer = np.asarray(colour, dtype=np.float64) * np.asarray(shade, dtype=np.float64)[..., None]
    image[where] = (1 - alpha) * image[where] + alpha * np.broadcast_to(layer, image.shape)[where]


def _fish(rng: np.random.Generator, n: int = SIZE) -> Pair:
    """Draw one underwater scene: striped yellow fish, textured and white coral, plain water."""
    k = n / SIZE  # every length scales with the side; k == 1 draws the 128x128 preset bit for bit
    y = np.mgrid[0:n, 0:n][0] / n
    water = np.array([0.12, 0.42, 0.68]) + rng.uniform(-0.05, 0.05, 3)
    shade = 1.15 - 0.45 * y + 0.08 * (_smooth(rng, 4, n) - 0.5) + 0.012 * rng.standard_normal((n, n))
    image = water * shade[..., None]
    coral = _smooth(rng, 5, n) + rng.uniform(0.3, 0.9) * y
    coral = coral > np.quantile(coral, rng.uniform(0.5, 0.72))
    zones = np.digitize(_smooth(rng, 4, n), [1 / 3, 2 / 3])
    palette = [(0.88, 0.38, 0.52), (0.92, 0.52, 0.22), (0.55, 0.32, 0.68), (0.45, 0.62, 0.3), (0.78, 0.62, 0.25)]
    for zone in range(3):
        where = coral & (zones == zone)
        if zone == 0 and rng.random() < 0.7:  # plain white/bright coral, hardly any texture
            _paint(image, where, (0.94, 0.93, 0.88), 1.0 + 0.02 * _texture(rng, "grass", n))
            continue
        colour = np.array(palette[rng.integers(len(palette))]) * rng.uniform(0.85, 1.1)
        name = ("brick", "grass", "gravel")[rng.integers(3)]
        _paint(image, where, colour, 0.8 + 0.25 * _texture(rng, name, n))
    a = k * rng.uniform(22, 30)
    b = a * rng.uniform(0.48, 0.6)
    margin = 1.35 * a + 2 * k
    cy, cx = rng.uniform(margin, n - margin, size=2)
    u, v = _frame(cy, cx, rng.uniform(-np.pi, np.pi), n)
    body = (u / a) ** 2 + (v / b) ** 2 <= 1
    tail = (u <= -0.85 * a) & (u >= -1.35 * a) & (np.abs(v) <= 1.8 * b * (-u - 0.85 * a) / a)
    mask = body | tail
    fish_colour = np.array([0.96, 0.82, 0.22]) * rng.uniform(0.85, 1.05)
    stripes = 0.14 * np.sin(2 * np.pi * u / (k * rng.uniform(6, 9)))
    fish_shade = 0.85 + 0.15 * _texture(rng, "gravel", n) + stripes - 0.2 * v / b
    _paint(image, mask, fish_colour, fish_shade)
    eye = (u - 0.62 * a) ** 2 + (v + 0.2 * b) ** 2 <= (0.14 * b + k) ** 2
    _paint(image, eye, (0.08, 0.06, 0.05), 1.0)
    return _finish(image, mask)


def _eggs(rng: np.random.Generator, n: int = SIZE) -> Pair:
    """Draw one microscopy field: a Schistosoma-like egg among dark textured debris."""
    k = n / SIZE
    beige = np.array([0.86, 0.82, 0.72]) + rng.uniform(-0.04, 0.04, 3)
    shade = 1.0 + 0.025 * _texture(rng, "grass", n) + 0.08 * (_smooth(rng, 3, n) - 0.5)
    image = beige * shade[..., None]
    a = k * rng.uniform(18, 24)
    b = a * rng.uniform(0.55, 0.7)
    margin = a + 8 * k
    cy, cx = rng.uniform(margin, n - margin, size=2)
    u, v = _frame(cy, cx, rng.uniform(-np.pi, np.pi), n)
    ellipse = (u / a) ** 2 + (v / b) ** 2
    yy, xx = np.mgrid[0:n, 0:n]
    wobble = _smooth(rng, 12, n) - 0.5
    for _ in range(int(rng.integers(4, 9))):
        radius = k * rng.uniform(3, 13)
        while True:
            by, bx = rng.uniform(0, n, size=2)
            if np.hypot(by - cy, bx - cx) > a + radius:
                break
        blob = np.hypot(yy - by, xx - bx) / radius + 0.9 * wobble < 1
        dark = rng.random() < 0.7
        colour = (0.32, 0.28, 0.24) if dark else (0.62, 0.52, 0.32)
        _paint(image, blob, np.array(colour) * rng.uniform(0.8, 1.2), 1.0 + 0.3 * _texture(rng, "gravel", n))
    for _ in range(int(rng.integers(0, 3))):  # thin fibres
        r0, c0, r1, c1, r2, c2 = rng.integers(0, n, size=6)
        fibre = np.zeros((n, n), dtype=bool)
        fibre[skimage.draw.bezier_curve(r0, c0, r1, c1, r2, c2, 1.0, shape=(n, n))] = True
        _paint(image, fibre & (ellipse > 1.3), (0.4, 0.36, 0.3), 1.0, alpha=0.8)
    spine_u = u - 0.45 * a
    side = rng.choice([-1.0, 1.0])
    spine = (side * v >= 0.75 * b) & (side * v <= b + 6 * k) & (np.abs(spine_u) <= 2.5 * (b + 6 * k - side * v) / (6 * k))
    mask = (ellipse <= 1) | spine
    interior = 1.0 + 0.22 * _texture(rng, "gravel", n) - 0.15 * (_smooth(rng, 10, n) > 0.7)
    _paint(image, mask, np.array([0.76, 0.66, 0.44]) * rng.uniform(0.9, 1.05), interior)
    _paint(image, ((ellipse > 0.72) & (ellipse <= 1)) | spine, (0.45, 0.38, 0.26), 1.0, alpha=0.85)
    _paint(image, (ellipse > 0.6) & (ellipse <= 0.68), (0.9, 0.86, 0.72), 1.0, alpha=0.6)
    return _finish(image, mask)


def _fundus(rng: np.random.Generator, n: int = SIZE) -> Pair:
    """Draw one fundus photograph: bright optic disc and cup, dark red vessels, circular field."""
    k = n / SIZE
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    fov_r = k * rng.uniform(58, 63)
    rad = np.hypot(yy - n / 2, xx - n / 2) / fov_r
    base = np.array([0.8, 0.34, 0.13]) * rng.uniform(0.85, 1.05)
    shade = 1.0 - 0.45 * rad**2 + 0.035 * _texture(rng, "grass", n) + 0.06 * (_smooth(rng, 4, n) - 0.5)
    side = rng.choice([-1.0, 1.0])  # nasal side of the disc
    cy, cx = k * rng.uniform(50, 78), n / 2 + side * k * rng.uniform(22, 32)
    macula = np.hypot(yy - cy - k * rng.uniform(-4, 4), xx - (cx - side * 48 * k)) / (14 * k)
    image = base * (shade - 0.25 * np.exp(-(macula**2)))[..., None]
    rd = k * rng.uniform(10, 14)
    ry = rd * rng.uniform(1.0, 1.15)
    u, v = _frame(cy, cx, rng.uniform(-0.3, 0.3), n)
    disc = np.hypot(u / rd, v / ry)
    mask = disc <= 1
    _paint(image, mask, np.array([0.98, 0.76, 0.45]) * rng.uniform(0.9, 1.02), 1.0 - 0.15 * disc**2)
    cup = np.hypot((u - side * k * rng.uniform(0, 2)) / (0.45 * rd), v / (0.5 * ry)) <= 1
    _paint(image, cup, (1.0, 0.95, 0.82), 1.0, alpha=0.85)
    thick, thin = max(1, round(2 * k)), max(1, round(k))
    for up in (-1.0, 1.0):  # temporal arcades curving around the macula, then nasal vessels
        reach = k * rng.uniform(38, 50)
        ends = [(cy + up * reach, cx - side * k * rng.uniform(5, 15), cy + up * k * rng.uniform(30, 50), cx - side * 75 * k)]
        ends += [(cy + up * reach * 0.7, cx + side * 4 * k, cy + up * k * rng.uniform(40, 60), cx + side * k * rng.uniform(25, 40))]
        for j, (r1, c1, r2, c2) in enumerate(ends):
            _vessel(image, (cy, cx, r1, c1, r2, c2), thick, cup)
            t = rng.uniform(0.3, 0.6)  # a branch leaving the vessel at parameter t
            br = (1 - t) ** 2 * cy + 2 * t * (1 - t) * r1 + t**2 * r2
            bc = (1 - t) ** 2 * cx + 2 * t * (1 - t) * c1 + t**2 * c2
            _vessel(image, (br, bc, br + up * 15 * k, bc + side * (10 if j else -10) * k, *rng.uniform(0, n, 2)), thin, cup)
    for angle in rng.uniform(-np.pi, np.pi, size=int(rng.integers(3, 6))):  # thin vessels in any direction
        length = k * rng.uniform(30, 60)
        bend = angle + rng.uniform(-0.5, 0.5)
        r1, c1 = cy + 0.5 * length * np.sin(angle), cx + 0.5 * length * np.cos(angle)
        _vessel(image, (cy, cx, r1, c1, r1 + length * np.sin(bend), c1 + length * np.cos(bend)), thin, cup)
    image[rad > 1] = 0.02
    return _finish(image, mask)


def _vessel(image: np.ndarray, points, width: int, cup: np.ndarray) -> None:
    """Paint a dark red quadratic Bezier vessel `width` px wide into `image`, in place."""
    n = image.shape[0]
    r0, c0, r1, c1, r2, c2 = (int(round(p)) for p in points)
    rr, cc = skimage.draw.bezier_curve(r0, c0, r1, c1, r2, c2, 1.0, shape=(4 * n, 4 * n))
    line = np.zeros((n, n), dtype=bool)
    for dr in range(-width // 2 + 1, width // 2 + 1):
        for dc in range(-width // 2 + 1, width // 2 + 1):
            keep = (rr + dr >= 0) & (rr + dr < n) & (cc + dc >= 0) & (cc + dc < n)
            line[rr[keep] + dr, cc[keep] + dc] = True
    _paint(image, line & ~cup, (0.45, 0.07, 0.04), 1.0, alpha=0.75 if width > 1 else 0.55)


def _finish(image: np.ndarray, mask: np.ndarray) -> Pair:
    """Clip to [0, 1], cast to float32 and make both arrays read-only (they are cached)."""
    image = np.clip(image, 0.0, 1.0).astype(np.float32)
    image.flags.writeable = False
    mask.flags.writeable = False
    return image, mask


_PRESETS: dict[str, tuple[int, Callable[[np.random.Generator], Pair]]] = {
    "fish": (1, _fish),
    "eggs": (2, _eggs),
    "fundus": (3, _fundus),
}


@lru_cache(maxsize=8)
def _render(kind: str, n_images: int, seed: int, size: int = SIZE) -> tuple[Pair, ...]:
    """Draw the first `n_images` images of a preset; cached per (kind, n_images, seed, size)."""
    return _draw(kind, n_images, seed, size)


def _draw(kind: str, n_images: int, seed: int, size: int) -> tuple[Pair, ...]:
    key, draw = _PRESETS[kind]
    return tuple(draw(np.random.default_rng([seed, key, i]), size) for i in range(n_images))


def _make(
    kind: str, n_images: int, seed: int, description: str, settings: tuple[int, int, int], size: int = SIZE
) -> Dataset:
    """Build a Dataset from the drawings, copying cached arrays so callers may edit them.

    Sets whose images exceed :data:`~flimexplore.data.store.STORE_BYTES`
    (paper-sized ones: 632 images of 400x400 are 1.2 GB) are drawn once per
    process into an :class:`~flimexplore.data.store.ImageStore` on disk, so
    that memory holds one image at a time (and the masks as packed bits); sets larger than
    ``_UNCACHED_BYTES`` but below that are drawn afresh and not cached.
    """
    if int(n_images) < 1 or int(seed) < 0:
        raise DatasetError(f"{kind}: n_images must be >= 1 and seed >= 0, got {n_images} and {seed}")
    if isinstance(size, bool) or int(size) != size or not MIN_SIZE <= size <= MAX_SIZE:
        raise DatasetError(f"{kind}: size must be an integer from {MIN_SIZE} to {MAX_SIZE} pixels, got {size!r}")
    size = int(size)
    if int(n_images) * size * size * 12 > STORE_BYTES:  # paper-sized: on disk, drawn once per process
        images, masks = _stored(kind, int(n_images), int(seed), size)  # reads are copies: nothing to copy
    elif int(n_images) * size * size * 13 <= _UNCACHED_BYTES:  # 12 bytes of image + 1 of mask per pixel
        pairs = tuple((im.copy(), m.copy()) for im, m in _render(kind, int(n_images), int(seed), size))
        images, masks = tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
    else:
        pairs = tuple((_writable(im), _writable(m)) for im, m in _draw(kind, int(n_images), int(seed), size))
        images, masks = tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
    radius, n_bg, n_superpixels = settings
    return Dataset(
        name=kind,
        images=images,
        masks=masks,
        stems=tuple(f"{kind}_{i:03d}" for i in range(len(masks))),
        description=description,
        origin=ORIGIN,
        radius=max(radius, round(radius * size / SIZE)),
        n_bg=n_bg,
        n_superpixels=n_superpixels,
    )


@lru_cache(maxsize=2)
def _stored(kind: str, n_images: int, seed: int, size: int) -> tuple[ImageStore, PackedMasks]:
    """Draw a large set image by image into an :class:`ImageStore` and :class:`PackedMasks` (memory: one image).

    Cached, so that the studies of one sweep draw their dataset once; the
    store's file goes when the cache drops it and no dataset uses it.
    """
    key, draw = _PRESETS[kind]
    store, masks = ImageStore(), PackedMasks()
    for i in range(n_images):
        image, mask = draw(np.random.default_rng([seed, key, i]), size)
        store.append(image, f"{kind}_{i:03d}")
        masks.append(mask)
    return store, masks


def _writable(a: np.ndarray) -> np.ndarray:
    """Make a freshly drawn (uncached, unshared) array writable again."""
    a.flags.writeable = True
    return a


FISH = "synthetic underwater scenes: a striped yellow fish over textured coral and plain blue water"
EGGS = "synthetic microscopy: one parasite egg among dark textured debris on a beige background"
FUNDUS = "synthetic fundus photographs: the optic disc (with its brighter cup) amid dark red vessels"


def make_fish(n_images: int = 60, seed: int = 0, size: int = SIZE) -> Dataset:
    """Make the synthetic Fish preset: 60 128x128 images with exact masks.

    Synthetic stand-in for the Fish dataset.  A yellow, striped, gravel-textured
    fish (ellipse + tail, 5-15 % of the image) swims over blue water with a
    mild gradient and over coral blobs textured with tinted brick, grass or
    gravel; most images also hold a plain white coral patch.

    Parameters
    ----------
    n_images : int, optional
        Number of images; image ``i`` is the same whatever `n_images` is.
    seed : int, optional
        Non-negative seed; the same seed gives identical arrays.
    size : int, optional
        Side of the square images, 32 to 512 (the paper's Schisto and Refuge
        images are 400); the scene and the marker radius scale with it, and
        128 gives the default images bit for bit.

    Returns
    -------
    Dataset
        Named ``"fish"`` with stems ``"fish_000"``, ...: float32 images of
        shape (128, 128, 3) in [0, 1], bool masks of shape (128, 128);
        radius=3, n_bg=30, n_superpixels=10, no markers.

    Raises
    ------
    DatasetError
        If `n_images` < 1, `seed` < 0 or `size` is out of range.
    """
    return _make("fish", n_images, seed, FISH, (3, 30, 10), size)


def make_eggs(n_images: int = 60, seed: int = 0, size: int = SIZE) -> Dataset:
    """Make the synthetic eggs (Schisto) preset: 60 128x128 images with exact masks.

    Synthetic stand-in for the Schisto dataset.  One oval egg with a dark
    shell rim, a granular interior and a lateral spine lies on a light beige,
    faintly textured background among dark textured debris and thin fibres
    (all background).

    Parameters
    ----------
    n_images : int, optional
        Number of images; image ``i`` is the same whatever `n_images` is.
    seed : int, optional
        Non-negative seed; the same seed gives identical arrays.
    size : int, optional
        Side of the square images, 32 to 512 (the paper's Schisto and Refuge
        images are 400); the scene and the marker radius scale with it, and
        128 gives the default images bit for bit.

    Returns
    -------
    Dataset
        Named ``"eggs"`` with stems ``"eggs_000"``, ...: float32 images of
        shape (128, 128, 3) in [0, 1], bool masks of shape (128, 128);
        radius=3, n_bg=30, n_superpixels=25, no markers.

    Raises
    ------
    DatasetError
        If `n_images` < 1, `seed` < 0 or `size` is out of range.
    """
    return _make("eggs", n_images, seed, EGGS, (3, 30, 25), size)


def make_fundus(n_images: int = 60, seed: int = 0, size: int = SIZE) -> Dataset:
    """Make the synthetic fundus (Refuge) preset: 60 128x128 images with exact masks.

    Synthetic stand-in for the Refuge dataset.  An orange-red retina in a
    vignetted circular field of view, with a darker macula and dark red
    vessels that radiate from the object: a bright optic disc holding a
    brighter cup.

    Parameters
    ----------
    n_images : int, optional
        Number of images; image ``i`` is the same whatever `n_images` is.
    seed : int, optional
        Non-negative seed; the same seed gives identical arrays.
    size : int, optional
        Side of the square images, 32 to 512 (the paper's Schisto and Refuge
        images are 400); the scene and the marker radius scale with it, and
        128 gives the default images bit for bit.

    Returns
    -------
    Dataset
        Named ``"fundus"`` with stems ``"fundus_000"``, ...: float32 images of
        shape (128, 128, 3) in [0, 1], bool masks of shape (128, 128);
        radius=3, n_bg=30, n_superpixels=30, no markers.

    Raises
    ------
    DatasetError
        If `n_images` < 1, `seed` < 0 or `size` is out of range.
    """
    return _make("fundus", n_images, seed, FUNDUS, (3, 30, 30), size)
