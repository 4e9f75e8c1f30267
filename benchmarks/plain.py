"""The batched engine against a plain FLIM implementation written from the paper, one model at a time.

The issue behind this script reports the batched engine about 58x faster
than "a plain implementation" and asks for 100x.  The package's own
``--engine sequential`` path (:mod:`flimexplore.engine.reference`, timed by
``sweep.py``) is not that baseline: it shares the engine's clustering and
loss code and encodes every validation image once.  This script holds an
independent implementation of the study's per-model protocol, as a
researcher would write it from the paper with NumPy, scikit-learn and
``torch.nn``, times it on ``N`` models of W1 and the batched engine on all
150 models of W1 in the same process, and compares the validation Dice of
the models both computed.

W1 (see ``sweep.py``): the ``fish`` preset with 90 images (45 test, 3
marked, 42 validation, 128x128), marked image 0, 5 object markers x 30
background markers = 150 models, marker radius 3, 20 epochs, seed 0.

What the plain implementation does, per model, in a Python loop
----------------------------------------------------------------
1. *Data* (once, outside the per-model time, as the engine's prepared
   context is): every image is converted to libift's normalised Lab
   ("LABNorm2", FIELD_NOTES 1.1: the XYZ matrix on RGB without gamma
   decoding, then L, a, b rescaled to about [0, 1]), written here in NumPy
   from the formula, and kept as a ``(1, 3, H, W)`` tensor.
2. *Markers*: the object and background disks of the model (29 pixels each
   for radius 3), taken from the study's own model table so that both
   implementations train the very same models.
3. *Normalisation*: per channel, the mean and population standard deviation
   (NumPy's default ``ddof=0``) of the Lab values under both disks; the std
   gets libift's ``stdev_factor`` 0.01 added.
4. *Patches*: the 3x3x3 window of the normalised image around every marked
   pixel (zero outside the image, i.e. zero after normalisation), gathered
   with NumPy and flattened in ``(channel, row, col)`` order, the layout of
   a ``Conv2d`` weight.
5. *Kernels*: per marker, scikit-learn ``KMeans(n_clusters=8, n_init=1,
   random_state=42)`` (k-means++ start, Lloyd, sklearn's default
   ``max_iter`` and ``tol``) on that marker's 29 patches; the 8 centroids
   of the object marker then the 8 of the background marker, each scaled to
   unit L2 norm (no mean subtraction, no bias), are the 16 kernels.  One
   k-means run, as libift runs one; ``--n-init`` gives more.
6. *Network*: a ``torch.nn.Module``: the marker normalisation as fixed
   buffers, ``Conv2d(3, 16, 3, padding=1, bias=False)`` holding the kernels
   with ``requires_grad=False``, ``ReLU``, ``AvgPool2d(3, stride=2,
   padding=1, count_include_pad=True)``, bilinear interpolation back to the
   image size (``align_corners=False``), then the decision layer
   ``BatchNorm2d(16, momentum=None)`` + ``Conv2d(16, 2, 1)`` (Xavier-uniform
   weight, zero bias).
7. *Training*: ``torch.optim.Adam(lr=0.1)`` on the decision layer's
   parameters, one full-image step per epoch for 20 epochs on the marked
   image's mask; the loss is the mean of the pixel cross-entropy and the
   soft Dice loss (smoothing 1) of the object probability.
8. *Validation after every epoch*: ``model.eval()``, then for each of the 42
   validation images a forward pass of the whole network (encoder
   included), the prediction ``argmax`` over the two classes, its Dice
   against the mask (1 when both are empty, 0 when one is), and the mean
   over the images.  The decision layer's ``state_dict`` of the best epoch
   (first of equal means) is kept.
9. *Test*: that state is loaded back and the 45 test images are scored the
   same way.

``--cache-features`` is the shortcut a researcher may take because the
encoder is frozen: each image is encoded (and interpolated) once, and every
epoch only runs the decision layer on the stored features.  It is not the
default; the JSON says which variant ran.

What it deliberately does like the engine (so that the comparison is fair)
---------------------------------------------------------------------------
The paper's architecture and training settings (3x3 kernels, 8 per marker,
16 channels, ReLU, 3x3/2 average pooling counting the padding, batch norm
plus 1x1 decision layer on bilinearly upsampled features, Adam 0.1, 20
epochs, best epoch on mean validation Dice, argmax thresholding), libift's
normalised Lab input and marker normalisation, the Dice conventions for
empty masks, and the decision layer's initialisation: Xavier-uniform drawn
from a ``torch.Generator`` seeded with the study's per-model seed, with the
object kernels first, so that a model starts from the same weights in both
implementations.  Both run on ``--device`` with the same torch threads
(scikit-learn's k-means uses its own OpenMP threads; on 29 points per marker
it takes a few milliseconds of a model's seconds).

What differs
------------
* Clustering: scikit-learn's seeded k-means++ instead of the engine's
  deterministic farthest-point start (``--init farthest`` writes that start
  in NumPy and hands it to ``KMeans`` with ``tol=0``, as a check that the
  rest of the plain pipeline reproduces the engine).  Different kernels give
  different, not worse or better by design, Dice values.
* Nothing is batched, folded or shared between models: the engine computes
  the logit gap on pooled features, upsamples it with fixed 2x weights,
  counts with matrix products and trains many decision layers at once with
  a hand-written gradient; the plain path runs the ``nn.Module`` forward
  and autograd, image by image and model by model.
* Data preparation (Lab conversion) is done once for each implementation
  and not counted in either per-model time; the batched time is the median
  of ``--repeat`` whole-study runs on an already prepared context (as
  ``sweep.py`` times it), bracketing the plain runs.

Output: plain s/model, batched s/model, their ratio, and for the timed
models the plain against the engine's validation and test Dice (mean and
largest absolute difference, Spearman rho, best-epoch matches).

    python benchmarks/plain.py [--n-plain 10] [--device cpu|cuda] [--threads N] [--json PATH] [--quick]
    python benchmarks/plain.py --cache-features       # the frozen-encoder shortcut
    python benchmarks/plain.py --init farthest        # the engine's k-means start: Dice should agree closely
"""

