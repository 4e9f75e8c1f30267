"""The adaptive decoders: hand-worked cases, a per-pixel NumPy re-implementation, real models."""

import numpy as np
import pytest
import torch
from skimage.filters import threshold_otsu

from flimexplore.engine.batched import model_pixels, train_models
from flimexplore.engine.decoders import (
    DECODERS,
    adjacency,
    decoder_labels,
    labeled_saliency,
    local_saliency,
    local_weights,
    saliency,
    score_decoders,
    unit_channels,
    vanilla_saliency,
    vanilla_weights,
)
from flimexplore.engine.flim import encode
from flimexplore.engine.otsu import binarise
from flimexplore.engine.scores import dice, metrics_from_counts
from flimexplore.study.run import plan_markers

F64 = torch.float64


def _one(*channels):
    """Features (N=1, B=1, K, h, w) from 2-D lists."""
    return torch.tensor(np.array(channels), dtype=F64)[None, None]


# ---------------------------------------------------------------- hand-worked cases


def test_vanilla_by_hand():
    # Three 4x4 channels, already in [0, 1] and shown at image size (no upsampling):
    # ch0: one pixel on (mean 1/16),   share above its Otsu level (1/512) 1/16  -> sparse
    # ch1: 12 of 16 on (mean 0.75),    share above 0.75                         -> dense
    # ch2: 6 of 16 on (mean 0.375),    share above 0.375
    # Means (0.0625, 0.75, 0.375): 256 bins over [0.0625, 0.75] put them in bins 0, 116, 255;
    # splitting above bin 116 scores 2*1*(0.2196-0.7487)**2 = 0.560 > 1*2*(0.0638-0.5620)**2 = 0.496,
    # so tau = centre of bin 116 = 0.37537; var = 0.078993; tau > 0.1 so low = 0.29637, high = 0.45436.
    # ch0: 0.0625 <= low and 1/16 < 0.1 -> +1; ch1: 0.75 >= high and 0.75 > 0.2 -> -1; ch2: between -> 0.
    ch0 = np.zeros((4, 4))
    ch0[1, 2] = 1
    ch1 = np.ones((4, 4))
    ch1[1, 1:3] = ch1[2, 1:3] = 0
    ch2 = np.zeros((4, 4))
    ch2[0, :] = 1
    ch2[3, :2] = 1
    f = _one(ch0, ch1, ch2)
    channels, varying = unit_channels(f, (4, 4))
    assert torch.equal(channels, f) and varying.all()
    assert vanilla_weights(channels, varying).tolist() == [[[1.0, -1.0, 0.0]]]
    # ReLU(ch0 - ch1) is 1 at (1, 2) only; min-max keeps it; Otsu of levels {0 x15, 255} is 0.
    s = vanilla_saliency(f, (4, 4))
    assert torch.equal(s[0, 0], torch.from_numpy(ch0))
    objects, t = binarise(s)
    assert t.item() == 0 and torch.equal(objects[0, 0], torch.from_numpy(ch0 > 0))


def test_vanilla_leaves_constant_channels_out():
    f = _one(np.full((3, 3), 2.0), np.eye(3))
    channels, varying = unit_channels(f, (3, 3))
    assert varying.tolist() == [[[False, True]]] and channels[0, 0, 0].eq(0).all()
    # one varying channel: tau is its mean 1/3, var 0; mean >= high and its share 1/3 > 0.2 -> -1
    assert vanilla_weights(channels, varying).tolist() == [[[0.0, -1.0]]]
    assert vanilla_saliency(f, (3, 3)).eq(0).all()  # ReLU(-eye) = 0: a constant (empty) map


def test_labeled_by_hand():
    # Object kernel: 4 in the centre, 0 around -> normalised 1 / 0.
    # Background kernel: 2 around, (1, 1; 0, 1) in the centre -> normalised 1 around, (.5, .5; 0, .5).
    # ReLU(obj - bg) = (.5, .5; 1, .5) in the centre, 0 around; min-max keeps it (max 1, min 0).
    # Levels {0 x12, 127 x3, 255}: Otsu splits above 0 (12*4*159**2 > 15*1*229.6**2).
    obj = np.zeros((4, 4))
    obj[1:3, 1:3] = 4
    bg = np.full((4, 4), 2.0)
    bg[1:3, 1:3] = [[1, 1], [0, 1]]
    noise = np.arange(16.0).reshape(4, 4)  # a kernel of no marker: weight 0
    f = _one(obj, bg, noise)
    s = labeled_saliency(f, torch.tensor([[1, 0, -1]]), (4, 4))
    expected = np.zeros((4, 4))
    expected[1:3, 1:3] = [[0.5, 0.5], [1.0, 0.5]]
    assert torch.equal(s[0, 0], torch.from_numpy(expected))
    objects, t = binarise(s)
    assert t.item() == 0 and torch.equal(objects[0, 0], torch.from_numpy(expected > 0))


