"""The robot users of the annotation loop (issue 18 §2): one marker per step, the right class, held-out data unread."""

import dataclasses

import numpy as np
import pytest
import torch

from flimexplore.data import load_dataset, split_dataset
from flimexplore.errors import MarkerError
from flimexplore.loop.clicker import error_click, error_regions
from flimexplore.loop.config import LoopConfig
from flimexplore.loop.drawn import Marker, admissible, image_markers, marker_rows
from flimexplore.loop.fit import MarkedModel, fit_marked, fit_settings
from flimexplore.loop.policies import next_marker, random_marker
from flimexplore.loop.run import LoopContext
from flimexplore.loop.view import MarkedView
from flimexplore.markers import MARGIN_FACTOR
from flimexplore.study.config import StudyConfig

STUDY = StudyConfig(dataset="fish", n_images=16, seed=3, epochs=4)


def test_error_click_takes_the_deepest_point_of_the_largest_error_region():
    mask = np.zeros((20, 20), bool)
    mask[2:9, 2:9] = True  # a 7x7 object, half of it missed
    pred = np.zeros((20, 20), bool)
    pred[2:9, 2:5] = True  # missed object: columns 5..8 of rows 2..8, 28 px
    pred[11:18, 8:18] = True  # false object: 7 x 10 = 70 px, the largest region
    regions = error_regions(pred, mask)
    assert [(int(r.sum()), label) for r, label in regions] == [(70, 0), (28, 1)]
    click = error_click(pred, mask, np.ones_like(mask))
    # the false-object block rows 11..17, cols 8..17: its deepest pixels are row 14, cols 11..14; the ones nearest
    # its centroid (14, 12.5) are cols 12 and 13, the first in raster order wins
    assert (click.label, click.region_pixels, click.row, click.col, click.depth) == (0, 70, 14, 12, 4.0)
    # a background marker for false object; with the block's centre row inadmissible, the next deepest admissible pixel
    ok = np.ones_like(mask)
    ok[14] = False
    c2 = error_click(pred, mask, ok)
    assert c2.label == 0 and c2.row in (13, 15) and c2.depth == 3.0
    # no admissible pixel in the big region: the missed-object region gets an object marker at its centre
    ok = np.ones_like(mask)
    ok[11:18, 8:18] = False
    c3 = error_click(pred, mask, ok)
    assert (c3.label, c3.row, c3.col, c3.region_pixels) == (1, 5, 6, 28)
    assert error_click(mask, mask, np.ones_like(mask)) is None  # no error at all


def test_admissible_keeps_the_border_and_the_markers_apart():
    ok = admissible((40, 40), 4, [Marker(0, 1, 20, 20), Marker(1, 0, 10, 10)], 0)
    assert not ok[:6].any() and not ok[:, :6].any() and ok[6, 6]  # 1.5 r = 6 from the border
    assert not ok[20, 25] and ok[20, 26] and ok[10, 10]  # 6 from the marker on image 0; image 1's marker ignored


def test_marker_rows_later_disks_paint_over_earlier_ones():
    rows = marker_rows([Marker(0, 1, 5, 5), Marker(0, 0, 5, 7), Marker(2, 0, 3, 3)], 2, {0: (12, 12), 2: (8, 8)})
    assert list(rows) == [0, 2]
    labels = {tuple(r[:2]): r[2] for r in rows[0]}
    assert labels[(5, 6)] == 0 and labels[(5, 4)] == 1 and len(labels) == len(rows[0])  # each pixel once
    m = image_markers([Marker(0, 1, 5, 5), Marker(0, 0, 5, 7)], 2, {0: (12, 12)})
    assert m.images == (0,) and m.n_pixels == len(rows[0])


class _Guarded(tuple):
    """Masks whose entries other than ``allowed`` raise when read (held-out masks)."""

    def __new__(cls, masks, allowed):
        obj = super().__new__(cls, masks)
        obj.allowed = set(allowed)
        return obj

    def __getitem__(self, i):
        if isinstance(i, slice) or i not in self.allowed:
            raise AssertionError(f"a policy read held-out mask {i!r}")
        return super().__getitem__(i)

    def __iter__(self):
        raise AssertionError("a policy iterated over every mask")


@pytest.fixture(scope="module")
def guarded_view():
    data = load_dataset("fish", n_images=16)
    split = split_dataset(16, seed=3)
    guarded = dataclasses.replace(data)
    object.__setattr__(guarded, "masks", _Guarded(data.masks, split.marked))
    with pytest.raises(AssertionError):
        guarded.masks[split.val[0]]  # the guard works
    return MarkedView.from_split(guarded, split), split


@pytest.mark.parametrize("policy", ["advised", "error", "random"])
def test_policies_read_only_the_marked_images_and_add_one_marker_of_the_right_class(guarded_view, policy):
    view, split = guarded_view
    mask = view.masks[0]
    start = [Marker(0, 1, *map(int, np.argwhere(mask)[len(np.argwhere(mask)) // 2]), "start"),
             Marker(0, 0, 20, 20, "start")]
    fit = fit_settings(STUDY, 0)
    current = fit_marked(view, [image_markers(start, 3, view.shapes)], fit)
    drawn = list(start)
    for image in (0, 0, 1):
        m = next_marker(policy, view, drawn, image, 3, rng=np.random.default_rng(1), current=current, fit=fit, candidates=3)
        assert m.image == image and m.label == int(view.masks[image][m.row, m.col])  # on the class it marks
        assert admissible(view.masks[image].shape, 3, drawn, image)[m.row, m.col]
        drawn.append(m)
        current = fit_marked(view, [image_markers(drawn, 3, view.shapes)], fit)
    assert len(drawn) == 5


def test_random_policy_alternates_classes_background_first(guarded_view):
    view, _ = guarded_view
    rng = np.random.default_rng(0)
    drawn = [Marker(0, 1, 60, 60, "start"), Marker(0, 0, 10, 10, "start")]
    for _ in range(4):
        drawn.append(random_marker(view, drawn, 0, 3, rng))
    assert [m.label for m in drawn[2:]] == [0, 1, 0, 1]
    centres = np.array([[m.row, m.col] for m in drawn])
    d = np.sqrt(((centres[:, None] - centres[None]) ** 2).sum(-1)) + np.eye(len(drawn)) * 99
    assert d.min() >= MARGIN_FACTOR * 3
    with pytest.raises(MarkerError, match="no admissible marker position is left"):
        random_marker(view, drawn, 0, 60, rng)


def test_the_policies_model_is_the_refit_they_follow():
    """The model a policy looks at (trained on the view) equals the step's refit (trained by the study context)."""
    from flimexplore.study.run import model_seed

    lctx = LoopContext.prepare(LoopConfig(study=STUDY), "cpu")
    cfg = lctx.study.config
    markers = image_markers(list(lctx.start), lctx.radius, lctx.view.shapes)
    refit = lctx.study.evaluate_image_markers([markers], [model_seed(cfg.seed, cfg.image, 0, 0)], repeats=(1,),
                                              keep_trained=True)
    ours = fit_marked(lctx.view, [markers], fit_settings(cfg, 1))
    for a, b in zip(ours.trained.bank.layers, refit.trained.bank.layers, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a.astuple(), b.astuple(), strict=True))
    assert all(torch.equal(x, y) for x, y in zip(ours.trained.params.astuple(), refit.trained.params.astuple(), strict=True))
    gap = MarkedModel(refit.trained, markers.images).gap(lctx.view, 0)
    assert gap.shape == (1, *lctx.view.masks[0].shape) and np.array_equal(gap, ours.gap(lctx.view, 0))
