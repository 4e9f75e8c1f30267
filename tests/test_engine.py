"""The batched engine must reproduce the plain one-model-at-a-time reference."""

import numpy as np
import pytest

from flimexplore.engine.batched import resolve_device
from flimexplore.errors import DeviceError
from flimexplore.study.run import model_seed, plan_markers


def test_batched_equals_sequential_per_model(small_context):
    ctx = small_context
    ms = plan_markers(ctx)
    obj = np.stack([ms[0].obj, ms[0].obj, ms[1].obj])
    bg = np.stack([ms[0].bg[0], ms[0].bg[1], ms[1].bg[2]])
    seeds = [model_seed(3, 0, 0, 0), model_seed(3, 0, 0, 1), model_seed(3, 0, 1, 2)]
    batched = ctx.evaluate(obj, bg, seeds)
    reference = ctx.evaluate_reference(obj, bg, seeds)
    np.testing.assert_allclose(batched.arrays["val_dice_curve"], reference.arrays["val_dice_curve"], atol=1e-4)
    np.testing.assert_array_equal(batched.best_epoch, reference.best_epoch)
    for metric in ("dice", "jaccard", "sensitivity", "specificity"):
        np.testing.assert_allclose(batched.val[metric], reference.val[metric], atol=1e-4)
        np.testing.assert_allclose(batched.test[metric], reference.test[metric], atol=1e-4)
    # the scores are real: the markers give different models
    assert np.ptp(batched.val["dice"]) > 0
    assert ((batched.val["dice"] >= 0) & (batched.val["dice"] <= 1)).all()


def test_chunked_scoring_equals_one_pass(small_context):
    ctx = small_context
    ms = plan_markers(ctx)[0]
    obj, bg = np.stack([ms.obj] * 4), ms.bg[:4]
    seeds = [1, 2, 3, 4]
    big = ctx.evaluate(obj, bg, seeds, memory_mb=4096)
    tiny = ctx.evaluate(obj, bg, seeds, memory_mb=1)
    np.testing.assert_array_equal(big.arrays["val_dice_curve"], tiny.arrays["val_dice_curve"])


def test_prediction_of_a_stored_model_matches_its_validation_counts(small_context):
    from flimexplore.engine.scores import dice

    ctx = small_context
    ms = plan_markers(ctx)[0]
    scores = ctx.evaluate(ms.obj[None], ms.bg[:1], [5])
    model = {k: v[0] for k, v in scores.arrays.items()}
    per_image = [dice(ctx.predict(model, ctx.dataset.images[i]), ctx.dataset.masks[i]) for i in ctx.split.val]
    assert np.mean(per_image) == pytest.approx(scores.val["dice"][0], abs=1e-4)


def test_device_resolution():
    assert str(resolve_device("cpu")) == "cpu"
    assert resolve_device("auto").type in {"cpu", "cuda"}
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("tpu")