from __future__ import annotations

import copy
import os
import sys
import time
import warnings
from typing import Any

import _common
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

KERNEL = 3
PER_MARKER = 8
STDEV_FACTOR = 0.01
POOL, POOL_STRIDE = 3, 2
BN_EPS = 1e-5
KMEANS_SEED = 42


# --------------------------------------------------------------------------------------------
# The plain implementation: NumPy, scikit-learn and torch.nn only (no flimexplore import).
# --------------------------------------------------------------------------------------------


def lab_normalised(rgb: np.ndarray) -> np.ndarray:
    """libift's normalised Lab of an RGB image in [0, 1], ``(H, W, 3)`` float32 (FIELD_NOTES 1.1)."""
    m = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])
    xyz = np.asarray(rgb, np.float64) @ m.T / np.array([0.950456, 1.0, 1.088754])
    f = np.where(xyz >= 0.008856, np.cbrt(xyz), 841.0 / 108.0 * xyz + 4.0 / 29.0)
    lab = np.stack([
        (116.0 * f[..., 1] - 16.0) / 99.998337,
        (500.0 * (f[..., 0] - f[..., 1]) + 86.182236) / (86.182236 + 98.258614),
        (200.0 * (f[..., 1] - f[..., 2]) + 107.867744) / (107.867744 + 94.481682),
    ], axis=-1)
    return lab.astype(np.float32)


def to_tensor(rgb: np.ndarray, device: str) -> torch.Tensor:
    """An RGB image as a ``(1, 3, H, W)`` normalised-Lab tensor."""
    return torch.from_numpy(lab_normalised(rgb).transpose(2, 0, 1).copy())[None].to(device)


def patches(norm: np.ndarray, pixels: np.ndarray, k: int = KERNEL) -> np.ndarray:
    """``k x k`` windows of a normalised ``(C, H, W)`` image at ``pixels (P, 2)``, zero outside: ``(P, C*k*k)``."""
    h = k // 2
    padded = np.pad(norm, ((0, 0), (h, h), (h, h)))
    return np.stack([padded[:, r : r + k, c : c + k].reshape(-1) for r, c in pixels])


