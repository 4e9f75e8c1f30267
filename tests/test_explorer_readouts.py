"""The explorer with other readouts (issue 19 §3): a readout dropdown redraws the heatmap and distribution,
the detail view shows the selected model's evidence map beside its prediction.  Headless: traits and figure data.
"""

from __future__ import annotations

import numpy as np
import pytest

from flimexplore import figures
from flimexplore.study.readout_table import READOUTS
from flimexplore.widgets import Explorer

SETTINGS = dict(n_images=16, splits=2, n_bg=4, epochs=5, seed=3, sync=True, projections=False, device="cpu")


def trace(fig, name: str):
    return next(t for t in fig.data if t.name == name)


@pytest.fixture(scope="module")
def app() -> Explorer:
    app = Explorer("fish", decoders=READOUTS, **SETTINGS)
    app.run()
    assert app.state.error == "" and app.state.result.complete
    return app


def test_the_readout_dropdown_offers_the_study_readouts(app):
    assert [v for _, v in app.heatmap.readout.options] == list(READOUTS)
    assert app.heatmap.readout.layout.display is None  # shown: the study has other readouts
    assert app.controls.readouts.value is True and app.state.config().decoders == READOUTS
    plain = Explorer("fish", **SETTINGS)
    assert plain.heatmap.readout.layout.display == "none" and plain.controls.readouts.value is False
    plain.controls.readouts.value = True
    assert plain.state.decoders == READOUTS and plain.state.config().decoders == READOUTS


def test_choosing_a_decoder_redraws_heatmap_and_distribution(app):
    s, res = app.state, app.state.result
    trained = list(trace(app.heatmap.figure, "background markers").marker.color)
    points = list(app.distribution.figure.data[0].x)
    assert trained == [r["val_dice"] for r in res.rows if r["split"] == 0]
    try:
        app.heatmap.readout.value = "mean"  # what a user does in the dropdown
        assert s.decoder == "mean"
        mean = [r["val_dice"] for r in res.decoder_rows("mean")]
        shown = list(trace(app.heatmap.figure, "background markers").marker.color)
        assert shown == [r["val_dice"] for r in res.decoder_rows("mean") if r["split"] == 0] != trained
        assert "mean decoder" in app.heatmap.figure.layout.title.text
        assert sorted(app.distribution.figure.data[0].x) == sorted(mean) and list(app.distribution.figure.data[0].x) != points
        assert "mean decoder" in app.distribution.figure.layout.title.text
    finally:
        s.decoder = "trained"
    assert list(trace(app.heatmap.figure, "background markers").marker.color) == trained


def test_detail_shows_the_evidence_map_of_the_shown_readout(app):
    s, res = app.state, app.state.result
    model = res.rows[1]["model"]
    s.selected = model
    d = s.detail
    assert d.readout == "trained" and d.evidence.shape == d.truth.shape
    np.testing.assert_array_equal(d.pred, d.evidence > 0)  # the trained layer's CAM: object where the gap is positive
    heat = trace(app.detail.figure, "evidence")
    assert np.allclose(np.asarray(heat.z, dtype=float), d.evidence, atol=1e-6) and heat.zmid == 0
    assert [t.name for t in app.detail.figure.data] == list(figures.DETAIL_TRACES)
    assert "best epoch" in app.detail.text.value and "mass in object" in app.detail.text.value
    try:
        s.decoder = "vanilla"
        d = s.detail
        assert d.model == model and d.readout == "vanilla" and 0 <= d.evidence.min() and d.evidence.max() <= 1
        row = next(r for r in res.decoder_rows("vanilla") if r["model"] == model)
        assert d.row["val_dice"] == row["val_dice"]
        assert "vanilla" in app.detail.text.value and "no training" in app.detail.text.value
        heat = trace(app.detail.figure, "evidence")
        assert heat.zmin == 0 and np.allclose(np.asarray(heat.z, dtype=float), d.evidence, atol=1e-6)
        assert "vanilla saliency" in [a.text for a in app.detail.figure.layout.annotations]
    finally:
        s.decoder = "trained"
        s.selected = -1


def test_a_study_without_readouts_resets_the_readout():
    app = Explorer("fish", decoders=("trained", "labeled"), **SETTINGS | dict(splits=1, n_bg=3))
    app.run()
    app.state.decoder = "labeled"
    assert "labeled decoder" in app.heatmap.figure.layout.title.text
    app.controls.readouts.value = False  # the checkbox: back to the trained layer alone
    assert app.state.stale
    app.run()
    assert app.state.decoder == "trained" and [v for _, v in app.heatmap.readout.options] == ["trained"]
    assert app.heatmap.readout.layout.display == "none" and app.state.result.readouts == []
