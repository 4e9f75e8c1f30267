import torch
from torch import nn

from flimexplore.engine.decision import (
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


def test_counts_equal_upsampling_then_thresholding_at_even_and_odd_sizes():
    torch.manual_seed(5)
    for size in [(8, 12), (7, 9), (2, 2)]:
        h, w = (size[0] + 1) // 2, (size[1] + 1) // 2
        pooled = torch.rand(2, 3, 16, h, w, dtype=torch.float64)
        a, c = torch.randn(3, 4, 16, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
        masks = torch.rand(2, *size) > 0.5
        gap = torch.einsum("bec,nbchw->nbehw", a, pooled) + c[None, :, :, None, None]
        positive = upsample(gap, size) > 0  # (N, B, E, H, W)
        tp = (positive & masks[:, None, None]).sum(dim=(-2, -1)).permute(1, 2, 0)
        counts = count_outcomes(pooled, a, c, masks)
        assert torch.equal(counts[..., 0], tp)
        assert torch.equal(counts[..., 0] + counts[..., 1], positive.sum(dim=(-2, -1)).permute(1, 2, 0))
        assert (counts.sum(-1) == size[0] * size[1]).all()


def test_hand_written_adam_is_torch_adam_bit_for_bit():
    from flimexplore.engine.decision import _adam_step

    torch.manual_seed(6)
    mine = torch.randn(3, 34)
    theirs = mine.clone().requires_grad_(True)
    opt = torch.optim.Adam([theirs], lr=0.1)
    exp_avg, exp_avg_sq = torch.zeros_like(mine), torch.zeros_like(mine)
    for step in range(1, 8):
        grad = torch.randn(3, 34) * 10.0 ** torch.randint(-6, 2, (3, 34))
        theirs.grad = grad.clone()
        opt.step()
        _adam_step(mine, grad, exp_avg, exp_avg_sq, step, 0.1)
    assert torch.equal(mine, theirs.detach())
