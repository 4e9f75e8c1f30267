"""study --vary object: a fixed background marker per split, object markers varied inside the object (issue 8 §6)."""

import numpy as np
import pytest

from flimexplore.errors import ConfigError
from flimexplore.markers import MARGIN_FACTOR, MarkerSet, ObjectMarkerSet, sample_object_markers
from flimexplore.study.config import StudyConfig
from flimexplore.study.context import StudyContext
from flimexplore.study.run import plan_markers, run_study_all
from flimexplore.study.score import score_pairs_all


@pytest.fixture(scope="module")
def vary_context(small_config):
    return StudyContext(small_config.replace(vary="object", n_bg=5, epochs=2), device="cpu")


def test_object_markers_lie_inside_the_object_and_the_background_marker_is_fixed(vary_context):
    cfg, mask = vary_context.config, vary_context.mask
    sets = plan_markers(vary_context)
    assert len(sets) == cfg.splits and all(isinstance(s, ObjectMarkerSet) for s in sets)
    for s in sets:
        assert len(s.objects) == 5 and mask[s.objects[:, 0], s.objects[:, 1]].all()
        assert not mask[tuple(s.background)]
        centres = np.vstack([s.background, s.objects])
        d = np.hypot(*(centres[:, None] - centres[None]).transpose(2, 0, 1))
        assert d[np.triu_indices(len(centres), 1)].min() >= MARGIN_FACTOR * cfg.radius
    assert not np.array_equal(sets[0].background, sets[1].background)


def test_vary_object_study_rows_and_heatmap(tmp_path, vary_context):
    res = run_study_all(vary_context.config, tmp_path, context=vary_context)
    for s, ms in enumerate(res.markers):
        rows = [r for r in res.rows if r["split"] == s]
        assert {(r["bg_row"], r["bg_col"]) for r in rows} == {tuple(ms.background)}
        assert [[r["obj_row"], r["obj_col"]] for r in rows] == ms.objects.tolist()
        layer = res.heatmap(s)  # paints the varied object markers, not the fixed background one
        for r in rows:
            assert layer.value[r["obj_row"], r["obj_col"]] == pytest.approx(r["val_dice"])
        assert np.isnan(layer.value[tuple(ms.background)])
    again = score_pairs_all(vary_context.config, tmp_path / "results.csv", tmp_path / "scored", context=vary_context)
    assert (tmp_path / "scored" / "results.csv").read_bytes() == (tmp_path / "results.csv").read_bytes()
    assert len(again.rows) == len(res.rows)


def test_dense_object_grid_covers_the_object(vary_context):
    ctx = StudyContext(vary_context.config.replace(dense=True, dense_spacing=4, splits=1), device="cpu", dataset=vary_context.dataset)
    ms = plan_markers(ctx)[0]
    assert len(ms.objects) > 5 and ctx.mask[ms.objects[:, 0], ms.objects[:, 1]].all()
    assert (ms.objects % 4 == 0).all()


def test_default_study_still_varies_the_background(small_context):
    assert all(isinstance(s, MarkerSet) for s in plan_markers(small_context))


def test_vary_setting_is_validated_and_sampling_says_how_many_fit():
    with pytest.raises(ConfigError, match="vary"):
        StudyConfig(vary="both").validate()
    mask = np.zeros((40, 40), bool)
    mask[15:25, 15:25] = True
    with pytest.raises(Exception, match="only .* fit"):
        sample_object_markers(mask, 50, 2, seed=0)