def farthest_start(points: np.ndarray, k: int) -> np.ndarray:
    """The engine's k-means start: the point nearest the mean, then repeatedly the point farthest from the chosen."""
    d = ((points - points.mean(axis=0)) ** 2).sum(axis=1)
    chosen = [int(np.argmin(d))]
    nearest = ((points - points[chosen[0]]) ** 2).sum(axis=1)
    for _ in range(1, k):
        chosen.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, ((points - points[chosen[-1]]) ** 2).sum(axis=1))
    return points[chosen]


def cluster(points: np.ndarray, k: int, init: str, n_init: int) -> tuple[np.ndarray, int]:
    """``k`` centroids of one marker's patches with scikit-learn, and how many k-means warnings it gave."""
    from sklearn.cluster import KMeans

    if len(points) < k:  # fewer patches than kernels: take them all (repeated), as libift does
        return points[np.arange(k) % len(points)], 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if init == "farthest":
            km = KMeans(k, init=farthest_start(points, k), n_init=1, tol=0.0)
        else:
            km = KMeans(k, n_init=n_init, random_state=KMEANS_SEED)
        centroids = km.fit(points).cluster_centers_
    return centroids.astype(np.float32), len(caught)


class Encoder(nn.Module):
    """Marker normalisation, frozen 3x3 convolution, ReLU, 3x3/2 average pooling, upsampling to the input size."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, kernels: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.from_numpy(mean.reshape(1, -1, 1, 1)))
        self.register_buffer("std", torch.from_numpy(std.reshape(1, -1, 1, 1)))
        self.conv = nn.Conv2d(kernels.shape[1], kernels.shape[0], KERNEL, padding=KERNEL // 2, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(kernels))
        self.conv.weight.requires_grad_(False)
        self.relu = nn.ReLU()
        self.pool = nn.AvgPool2d(POOL, stride=POOL_STRIDE, padding=POOL // 2, count_include_pad=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(self.relu(self.conv((x - self.mean) / self.std)))
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


class Decision(nn.Module):
    """Batch norm and a 1x1 convolution to two classes (background, object)."""

    def __init__(self, channels: int, seed: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=BN_EPS, momentum=None)
        self.conv = nn.Conv2d(channels, 2, 1)
        nn.init.xavier_uniform_(self.conv.weight, generator=torch.Generator().manual_seed(int(seed)))
        nn.init.zeros_(self.conv.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.conv(self.bn(features))


class PlainFlim(nn.Module):
    """One FLIM model: the frozen encoder and the trainable decision layer."""

    def __init__(self, encoder: Encoder, decision: Decision) -> None:
        super().__init__()
        self.encoder = encoder
        self.decision = decision

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decision(self.encoder(x))


def loss_fn(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the cross-entropy and the soft Dice loss (smoothing 1) of the object probability."""
    ce = F.cross_entropy(logits, mask.long()[None])
    p = logits.softmax(dim=1)[0, 1]
    g = mask.float()
    soft_dice = (2 * (p * g).sum() + 1) / (p.sum() + g.sum() + 1)
    return 0.5 * (ce + 1 - soft_dice)


def dice(pred: torch.Tensor, truth: torch.Tensor) -> float:
    """Dice of two boolean masks; 1 when both are empty."""
    tp = int((pred & truth).sum())
    den = int(pred.sum()) + int(truth.sum())
    return 1.0 if den == 0 else 2.0 * tp / den