# g_obj and g_bg after division by the channel maximum (2 and 1); a third kernel of no marker.
#   g_obj = 1 1 0      g_bg = 0 0 1
#           1 0 0             0 0 1
#           0 0 0             1 1 1
LOCAL = _one([[2, 2, 0], [2, 0, 0], [0, 0, 0]], [[0, 0, 1], [0, 0, 1], [1, 1, 1]], [[5, 0, 5], [0, 5, 0], [5, 0, 5]])
LABELS = torch.tensor([[1, 0, -1]])


def test_mean_decoder_by_hand():
    # radius 1: the cross of 5 (zero padding counted, divisor 1 channel * 5 for each class).
    # Cross sums of g_obj: 3 2 1 / 2 2 0 / 1 0 0;  of g_bg: 0 1 2 / 1 2 3 / 2 3 3.
    # Object wins at (0,0), (0,1), (1,0); tie at (1,1); background wins elsewhere.
    w, g = local_weights(LOCAL, LABELS, "mean", radius=1)
    assert torch.equal(g[0, 0, 0], torch.tensor([[1, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=F64))
    assert w[0, 0, 0].tolist() == [[1, 1, 0], [1, 0, 0], [0, 0, 0]]
    assert w[0, 0, 1].tolist() == [[0, 0, -1], [0, 0, -1], [-1, -1, -1]]
    assert w[0, 0, 2].eq(0).all()  # no marker: never weighted
    # saliency = ReLU(g_obj * w_obj + g_bg * w_bg) = g_obj here
    assert torch.equal(local_saliency(LOCAL, LABELS, (3, 3), "mean", radius=1)[0, 0], g[0, 0, 0])
    # radius 1.5: the 3x3 square; at the centre the window holds 3 object and 5 background ones
    w, _ = local_weights(LOCAL, LABELS, "mean", radius=1.5)
    assert (w[0, 0, 0, 1, 1].item(), w[0, 0, 1, 1, 1].item()) == (0.0, -1.0)


def test_probability_decoder_by_hand():
    # radius 1 (cross of 5). At (0,0): object mean 3/5 = 0.6, variance 3/5 - 0.36 = 0.24;
    # background mean 0, variance 0 -> floored to 1.
    #   object channel, x = 1: (1-.6)**2/.24 = 0.667 < (1-0)**2/1 = 1     -> +1
    #   background channel, x = 0: (0-.6)**2/.24 = 1.5 > 0                -> -1
    # At (1,1): both classes have mean 0.4 and variance 0.24 -> ties -> 0 and 0.
    # At (0,2): object mean .2, var .16; background mean .4, var .24.
    #   object channel, x = 0: .04/.16 = .25 < .16/.24 = .667               -> +1
    #   background channel, x = 1: .64/.16 = 4 > .36/.24 = 1.5            -> -1
    w, _ = local_weights(LOCAL, LABELS, "probability", radius=1)
    at = lambda r, c: (w[0, 0, 0, r, c].item(), w[0, 0, 1, r, c].item())  # noqa: E731
    assert at(0, 0) == (1.0, -1.0) and at(1, 1) == (0.0, 0.0) and at(0, 2) == (1.0, -1.0)
    assert w[0, 0, 2].eq(0).all()
    s = local_saliency(LOCAL, LABELS, (3, 3), "probability", radius=1)
    assert s[0, 0, 0, 0] == 1 and s[0, 0, 1, 1] == 0 and s[0, 0, 0, 2] == 0


def test_adjacency_radius():
    assert adjacency(1.5).sum() == 9 and adjacency(1.5).all()  # libift's 8-neighbourhood
    assert adjacency(1.0).tolist() == [[False, True, False], [True, True, True], [False, True, False]]


def test_a_model_without_background_kernels_has_an_empty_map():
    for rule in ("mean", "probability"):
        s = local_saliency(LOCAL, torch.tensor([[1, -1, -1]]), (6, 6), rule)
        assert s.eq(0).all()


# ---------------------------------------------------------------- NumPy re-implementation


def _np_upsample(f, size, align_corners):
    """Bilinear interpolation of one (h, w) map, pixel by pixel (torch's conventions)."""
    h, w = f.shape
    out = np.empty(size)

    def src(i, n_in, n_out):
        if align_corners:
            x = i * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        else:
            x = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
        i0 = min(int(np.floor(x)), n_in - 1)
        return i0, min(i0 + 1, n_in - 1), x - i0

    for y in range(size[0]):
        y0, y1, ly = src(y, h, size[0])
        for x in range(size[1]):
            x0, x1, lx = src(x, w, size[1])
            top = (1 - lx) * f[y0, x0] + lx * f[y0, x1]
            bottom = (1 - lx) * f[y1, x0] + lx * f[y1, x1]
            out[y, x] = (1 - ly) * top + ly * bottom
    return out


def _np_minmax(m):
    return (m - m.min()) / (m.max() - m.min()) if m.max() > m.min() else np.zeros_like(m)


def _np_unit(c, size, align_corners):
    """One channel upsampled and min-max normalised; 0 if it is constant before upsampling."""
    up = _np_upsample(c, size, align_corners)
    return _np_minmax(up) if c.max() > c.min() else np.zeros_like(up)


def _np_vanilla(f, size, align_corners):
    """FIELD_NOTES section 2, FLIMat, for one model and image: f of shape (K, h, w)."""
    varying = [c.max() > c.min() for c in f]  # constant at feature resolution: left out
    norm = [_np_unit(c, size, align_corners) for c in f]
    means = np.array([c.mean() for c, v in zip(norm, varying, strict=True) if v])
    w = np.zeros(len(f))
    if len(means):
        tau, var = threshold_otsu(means), means.var()
        low, high = (tau - var if tau > 0.1 else tau), tau + var
        for i, (c, v) in enumerate(zip(norm, varying, strict=True)):
            if not v:
                continue
            share = (c > threshold_otsu(c)).mean()
            if c.mean() >= high and share > 0.2:
                w[i] = -1
            elif c.mean() <= low and share < 0.1:
                w[i] = 1
    return w, _np_minmax(np.maximum(sum(wi * c for wi, c in zip(w, norm, strict=True)), 0))


def _np_labeled(f, labels, size, align_corners):
    norm = [_np_unit(c, size, align_corners) for c in f]
    w = [1.0 if lab == 1 else -1.0 if lab == 0 else 0.0 for lab in labels]
    return _np_minmax(np.maximum(sum(wi * c for wi, c in zip(w, norm, strict=True)), 0))


def _np_local(f, labels, size, rule, radius, align_corners):
    """FIELD_NOTES section 2, FLIMad2 / FLIMad3, pixel by pixel: f of shape (K, h, w)."""
    k, h, w = f.shape
    g = np.array([c / c.max() if c.max() != 0 else c for c in f])
    r = int(radius)
    offsets = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if dy * dy + dx * dx <= radius**2]
    value = lambda c, y, x: g[c, y, x] if 0 <= y < h and 0 <= x < w else 0.0  # noqa: E731
    weights = np.zeros_like(g)
    for y in range(h):
        for x in range(w):
            stats = {}
            for cls in (1, 0):
                vals = np.array([value(c, y + dy, x + dx) for c in range(k) if labels[c] == cls for dy, dx in offsets])
                mean = vals.mean()
                var = ((vals - mean) ** 2).mean()
                stats[cls] = (mean, 1.0 if var < 1e-7 else var)
            (m1, v1), (m0, v0) = stats[1], stats[0]
            for c in range(k):
                if rule == "mean":
                    obj_wins, bg_wins = m1 > m0, m1 < m0
                else:  # P_obj > P_bg with P = exp(-(x - m)**2 / (2 var)), compared on the exponents
                    d_obj = (g[c, y, x] - m1) ** 2 / v1
                    d_bg = (g[c, y, x] - m0) ** 2 / v0
                    obj_wins, bg_wins = d_obj < d_bg, d_bg < d_obj
                if labels[c] == 1 and obj_wins:
                    weights[c, y, x] = 1
                elif labels[c] == 0 and bg_wins:
                    weights[c, y, x] = -1
    small = _np_minmax(np.maximum((weights * g).sum(0), 0))
    return weights, _np_upsample(small, size, align_corners)


def _random_features(n, b, k, h, w, seed):
    """Non-negative, partly zero features (as after ReLU and pooling), float64."""
    gen = torch.Generator().manual_seed(seed)
    f = torch.rand(n, b, k, h, w, generator=gen, dtype=F64) * 2 - 0.6
    return f.clamp(min=0)


@pytest.mark.parametrize("align_corners", [True, False])
def test_vanilla_and_labeled_equal_numpy(align_corners):
    f = _random_features(2, 3, 6, 5, 4, seed=1)
    f[1, 2, 3] = 0.7  # a constant channel
    labels = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 0, 1, 0, 1, 0], [1, 1, -1, 0, 0, -1]])
    size = (10, 7)
    channels, varying = unit_channels(f, size, align_corners)
    w = vanilla_weights(channels, varying)
    s_van = vanilla_saliency(f, size, align_corners)
    s_lab = labeled_saliency(f, labels, size, align_corners)
    n_nonzero = 0
    for i in range(2):
        for m in range(3):
            w_ref, s_ref = _np_vanilla(f[i, m].numpy(), size, align_corners)
            assert w[i, m].tolist() == w_ref.tolist()
            np.testing.assert_allclose(s_van[i, m].numpy(), s_ref, atol=1e-12)
            np.testing.assert_allclose(s_lab[i, m].numpy(), _np_labeled(f[i, m].numpy(), labels[m], size, align_corners),
                                       atol=1e-12)
            n_nonzero += int(np.abs(w_ref).sum())
    assert n_nonzero > 0  # the case is not trivial


