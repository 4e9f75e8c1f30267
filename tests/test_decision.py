import torch
from torch import nn

from flimexplore.decision import (
    BN_EPS,
    count_outcomes,
    decision_loss,
    head_gap,
    train_decision,
    upsample,
    xavier_weights,
)


def test_xavier_weights_are_seeded_and_bounded():
    a, b = xavier_weights([1, 2], 16), xavier_weights([1], 16)
    assert a.shape == (2, 2, 16) and torch.equal(a[0], b[0]) and not torch.equal(a[0], a[1])
    assert a.abs().max() <= (6 / 18) ** 0.5


def test_loss_is_mean_of_ce_and_dice():
    logits = torch.zeros(1, 2, 2, 2)
    mask = torch.tensor([[True, False], [False, False]])
    # p = 0.5 everywhere: CE = ln 2; soft Dice = (2*0.5 + 1) / (2 + 1 + 1) = 0.5
    expected = 0.5 * (torch.log(torch.tensor(2.0)) + 0.5)
    assert torch.allclose(decision_loss(logits, mask), expected[None])


def test_training_learns_a_separable_mask_and_keeps_every_epoch():
    mask = torch.zeros(16, 16, dtype=torch.bool)
    mask[4:12, 4:12] = True
    pooled = torch.rand(3, 16, 8, 8) * 0.1
    pooled[:, 0, 2:6, 2:6] += 1.0  # channel 0 marks the object
    params, bn, losses = train_decision(pooled, mask, seeds=[0, 1, 2], epochs=15)
    assert params.weight.shape == (3, 15, 2, 16) and losses.shape == (3, 15)
    assert (losses[:, -1] < losses[:, 0]).all()
    a, c = head_gap(params, bn)
    counts = count_outcomes(pooled[None], a, c, mask[None])
    tp, fp, fn, tn = counts[:, -1, 0].T
    assert (2 * tp / (2 * tp + fp + fn) > 0.8).all()


def test_folded_head_equals_batchnorm_and_conv_on_upsampled_features():
    torch.manual_seed(0)
    pooled = torch.rand(2, 16, 5, 6)
    mask = torch.rand(10, 12) > 0.5
    params, bn, _ = train_decision(pooled, mask, seeds=[3, 4], epochs=3)
    a, c = head_gap(params, bn)
    for m in range(2):
        bnm = nn.BatchNorm2d(16, eps=BN_EPS, momentum=None)
        bnm.train()(upsample(pooled[m : m + 1], (10, 12)))  # accumulate running stats
        bnm.eval()
        bnm.weight.data, bnm.bias.data = params.gamma[m, -1], params.beta[m, -1]
        logits = torch.einsum("kc,nchw->nkhw", params.weight[m, -1], bnm(upsample(pooled[m : m + 1], (10, 12))))
        logits = logits + params.bias[m, -1][None, :, None, None]
        gap = upsample(torch.einsum("c,chw->hw", a[m, -1], pooled[m])[None, None] + c[m, -1], (10, 12))
        assert torch.allclose(logits[0, 1] - logits[0, 0], gap[0, 0], atol=1e-4)


def test_counts_add_up_and_ties_go_to_background():
    pooled = torch.zeros(1, 1, 16, 2, 2)
    a = torch.zeros(1, 2, 16)
    c = torch.tensor([[0.0, 1.0]])  # epoch 0: gap 0 everywhere (tie); epoch 1: gap 1
    masks = torch.zeros(1, 4, 4, dtype=torch.bool)
    masks[0, :2] = True
    counts = count_outcomes(pooled, a, c, masks)
    assert counts[0, 0, 0].tolist() == [0, 0, 8, 8]
    assert counts[0, 1, 0].tolist() == [8, 8, 0, 0]
