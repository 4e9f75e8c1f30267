"""The explorer's advanced panel of FLIM settings (issue 10): what it shows, what a run with it computes."""

from __future__ import annotations

import json

import pytest

from flimexplore.engine.arch import write_arch
from flimexplore.engine.settings import FlimSettings
from flimexplore.study.config import StudyConfig
from flimexplore.study.run import run_study_all
from flimexplore.widgets import Explorer

SETTINGS = dict(n_images=16, splits=1, n_bg=3, epochs=4, seed=1, sync=True, projections=False, device="cpu")


@pytest.fixture
def app() -> Explorer:
    return Explorer("fish", **SETTINGS)


def test_panel_starts_with_the_paper_settings_and_says_so_while_collapsed(app):
    panel = app.controls.flim
    assert panel.accordion.selected_index is None  # collapsed; the line above it says what is in force
    assert "FLIM: 1 layer: 3x3 kernels, 8 per marker, 16 channels, avg pool 3/2 (paper)" in panel.summary.value
    assert app.state.config().flim() == FlimSettings()


def test_widgets_drive_the_study_config(app):
    panel = app.controls.flim
    panel.layers.value = 2
    panel.decision_layer.value = 1
    panel.pool.value = "max"
    panel.kernels_per_marker.value = 4
    panel.clustering.value = "kmeans++"
    panel.restarts.value = 3
    panel.min_cluster_fraction.value = 0.05
    flim = app.state.config().flim()
    assert flim == FlimSettings(layers=2, decision_layer=1, pool="max", kernels_per_marker=4, clustering="kmeans++",
                                restarts=3, min_cluster_fraction=0.05)
    assert "2 layers (decision reads 1)" in panel.summary.value and "(paper)" not in panel.summary.value
    assert "kmeans++ x3" in panel.summary.value and "drop clusters &lt; 0.05" in panel.summary.value
    assert not panel.restarts.disabled
    panel.clustering.value = "farthest"
    assert panel.restarts.disabled  # farthest-point is one deterministic run


def test_a_run_with_two_layers_gives_the_api_s_numbers(app):
    app.controls.flim.layers.value = 2
    app.controls.flim.pool.value = "max"
    app.run()
    assert app.state.error == "" and app.state.result.complete
    cfg = StudyConfig(dataset="fish", **{k: v for k, v in SETTINGS.items() if k in ("n_images", "splits", "n_bg",
                                                                                   "epochs", "seed")},
                      radius=app.state.radius, layers=2, pool="max")
    expected = run_study_all(cfg, None, device="cpu").rows
    got = app.state.result.rows
    assert app.state.result.config.flim() == cfg.flim()
    assert [r["val_dice"] for r in got] == pytest.approx([r["val_dice"] for r in expected], abs=1e-6)
    # the paper's single layer gives other numbers on the same markers: the setting reached the engine
    single = run_study_all(cfg.with_flim(FlimSettings()), None, device="cpu").rows
    assert any(abs(a["val_dice"] - b["val_dice"]) > 1e-3 for a, b in zip(got, single, strict=True))


def test_changing_a_flim_setting_after_a_run_marks_the_views_stale(app):
    app.run()
    assert not app.state.stale and app.banner.value == ""
    app.controls.flim.channels.value = 8
    assert app.state.stale and "settings changed" in app.banner.value
    app.controls.flim.channels.value = 16
    assert not app.state.stale


def test_an_invalid_combination_is_a_readable_message_and_nothing_runs(app):
    app.controls.flim.kernel_size.value = 4
    assert "FLIM: invalid" in app.controls.flim.summary.value and "kernel_size must be odd" in app.controls.flim.summary.value
    app.controls.run.click()
    assert "kernel_size" in app.state.error and app.state.result is None and not app.state.running
    assert "Traceback" not in app.state.error


def test_load_arch_json_fills_the_panel_and_paper_defaults_put_them_back(app, tmp_path):
    settings = FlimSettings(kernel_size=5, kernels_per_marker=4, channels=8, pool="max", pool_size=3, pool_stride=2,
                            layers=2)
    write_arch(tmp_path / "arch.json", settings)
    app.controls.flim.arch_path.value = str(tmp_path / "arch.json")
    app.controls.flim.load_arch.click()
    assert app.state.error == ""
    assert app.state.flim() == settings
    assert app.controls.flim.kernel_size.value == 5 and app.controls.flim.layers.value == 2
    assert "FLIM settings from" in app.state.status
    app.controls.flim.reset.click()
    assert app.state.flim() == FlimSettings()


def test_an_arch_json_it_cannot_honour_is_a_readable_message_naming_the_file(app, tmp_path):
    bad = tmp_path / "dilated.json"
    write_arch(bad, FlimSettings())
    arch = json.loads(bad.read_text())
    arch["layer1"]["conv"]["dilation_rate"] = [2, 2, 0]  # atrous kernels: not something the engine does
    bad.write_text(json.dumps(arch))
    app.controls.flim.arch_path.value = str(bad)
    app.controls.flim.load_arch.click()
    assert str(bad) in app.state.error and "dilation_rate" in app.state.error
    assert app.state.flim() == FlimSettings()  # nothing half-applied
    app.controls.flim.arch_path.value = ""
    app.controls.flim.load_arch.click()
    assert "path of an arch.json" in app.state.error


def test_explorer_takes_initial_flim_settings_or_an_arch_file(tmp_path):
    app = Explorer("fish", flim={"layers": 3, "pool": "max"}, **SETTINGS)
    assert app.state.flim() == FlimSettings(layers=3, pool="max")
    write_arch(tmp_path / "arch.json", FlimSettings(kernel_size=5))
    app = Explorer("fish", arch=tmp_path / "arch.json", **SETTINGS)
    assert app.state.flim().kernel_size == 5