@pytest.mark.parametrize(("rule", "radius"), [("mean", 1.5), ("probability", 1.5), ("mean", 1.0), ("probability", 1.0)])
def test_local_decoders_equal_numpy(rule, radius):
    f = _random_features(2, 3, 6, 5, 6, seed=2)
    labels = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 0, 1, 0, 1, -1], [0, 1, -1, 0, 1, 1]])
    size = (9, 12)
    w, _ = local_weights(f, labels, rule, radius)
    s = local_saliency(f, labels, size, rule, radius)
    for i in range(2):
        for m in range(3):
            w_ref, s_ref = _np_local(f[i, m].numpy(), labels[m].tolist(), size, rule, radius, True)
            assert w[i, m].tolist() == w_ref.tolist()
            np.testing.assert_allclose(s[i, m].numpy(), s_ref, atol=1e-12)
    assert w.ne(0).any() and (w == 1).any() and (w == -1).any()


def test_float32_features_give_the_float64_weights():
    f = _random_features(1, 4, 8, 6, 6, seed=3)
    labels = torch.tensor([[1] * 4 + [0] * 4] * 4)
    for rule in ("mean", "probability"):
        assert torch.equal(local_weights(f.float(), labels, rule)[0].double(), local_weights(f, labels, rule)[0])
    ch64, v64 = unit_channels(f, (12, 12))
    ch32, v32 = unit_channels(f.float(), (12, 12))
    assert torch.equal(vanilla_weights(ch32, v32).double(), vanilla_weights(ch64, v64))


