import numpy as np
import pytest
from scipy import ndimage

from flimexplore.analysis.projections import (
    feature_projection,
    grid_seeds,
    patch_projection,
    superpixel_centres,
    superpixels,
    tsne,
)
from flimexplore.study.run import run_study_all


def test_tsne_clamps_perplexity_and_handles_tiny_inputs():
    rng = np.random.default_rng(0)
    assert tsne(rng.random((6, 3)), 15).shape == (6, 2)
    assert tsne(rng.random((2, 3)), 5).shape == (2, 2)
    a, b = tsne(rng.random((20, 4)), 5, seed=1), tsne(rng.random((20, 4)), 5, seed=1)
    assert a.shape == b.shape == (20, 2)


def test_superpixel_centres_lie_inside_the_image():
    img = np.zeros((32, 32, 3), np.float32)
    img[:, 16:] = 1.0
    c = superpixel_centres(img, 8)
    assert len(c) >= 2 and (c >= 0).all() and (c < 32).all()


@pytest.mark.parametrize("name", ["fish", "eggs", "fundus", "nuclei"])
def test_superpixel_counts_on_the_presets_are_the_requested_ones(name):
    from flimexplore.data import load_dataset

    ds = load_dataset(name, n_images=6)
    for image in ds.images[:2]:
        for n in (10, 25, 30, ds.n_superpixels):
            labels = superpixels(image, n)
            found = np.unique(labels)
            assert 0.8 * n <= len(found) <= 1.2 * n  # the bound; the method gives n exactly
            assert len(found) == n
            assert all(ndimage.label(labels == lab)[1] == 1 for lab in found)  # connected


def test_superpixel_counts_on_folder_like_images():
    rng = np.random.default_rng(0)
    for shape in [(48, 80), (90, 60), (33, 127)]:
        image = rng.random((*shape, 3)).astype(np.float32)
        image[: shape[0] // 2] *= 0.3
        for n in (10, 25, 30):
            assert len(np.unique(superpixels(image, n))) == n
            c = superpixel_centres(image, n)
            assert c.shape == (n, 2) and len({tuple(x) for x in c}) == n


def test_grid_seeds_are_exact_distinct_and_spread():
    s = grid_seeds((100, 100), 10)
    assert len(s) == 10 and len({tuple(x) for x in s}) == 10
    assert s[:, 0].min() < 25 and s[:, 0].max() > 75 and s[:, 1].min() < 25 and s[:, 1].max() > 75
    assert len(grid_seeds((3, 3), 30)) == 9  # never more seeds than pixels


def test_projections_of_a_model(small_config, small_context):
    res = run_study_all(small_config.replace(splits=1, n_bg=2), device="cpu")
    r, arrays = res.rows[0], res.arrays[0]
    ctx = res.context
    p = patch_projection(ctx, arrays, (r["obj_row"], r["obj_col"]), (r["bg_row"], r["bg_col"]))
    from flimexplore.markers import disk_offsets

    assert len(p["x"]) == 2 * len(disk_offsets(ctx.config.radius)) and set(p["label"].tolist()) == {0, 1}
    f = feature_projection(ctx, arrays, max_images=4)
    assert len(f["x"]) == len(f["label"]) == len(f["row"]) > 8
    assert set(np.unique(f["image"])) <= set(range(4))
