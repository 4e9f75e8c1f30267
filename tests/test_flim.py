import torch
import torch.nn.functional as F

from flimexplore.engine.flim import (
    encode,
    encode_reference,
    estimate_kernels,
    kmeans,
    learn_banks,
    marker_statistics,
    sample_patches,
)
from flimexplore.markers import disk_offsets


def _pixels(centres, radius=2):
    offs = torch.as_tensor(disk_offsets(radius))
    return torch.stack([offs + torch.tensor(c) for c in centres])


def test_marker_statistics_are_population_stats_plus_001():
    image = torch.zeros(1, 4, 4)
    image[0, 0, 0], image[0, 3, 3] = 2.0, 4.0
    mean, std = marker_statistics(image, torch.tensor([[[0, 0]]]), torch.tensor([[[3, 3]]]))
    assert torch.allclose(mean, torch.tensor([[3.0]]))
    assert torch.allclose(std, torch.tensor([[1.01]]))


def test_patches_are_normalised_and_zero_outside_the_image():
    image = torch.arange(9.0).reshape(1, 3, 3)
    p = sample_patches(image, torch.tensor([[[0, 0]]]), torch.tensor([[1.0]]), torch.tensor([[2.0]]))
    # window around (0, 0): top row and left column fall outside -> 0
    expected = torch.tensor([0, 0, 0, 0, -0.5, 0, 0, 1.0, 1.5])
    assert torch.allclose(p[0, 0], expected)


def test_patch_layout_matches_unfold():
    torch.manual_seed(0)
    image = torch.rand(3, 8, 8)
    mean, std = torch.rand(1, 3), torch.rand(1, 3) + 0.5
    px = torch.tensor([[[0, 5], [4, 4], [7, 7]]])
    p = sample_patches(image, px, mean, std)
    norm = (image - mean[0, :, None, None]) / std[0, :, None, None]
    u = F.unfold(norm[None], 3, padding=1)[0].T.reshape(8, 8, 27)
    assert torch.allclose(p[0], u[px[0, :, 0], px[0, :, 1]], atol=1e-6)


def test_kmeans_finds_separated_clusters_and_is_batch_independent():
    pts = torch.tensor([[0.0, 0], [0.1, 0], [5, 5], [5.1, 5], [9, 0], [9, 0.2]])[None]
    c = kmeans(pts, 3)
    got = sorted(tuple(round(v, 2) for v in row) for row in c[0].tolist())
    assert got == [(0.05, 0.0), (5.05, 5.0), (9.0, 0.1)]
    other = torch.rand(1, 6, 2)
    both = kmeans(torch.cat([pts, other]), 3)
    assert torch.equal(both[0], c[0])


def test_kmeans_with_fewer_points_than_clusters_repeats_points():
    c = kmeans(torch.tensor([[[1.0], [2.0]]]), 4)
    assert c.shape == (1, 4, 1) and set(c.flatten().tolist()) == {1.0, 2.0}


def test_kernels_are_unit_norm_8_per_marker():
    torch.manual_seed(1)
    k, labels = estimate_kernels(torch.rand(2, 13, 27), torch.rand(2, 13, 27))
    assert k.shape == (2, 16, 27)
    assert torch.allclose(k.norm(dim=2), torch.ones(2, 16))
    assert labels[0].tolist() == [1] * 8 + [0] * 8


def test_folded_batched_encoding_equals_the_literal_block():
    torch.manual_seed(2)
    image = torch.rand(3, 24, 20)
    bank = learn_banks(image, _pixels([(10, 10)] * 3), _pixels([(4, 4), (18, 15), (5, 15)]))
    images = torch.rand(2, 3, 24, 20)
    feats = encode(images, bank)
    assert feats.shape == (2, 3, 16, 12, 10)
    for n in range(2):
        for m in range(3):
            ref = encode_reference(images[n], bank.kernels[m], bank.mean[m], bank.std[m])
            assert torch.allclose(feats[n, m], ref, atol=1e-5)
    assert (feats >= 0).all()


def test_one_model_or_many_gives_the_same_kernels():
    torch.manual_seed(3)
    image = torch.rand(3, 24, 24)
    obj, bg = _pixels([(12, 12)] * 3), _pixels([(4, 4), (19, 19), (4, 19)])
    many = learn_banks(image, obj, bg)
    one = learn_banks(image, obj[1:2], bg[1:2])
    assert torch.equal(one.kernels[0], many.kernels[1])


def test_banded_encoding_is_exact_at_odd_and_tiny_sizes():
    torch.manual_seed(4)
    image = torch.rand(3, 12, 12) * 3
    bank = learn_banks(image, _pixels([(6, 6)] * 2, radius=1), _pixels([(3, 3), (8, 9)], radius=1))
    for h, w in [(1, 1), (2, 3), (5, 1), (7, 9)]:
        images = torch.rand(2, 3, h, w) * 3
        feats = encode(images, bank)
        assert feats.shape == (2, 2, 16, (h + 1) // 2, (w + 1) // 2)
        for n in range(2):
            for m in range(2):
                ref = encode_reference(images[n], bank.kernels[m], bank.mean[m], bank.std[m])
                assert torch.allclose(feats[n, m], ref, atol=1e-5)