# ---------------------------------------------------------------- real models


@pytest.fixture(scope="module")
def trained(small_context):
    ctx = small_context
    ms = plan_markers(ctx)
    obj = np.stack([ms[0].obj, ms[0].obj, ms[1].obj])
    bg = np.stack([ms[0].bg[0], ms[0].bg[1], ms[1].bg[2]])
    r, shape = ctx.config.radius, ctx.mask.shape
    return train_models(ctx.marked, model_pixels(obj, r, shape), model_pixels(bg, r, shape), [1, 2, 3], epochs=4)


def test_counts_give_the_dice_of_the_binarised_maps(small_context, trained):
    ctx = small_context
    counts = score_decoders(trained.bank, ctx.val_groups)
    n_val = sum(len(g.index) for g in ctx.val_groups)
    assert counts.shape == (3, len(DECODERS), n_val, 4) and counts.dtype == torch.int64
    labels = decoder_labels(trained.bank)
    for g in ctx.val_groups:
        feats = encode(g.images[0 : len(g.index)], trained.bank)
        for j, d in enumerate(DECODERS):
            objects, _ = binarise(saliency(feats, labels, tuple(g.masks.shape[1:]), d))
            for k, i in enumerate(g.index):
                for m in range(3):
                    expected = dice(objects[k, m].numpy(), g.masks[k].numpy())
                    assert metrics_from_counts(counts[m, j, i].numpy())["dice"] == pytest.approx(expected)
    d = metrics_from_counts(counts.numpy())["dice"]
    assert ((d >= 0) & (d <= 1)).all() and d.max() > 0.1


def test_decoders_are_batch_and_chunk_independent(small_context, trained):
    groups = small_context.val_groups
    together = score_decoders(trained.bank, groups)
    for m in range(3):
        alone = score_decoders(trained.bank.select([m]), groups)
        assert torch.equal(alone[0], together[m])
    steps = []
    tiny = score_decoders(trained.bank, groups, memory_mb=0.01, progress=lambda d, t: steps.append((d, t)))
    assert torch.equal(tiny, together)
    n_val = sum(len(g.index) for g in groups)
    assert steps[0] == (0, 3 * n_val) and steps[-1] == (3 * n_val, 3 * n_val)


def test_decoder_labels_skip_dropped_kernels(trained):
    bank = trained.bank
    kernels = bank.kernels.clone()
    kernels[0, 2] = 0  # a cluster dropped by the clustering
    from flimexplore.engine.flim import FlimBank

    labels = decoder_labels(FlimBank(kernels, bank.mean, bank.std, bank.kernel_labels))
    assert labels[0, 2] == -1 and torch.equal(labels[1:], bank.kernel_labels[1:])


def test_unknown_decoder_is_refused(small_context, trained):
    with pytest.raises(ValueError, match="unknown decoder"):
        score_decoders(trained.bank, small_context.val_groups, ["fancy"])
