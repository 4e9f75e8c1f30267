"""One encoding pass for every readout: the same numbers as score_models, score_decoders and attention_scores."""

import numpy as np
import pytest
import torch

from flimexplore.engine.attention import HEAD, attention_scores
from flimexplore.engine.batched import model_pixels, score_models, train_models
from flimexplore.engine.decision import head_gap
from flimexplore.engine.decoders import DECODERS, score_decoders
from flimexplore.engine.readouts import count_positive, score_readouts
from flimexplore.study.run import plan_markers


@pytest.fixture(scope="module")
def trained(small_context):
    ctx = small_context
    ms = plan_markers(ctx)
    obj = np.stack([ms[0].obj, ms[1].obj, ms[1].obj])
    bg = np.stack([ms[0].bg[1], ms[1].bg[0], ms[1].bg[2]])
    r, shape = ctx.config.radius, ctx.mask.shape
    return train_models(ctx.marked, model_pixels(obj, r, shape), model_pixels(bg, r, shape), [7, 8, 9], epochs=4)


def test_count_positive_by_hand():
    maps = torch.tensor([[[[1.0, 0.0], [-2.0, 3.0]], [[0.0, 0.0], [0.0, 0.0]]]])
    masks = torch.tensor([[[True, True], [False, False]]])
    assert count_positive(maps, masks).tolist() == [[[1, 1, 1, 1]], [[0, 0, 2, 2]]]  # zero is not object


def test_one_pass_equals_the_separate_functions(small_context, trained):
    groups = small_context.val_groups
    a, c = head_gap(trained.params, trained.bn)
    a, c = a[:, 3], c[:, 3]
    both = score_readouts(trained.bank, groups, a, c, DECODERS)
    assert both.readouts == (HEAD, *DECODERS)
    torch.testing.assert_close(both.counts[:, 1:], score_decoders(trained.bank, groups, DECODERS), rtol=0, atol=0)
    att = attention_scores(trained.bank, groups, a, c, DECODERS)
    torch.testing.assert_close(both.pointing, att.pointing, equal_nan=True, rtol=0, atol=0)
    torch.testing.assert_close(both.mass_in_object, att.mass_in_object, equal_nan=True, rtol=0, atol=1e-12)
    # the head's mask is the trained layer's prediction: the counts score_models makes at that epoch
    head = score_models(trained.bank, a[:, None], c[:, None], groups)[:, 0]
    differ = (both.counts[:, 0] != head).any(dim=-1)
    assert differ.float().mean() <= 0.05  # a pixel whose gap rounds across 0 differently, at most
    tp_gap = (both.counts[:, 0, :, 0] - head[..., 0]).abs()
    assert int(tp_gap.max()) <= 2


def test_without_attention_and_without_decoders(small_context, trained):
    a, c = head_gap(trained.params, trained.bn)
    only = score_readouts(trained.bank, small_context.test_groups, a[:, 1], c[:, 1], (), attention=False)
    assert only.readouts == (HEAD,) and only.pointing is None and only.mass_in_object is None
    n = sum(len(g.index) for g in small_context.test_groups)
    assert only.counts.shape == (3, 1, n, 4)
    assert (only.counts.sum(dim=-1) == int(np.prod(small_context.mask.shape))).all()
    with pytest.raises(ValueError, match="unknown decoder"):
        score_readouts(trained.bank, small_context.test_groups, a[:, 1], c[:, 1], ("bogus",))
