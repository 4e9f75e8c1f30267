"""Large validation sets are converted chunk by chunk: same numbers as the tensors prepared up front."""

import numpy as np
import pytest
import torch

from flimexplore.data import make_eggs
from flimexplore.engine.batched import LazyImages, prepare_images
from flimexplore.study import context as context_module
from flimexplore.study.config import StudyConfig
from flimexplore.study.context import StudyContext
from flimexplore.study.run import plan_markers


def test_lazy_slices_equal_eager_slices():
    ds = make_eggs(5, size=48)
    eager = prepare_images(ds.images, ds.masks)[0]
    lazy = prepare_images(ds.images, ds.masks, lazy=True)[0]
    assert isinstance(lazy.images, LazyImages) and lazy.images.shape == eager.images.shape
    assert torch.equal(lazy.masks, eager.masks) and lazy.index == eager.index
    for sl in (slice(0, 1), slice(1, 4), slice(3, 9)):
        part = lazy.images[sl]
        assert torch.equal(part, eager.images[sl]) and part.stride() == eager.images[sl].stride()
    with pytest.raises(TypeError, match="slices only"):
        lazy.images[0]


def test_context_on_lazy_images_scores_identically(monkeypatch):
    cfg = StudyConfig(dataset="eggs", n_images=8, size=48, splits=1, n_bg=2, epochs=2)
    eager = StudyContext(cfg, "cpu")
    monkeypatch.setattr(context_module, "EAGER_BYTES", 0)
    lazy = StudyContext(cfg, "cpu")
    assert isinstance(lazy.val_groups[0].images, LazyImages) and not isinstance(eager.val_groups[0].images, LazyImages)
    ms = plan_markers(eager)[0]
    obj, bg = np.stack([ms.obj] * 2), ms.bg[:2]
    a, b = eager.evaluate(obj, bg, [1, 2]), lazy.evaluate(obj, bg, [1, 2])
    for part in ("val", "test"):
        for metric in a.val:
            np.testing.assert_array_equal(getattr(a, part)[metric], getattr(b, part)[metric])
