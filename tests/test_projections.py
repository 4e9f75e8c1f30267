import numpy as np

from flimexplore.analysis.projections import feature_projection, patch_projection, superpixel_centres, tsne
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
