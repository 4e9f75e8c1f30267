"""The explorer's "advise next" (issue 18 §3), headless: state traits and figure data, as a browser would see them."""

import numpy as np
import pytest

from flimexplore.markers import marker_pixels
from flimexplore.widgets import Explorer, simulate_click
from flimexplore.widgets.inspect import score_markers
from flimexplore.widgets.next_marker import LOOP_LINE

SETTINGS = dict(n_images=16, splits=1, n_bg=4, epochs=4, seed=2, sync=True, projections=False, device="cpu")


@pytest.fixture(scope="module")
def studied() -> Explorer:
    app = Explorer("fish", **SETTINGS)
    app.run()
    assert app.state.error == ""
    return app


@pytest.fixture
def app(studied: Explorer) -> Explorer:
    studied.clear_markers()
    studied.state.error = ""
    return studied


def trace(app: Explorer, figure: str, name: str):
    fig = app.heatmap.figure if figure == "heatmap" else app.next.figure
    return next(t for t in fig.data if t.name == name)


def place_pair(app: Explorer) -> None:
    res = app.state.result
    mask = res.context.mask
    bg = next(p for p in np.argwhere(~mask) if 12 <= p[0] < 110 and 12 <= p[1] < 110)
    app.state.user_bg = (int(bg[0]), int(bg[1]))  # with the shown object marker: a scored pair
    assert app.state.user_score is not None


def test_advise_shows_where_the_next_marker_goes_and_accept_adds_it_and_rescores(app):
    place_pair(app)
    first = app.state.user_score.dice
    assert app.state.loop_history == ((2, first),)
    assert app.next.accept.disabled
    app.next.policy.value = "error"
    app.next.advise.click()
    s = app.state
    m = s.next_marker
    assert s.error == "" and s.next_policy == "error" and m is not None and m.how in ("error", "uncertain")
    mask = s.result.context.mask
    assert m.label == int(mask[m.row, m.col])  # on the class it will mark
    ring = trace(app, "heatmap", "next marker")
    assert list(ring.x) == [m.col] and list(ring.y) == [m.row] and ring.text[0].startswith("next: ")
    assert not app.next.accept.disabled and "next: " in app.next.text.value
    app.next.accept.click()
    disk = marker_pixels(np.array([m.row, m.col]), s.result.config.radius, mask.shape)
    got = {tuple(r[:2]): r[2] for r in s.user_markers}
    assert all(got[tuple(p)] == m.label for p in disk)  # the disk, with its class
    assert s.next_marker is None and app.next.accept.disabled and len(trace(app, "heatmap", "next marker").x) == 0
    assert s.user_score.dice == pytest.approx(score_markers(s.result, s.user_markers, 0).dice, abs=1e-9)
    assert [h[0] for h in s.loop_history] == [2, 3] and s.loop_history[-1][1] == s.user_score.dice
    line = trace(app, "next", LOOP_LINE)
    assert list(line.x) == [2, 3] and list(line.y) == [h[1] for h in s.loop_history]


def test_the_advised_policy_probes_and_a_click_on_the_ring_accepts(app):
    place_pair(app)
    app.next.policy.value = "advised"
    app.advise_next()
    m = app.state.next_marker
    assert m.how == "advised" and "candidates probed" in app.state.next_text
    simulate_click(app.heatmap.figure, "next marker", 0)
    assert app.state.next_marker is None and len(app.state.loop_history) == 2
    assert app.state.user_markers is not None and (app.state.user_markers[:, 2] == m.label).any()


def test_advise_next_without_markers_says_what_to_do_and_clear_resets_the_plot(app):
    app.state.selected = -1
    app.next.advise.click()
    assert "place or draw your markers" in app.state.error and app.state.error_at == "markers"
    assert app.state.next_marker is None
    place_pair(app)
    app.advise_next("error")
    app.clear_markers()
    assert app.state.loop_history == () and app.state.next_marker is None and len(trace(app, "next", LOOP_LINE).x) == 0
