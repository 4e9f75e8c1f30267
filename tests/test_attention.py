"""Attention scores: the trained head's exact CAM, pointing and mass in object."""

import math

import numpy as np
import pytest
import torch

from flimexplore.engine.attention import HEAD, attention_scores, head_evidence, mass_in_object, pointing
from flimexplore.engine.batched import model_pixels, predict_gap, train_models
from flimexplore.engine.decision import DecisionParams, head_gap
from flimexplore.engine.decoders import DECODERS, decoder_labels, saliency
from flimexplore.engine.flim import encode
from flimexplore.study.run import plan_markers

OBJECT = torch.tensor(
    [[0, 0, 0, 0],
     [0, 1, 1, 0],
     [0, 1, 1, 0],
     [0, 0, 0, 0]], dtype=torch.bool
)


def _maps(*maps):
    """(N=1, B, 4, 4) from 2-D lists."""
    return torch.tensor(np.array(maps), dtype=torch.float64)[None]


def test_pointing_by_hand():
    inside = np.zeros((4, 4))
    inside[2, 1] = 3.0  # the maximum on the object
    outside = np.zeros((4, 4))
    outside[0, 3] = 1.0
    tie = np.zeros((4, 4))
    tie[1, 1] = tie[0, 0] = 5.0  # two maxima: (0, 0) comes first in raster order -> miss
    tie_in = np.zeros((4, 4))
    tie_in[2, 2] = tie_in[3, 3] = 5.0  # (2, 2) first -> hit
    negative = np.full((4, 4), -2.0)
    negative[1, 2] = -1.0  # all evidence negative: the maximum still points
    flat = np.full((4, 4), 0.25)  # a constant map points nowhere
    hits = pointing(_maps(inside, outside, tie, tie_in, negative, flat), OBJECT[None])
    assert hits.dtype == torch.float64 and hits.shape == (6, 1)
    assert hits[:, 0].tolist() == [1, 0, 0, 1, 1, 0]


def test_pointing_tolerance_and_images_without_object():
    near = np.zeros((4, 4))
    near[0, 3] = 1.0  # distance to the nearest object pixel (1, 2): sqrt(2)
    masks = torch.stack([OBJECT, torch.zeros(4, 4, dtype=torch.bool)])
    maps = torch.cat([_maps(near), _maps(near)])
    assert pointing(maps, masks)[0, 0] == 0
    assert pointing(maps, masks, tolerance=1.0)[0, 0] == 0
    assert pointing(maps, masks, tolerance=1.5)[0, 0] == 1
    assert math.isnan(pointing(maps, masks)[0, 1])


def test_mass_in_object_by_hand():
    m = np.zeros((4, 4))
    m[1, 1], m[2, 2], m[0, 0] = 2.0, 1.0, 1.0  # 3 of 4 units inside
    m[3, 3] = -10.0  # negative evidence does not count
    share = mass_in_object(_maps(m, np.full((4, 4), -1.0), np.zeros((4, 4)), np.ones((4, 4))), OBJECT[None])
    assert share.dtype == torch.float64
    assert share[:, 0].tolist() == [0.75, 0.0, 0.0, 4 / 16]  # no positive evidence -> 0
    assert math.isnan(mass_in_object(_maps(m), torch.zeros(1, 4, 4, dtype=torch.bool))[0, 0])


@pytest.fixture(scope="module")
def trained(small_context):
    ctx = small_context
    ms = plan_markers(ctx)
    obj = np.stack([ms[0].obj, ms[1].obj])
    bg = np.stack([ms[0].bg[1], ms[1].bg[0]])
    r, shape = ctx.config.radius, ctx.mask.shape
    return train_models(ctx.marked, model_pixels(obj, r, shape), model_pixels(bg, r, shape), [7, 8], epochs=4)


def _epoch(trained, e):
    a, c = head_gap(trained.params, trained.bn)
    params = DecisionParams(*(t[:, e] for t in trained.params.astuple()))
    return a[:, e], c[:, e], params


def test_head_evidence_is_predict_gap(small_context, trained):
    a, c, params = _epoch(trained, 2)
    g = small_context.val_groups[0]
    images = g.images[0:2]
    cam = head_evidence(encode(images, trained.bank), a, c, tuple(images.shape[-2:]))
    for i in range(2):
        gap = predict_gap(images[i], trained.bank, params, trained.bn)
        torch.testing.assert_close(cam[i], gap, rtol=0, atol=1e-5)
        # linear upsampling: the gap of the upsampled features is the upsampled gap
        up = torch.nn.functional.interpolate(encode(images[i : i + 1], trained.bank)[0], size=tuple(images.shape[-2:]),
                                             mode="bilinear", align_corners=False)
        torch.testing.assert_close(cam[i], torch.einsum("bk,bkhw->bhw", a, up) + c[:, None, None], rtol=0, atol=1e-5)


def test_attention_scores_of_heads_and_decoders(small_context, trained):
    ctx = small_context
    a, c, params = _epoch(trained, 3)
    scores = attention_scores(trained.bank, ctx.val_groups, a, c)
    n_val = sum(len(g.index) for g in ctx.val_groups)
    assert scores.readouts == (HEAD, *DECODERS)
    assert scores.pointing.shape == scores.mass_in_object.shape == (2, 1 + len(DECODERS), n_val)
    labels = decoder_labels(trained.bank)
    for g in ctx.val_groups:
        for k, i in enumerate(g.index):
            image, mask = g.images[k : k + 1], g.masks[k : k + 1]
            maps = [predict_gap(image[0], trained.bank, params, trained.bn)[None]]
            feats = encode(image, trained.bank)
            maps += [saliency(feats, labels, tuple(mask.shape[1:]), d) for d in DECODERS]
            for j, m in enumerate(maps):
                torch.testing.assert_close(scores.pointing[:, j, i], pointing(m, mask)[:, 0], equal_nan=True)
                torch.testing.assert_close(scores.mass_in_object[:, j, i], mass_in_object(m, mask)[:, 0],
                                           equal_nan=True, rtol=0, atol=1e-6)
    valid = ~scores.mass_in_object.isnan()
    assert ((scores.mass_in_object[valid] >= 0) & (scores.mass_in_object[valid] <= 1)).all()


def test_attention_scores_are_batch_independent(small_context, trained):
    a, c, _ = _epoch(trained, 3)
    groups = small_context.val_groups
    both = attention_scores(trained.bank, groups, a, c, decoders=("mean",), tolerance=2.0)
    alone = attention_scores(trained.bank.select([1]), groups, a[1:], c[1:], decoders=("mean",), tolerance=2.0,
                             memory_mb=0.01)
    assert alone.readouts == (HEAD, "mean")
    torch.testing.assert_close(alone.pointing[0], both.pointing[1], equal_nan=True, rtol=0, atol=0)
    torch.testing.assert_close(alone.mass_in_object[0], both.mass_in_object[1], equal_nan=True, rtol=0, atol=1e-12)