def mean_dice(net: nn.Module, images: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Mean Dice of the argmax prediction over images given as ``(input, mask)`` pairs."""
    with torch.no_grad():
        return float(np.mean([dice(net(x)[0].argmax(dim=0) == 1, m) for x, m in images]))


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def plain_model(
    marked: torch.Tensor,
    marked_mask: torch.Tensor,
    obj_px: np.ndarray,
    bg_px: np.ndarray,
    seed: int,
    val: list[tuple[torch.Tensor, torch.Tensor]],
    test: list[tuple[torch.Tensor, torch.Tensor]],
    epochs: int = 20,
    lr: float = 0.1,
    init: str = "k-means++",
    n_init: int = 1,
    cache_features: bool = False,
) -> dict[str, Any]:
    """Learn, train and score one FLIM model from one object and one background marker.

    Parameters
    ----------
    marked : Tensor of shape (1, 3, H, W)
        The marked image in normalised Lab.
    marked_mask : Tensor of shape (H, W), bool
    obj_px, bg_px : ndarray of shape (P, 2), int
        ``(row, col)`` of the object and background marker pixels.
    seed : int
        Seed of the decision layer's Xavier initialisation.
    val, test : list of (Tensor (1, 3, H, W), Tensor (H, W) bool)
    epochs, lr : int, float
    init : {"k-means++", "farthest"}
    n_init : int
        k-means runs per marker (k-means++ only).
    cache_features : bool
        Encode every image once instead of running the whole network every epoch.

    Returns
    -------
    dict
        ``val_dice_curve``, ``best_epoch`` (1-based), ``val_dice``, ``test_dice``, the seconds of each
        phase (``kernels_s``, ``train_s``, ``val_s``, ``test_s``) and ``kmeans_warnings``.
    """
    device = str(marked.device)
    t0 = time.perf_counter()
    lab = marked[0].cpu().numpy().astype(np.float64)
    values = np.concatenate([lab[:, obj_px[:, 0], obj_px[:, 1]], lab[:, bg_px[:, 0], bg_px[:, 1]]], axis=1)
    mean = values.mean(axis=1)
    std = values.std(axis=1) + STDEV_FACTOR
    norm = ((lab - mean[:, None, None]) / std[:, None, None]).astype(np.float32)
    warned = 0
    kernels = []
    for px in (obj_px, bg_px):
        centroids, w = cluster(patches(norm, px), PER_MARKER, init, n_init)
        warned += w
        kernels.append(centroids)
    bank = np.concatenate(kernels)
    bank = bank / np.maximum(np.linalg.norm(bank, axis=1, keepdims=True), 1e-6)
    c = lab.shape[0]
    encoder = Encoder(mean.astype(np.float32), std.astype(np.float32), bank.reshape(-1, c, KERNEL, KERNEL).astype(np.float32))
    net = PlainFlim(encoder, Decision(bank.shape[0], seed)).to(device)
    _sync(device)
    t1 = time.perf_counter()

    head: nn.Module = net
    x = marked
    if cache_features:  # the frozen encoder runs once per image; epochs run the decision layer only
        head = net.decision
        with torch.no_grad():
            x = net.encoder(marked)
            val = [(net.encoder(v), m) for v, m in val]
            test = [(net.encoder(v), m) for v, m in test]
    opt = torch.optim.Adam(net.decision.parameters(), lr=lr)
    curve: list[float] = []
    best_state = None
    t_train = t_val = 0.0
    for _ in range(epochs):
        ta = time.perf_counter()
        net.train()
        opt.zero_grad()
        loss = loss_fn(head(x), marked_mask)
        loss.backward()
        opt.step()
        _sync(device)
        tb = time.perf_counter()
        net.eval()
        d = mean_dice(head, val)
        if not curve or d > max(curve):
            best_state = copy.deepcopy(net.decision.state_dict())
        curve.append(d)
        t_train += tb - ta
        t_val += time.perf_counter() - tb
    t2 = time.perf_counter()
    net.decision.load_state_dict(best_state)
    net.eval()
    test_dice = mean_dice(head, test)
    _sync(device)
    t3 = time.perf_counter()
    return {
        "val_dice_curve": curve,
        "best_epoch": int(np.argmax(curve)) + 1,
        "val_dice": max(curve),
        "test_dice": test_dice,
        "kernels_s": t1 - t0,
        "train_s": t_train,
        "val_s": t_val,
        "test_s": t3 - t2,
        "kmeans_warnings": warned,
    }


# --------------------------------------------------------------------------------------------
# The benchmark: W1 from flimexplore (data, split, markers, seeds), both implementations timed.
# --------------------------------------------------------------------------------------------


def _config(quick: bool):
    from flimexplore.study.config import StudyConfig

    if quick:
        return StudyConfig(n_images=12, splits=1, n_bg=6, epochs=3)
    return StudyConfig(n_images=90)


def _spearman(a: list[float], b: list[float]) -> float | None:
    from scipy.stats import spearmanr

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)


def agreement(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Plain against engine Dice of the same models: validation (at each one's best epoch) and test."""
    out: dict[str, Any] = {}
    for part in ("val", "test"):
        p = [r[f"plain_{part}_dice"] for r in rows]
        e = [r[f"engine_{part}_dice"] for r in rows]
        diff = np.abs(np.subtract(p, e))
        out[part] = {
            "mean_abs_diff": float(diff.mean()),
            "max_abs_diff": float(diff.max()),
            "mean_diff_plain_minus_engine": float(np.mean(np.subtract(p, e))),
            "spearman_rho": _spearman(p, e),
        }
    out["best_epoch_matches"] = sum(r["plain_best_epoch"] == r["engine_best_epoch"] for r in rows)
    return out


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("plain", __doc__.splitlines()[0])
    p.add_argument("--n-plain", type=int, default=None,
                   help="models timed with the plain implementation, spread over the study (default: 10, --quick 2)")
    p.add_argument("--repeat", type=int, default=3,
                   help="whole-study batched runs, bracketing the plain ones; the median is used (default: %(default)s)")
    p.add_argument("--init", choices=("k-means++", "farthest"), default="k-means++",
                   help="k-means start of the plain path (default: %(default)s; farthest = the engine's start)")
    p.add_argument("--n-init", type=int, default=1, help="k-means++ runs per marker (default: %(default)s)")
    p.add_argument("--cache-features", action="store_true",
                   help="plain path encodes each image once (frozen encoder) instead of a full forward every epoch")
    args = p.parse_args(argv)
    threads = _common.setup_threads(args.threads)
    device = _common.device("plain", args.device)
    if device is None:
        return 2
    n_plain = args.n_plain if args.n_plain is not None else (2 if args.quick else 10)

    from flimexplore.markers import marker_pixels
    from flimexplore.study.context import StudyContext
    from flimexplore.study.run import model_table, plan_markers, run_study_all

    config = _config(args.quick)
    info = _common.machine(device)
    ctx = StudyContext(config, device)
    cfg = ctx.config
    table = model_table(ctx, plan_markers(ctx))
    total = len(table)
    disks = [m for m, t in enumerate(table) if t.pixels is None]  # the sampled one-disk models (all of W1)
    ids = sorted({disks[int(round(v))] for v in np.linspace(0, len(disks) - 1, min(n_plain, len(disks)))})

    # the plain path's data: the study's split of the loaded images, converted by its own Lab code
    ds = ctx.dataset
    t0 = time.perf_counter()
    marked = to_tensor(ctx.image, device)
    marked_mask = torch.from_numpy(np.asarray(ctx.mask, bool)).to(device)
    val = [(to_tensor(ds.images[i], device), torch.from_numpy(np.asarray(ds.masks[i], bool)).to(device)) for i in ctx.split.val]
    test = [(to_tensor(ds.images[i], device), torch.from_numpy(np.asarray(ds.masks[i], bool)).to(device)) for i in ctx.split.test]
    prepare_s = time.perf_counter() - t0
    shape = ctx.mask.shape

    def run_plain(m: int, epochs: int) -> dict[str, Any]:
        e = table[m]
        return plain_model(marked, marked_mask, marker_pixels(e.obj, cfg.radius, shape),
                           marker_pixels(e.bg, cfg.radius, shape), e.seed, val, test, epochs=epochs, lr=cfg.lr,
                           init=args.init, n_init=args.n_init, cache_features=args.cache_features)

    # warm-ups: both paths' first calls load kernels and allocate
    warm = plan_markers(ctx)[0]
    ctx.evaluate(np.stack([warm.obj] * 2), warm.bg[:2], [1, 2])
    run_plain(ids[0], 1)

    batched_times: list[float] = []

    def batched_run():
        dt, res = _common.timed(lambda: run_study_all(config, None, device=device, context=ctx), device)
        batched_times.append(dt)
        return res

    runs = 1 if args.quick else max(1, args.repeat)
    for _ in range((runs + 1) // 2):
        batched = batched_run()
    plain: dict[int, dict[str, Any]] = {}
    for m in ids:
        dt, plain[m] = _common.timed(lambda m=m: run_plain(m, cfg.epochs), device)
        plain[m]["seconds"] = dt
        print(f"plain model {m}: {dt:.2f} s, val Dice {plain[m]['val_dice']:.4f}", flush=True)
    for _ in range(runs // 2):
        batched = batched_run()

    engine = {r["model"]: r for r in batched.rows}
    rows = []
    for m in ids:
        e, r, t = engine[m], plain[m], table[m]
        if (e["obj_row"], e["obj_col"], e["bg_row"], e["bg_col"]) != (*map(int, t.obj), *map(int, t.bg)):
            raise SystemExit(f"model {m}: the study's table and its result disagree on the markers")
        rows.append({
            "model": m, "split": t.split, "bg_index": t.k, "obj": [int(v) for v in t.obj], "bg": [int(v) for v in t.bg],
            "plain_s": r["seconds"], "kernels_s": r["kernels_s"], "train_s": r["train_s"], "val_s": r["val_s"],
            "test_s": r["test_s"], "plain_val_dice": r["val_dice"], "engine_val_dice": e["val_dice"],
            "plain_test_dice": r["test_dice"], "engine_test_dice": e["test_dice"],
            "plain_best_epoch": r["best_epoch"], "engine_best_epoch": e["best_epoch"],
            "kmeans_warnings": r["kmeans_warnings"], "plain_val_dice_curve": r["val_dice_curve"],
        })
    plain_total = sum(r["plain_s"] for r in rows)
    batched_s = float(np.median(batched_times))
    result: dict[str, Any] = {
        "workload": "quick" if args.quick else "W1",
        "config": cfg.to_dict(),
        "n_models": total,
        "n_val": len(ctx.split.val),
        "n_test": len(ctx.split.test),
        "device": device,
        "threads": threads,
        "plain": {"init": args.init, "n_init": args.n_init if args.init == "k-means++" else 1,
                  "random_state": KMEANS_SEED if args.init == "k-means++" else None,
                  "cache_features": bool(args.cache_features), "prepare_s": prepare_s},
        "n_plain_models": len(rows),
        "plain_total_s": plain_total,
        "plain_s_per_model": plain_total / len(rows),
        "plain_phase_s_per_model": {k: float(np.mean([r[k] for r in rows])) for k in ("kernels_s", "train_s", "val_s", "test_s")},
        "batched_s": batched_s,
        "batched_runs_s": batched_times,
        "batched_s_per_model": batched_s / total,
        "dice_agreement": agreement(rows),
        "rows": rows,
    }
    result["ratio"] = result["plain_s_per_model"] / result["batched_s_per_model"]
    result["peak_rss_mb"] = _common.peak_rss_mb()
    result["machine"] = info | {"load_avg_1min_after": round(os.getloadavg()[0], 2)}

    variant = f"{args.init}{' x' + str(args.n_init) if args.init == 'k-means++' else ''}"
    variant += ", cached features" if args.cache_features else ", full forward every epoch"
    print(f"\n{result['workload']} on {device} ({info['cpu']}, {threads} threads, load {info['load_avg_1min']}); "
          f"plain: {variant}")
    print(_common.table(rows, ["model", "split", "bg_index", "plain_s", "kernels_s", "train_s", "val_s", "test_s",
                               "plain_val_dice", "engine_val_dice", "plain_best_epoch", "engine_best_epoch"]))
    print()
    print(_common.table([result], ["n_plain_models", "plain_s_per_model", "n_models", "batched_s",
                                   "batched_s_per_model", "ratio", "peak_rss_mb"]))
    ag = result["dice_agreement"]
    rho = ag["val"]["spearman_rho"]
    print(f"\nval Dice plain vs engine: mean |diff| {ag['val']['mean_abs_diff']:.4f}, max {ag['val']['max_abs_diff']:.4f}, "
          f"Spearman rho {'n/a' if rho is None else f'{rho:.3f}'}; best epoch equal in "
          f"{ag['best_epoch_matches']}/{len(rows)}")
    _common.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
