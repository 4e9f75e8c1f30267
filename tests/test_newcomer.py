"""What a newcomer meets first: --version, flags, the first progress line, the output folder, progress inside chunks."""

import imageio.v3 as iio
import pytest

import flimexplore
from flimexplore.cli import main
from flimexplore.study import progress as study_progress
from flimexplore.study import run as study_run
from flimexplore.study.run import StopStudy, run_study
from flimexplore.study.store import LOCK_NAME, ResultStore


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"flimexplore {flimexplore.__version__}"


def test_study_names_the_marked_image_leaves_no_lock_and_writes_readable_pngs(tmp_path, capsys):
    out = tmp_path / "o"
    args = ["--debug", "study", "--n-images", "12", "--object-markers", "2", "--n-bg", "3", "--epochs", "2", "--out", str(out)]
    assert main(args) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert "marked image 0: fish_" in first and "(128x128) of fish; 6 models" in first
    assert not (out / LOCK_NAME).exists()
    assert sorted(p.name for p in out.glob("*.png")) == ["heatmap_overview.png", "heatmap_split0.png", "heatmap_split1.png"]
    fixed = (out / "heatmap_split0.png").read_bytes()
    assert max(iio.imread(fixed).shape[:2]) >= 512
    assert iio.imread(out / "heatmap_overview.png").shape[1] >= 2 * 256
    # --scale study only redraws the figures (the rerun resumes all 6 models) and they change
    assert main([*args[1:], "--scale", "study"]) == 0
    assert "6 already done" in capsys.readouterr().err
    assert (out / "heatmap_split0.png").read_bytes() != fixed


def test_splits_stays_an_alias_of_object_markers(tmp_path):
    from flimexplore.cli._common import CliParser, add_study_arguments

    p = CliParser()
    add_study_arguments(p)
    assert p.parse_args(["--splits", "3"]).splits == 3 == p.parse_args(["--object-markers", "3"]).splits


def test_lock_file_is_removed_and_the_folder_can_be_locked_again(tmp_path, small_config, small_context):
    cfg, ident = small_context.config, small_context.identity()
    with ResultStore(tmp_path, cfg, ident):
        assert (tmp_path / LOCK_NAME).exists()
        with pytest.raises(flimexplore.OutputError, match="another running study"):
            ResultStore(tmp_path, cfg, ident)
    assert not (tmp_path / LOCK_NAME).exists()
    with ResultStore(tmp_path, cfg, ident):
        pass
    (tmp_path / LOCK_NAME).write_text("")  # left by a study killed with kill -9: taken over
    with ResultStore(tmp_path, cfg, ident):
        pass
    assert not (tmp_path / LOCK_NAME).exists()


def test_progress_inside_a_chunk_counts_images_and_estimates_time_left(monkeypatch, small_config, small_context):
    monkeypatch.setattr(study_progress, "INSIDE_EVERY_S", 0.0)
    monkeypatch.setattr(study_run, "REPORT_INSIDE_PIXELS", 0)  # as for big images
    events = list(_events(run_study(small_config, model_chunk=4, context=small_context)))
    inside = [e for e in events if e.inside is not None]
    n_images = len(small_context.split.val) + len(small_context.split.test)
    assert inside and all(e.inside[1] == n_images for e in inside)
    first_chunk = [e.inside[0] for e in inside if e.done == 0]
    assert first_chunk == sorted(set(first_chunk)) and first_chunk[-1] == n_images
    assert all(e.eta_s is not None and e.eta_s >= 0 for e in inside)
    assert f"/{n_images} validation and test images, ~" in inside[0].message and " s left" in inside[0].message
    assert [e.done for e in events if e.inside is None] == [0, 4, 8]


def test_stop_inside_a_chunk_keeps_that_chunk(monkeypatch, tmp_path, small_config, small_context):
    monkeypatch.setattr(study_progress, "INSIDE_EVERY_S", 0.0)
    monkeypatch.setattr(study_run, "REPORT_INSIDE_PIXELS", 0)  # as for big images
    gen = run_study(small_config, tmp_path, model_chunk=4, context=small_context)
    ev = next(gen)
    while ev.inside is None:
        ev = next(gen)
    assert ev.done == 0
    with pytest.raises(StopIteration) as stop:
        while True:
            gen.throw(StopStudy())
    result = stop.value.value
    assert not result.complete and len(result.rows) == 4
    assert not (tmp_path / LOCK_NAME).exists()


def _events(gen):
    while True:
        try:
            yield next(gen)
        except StopIteration:
            return


def test_closing_a_study_inside_a_chunk_leaves_no_worker_thread(monkeypatch, small_config, small_context):
    import threading

    monkeypatch.setattr(study_progress, "INSIDE_EVERY_S", 0.0)
    monkeypatch.setattr(study_run, "REPORT_INSIDE_PIXELS", 0)  # as for big images
    gen = run_study(small_config, model_chunk=8, context=small_context)
    ev = next(gen)
    while ev.inside is None:
        ev = next(gen)
    gen.close()  # as when Ctrl-C or garbage collection ends the generator
    assert [t for t in threading.enumerate() if t.name == "flimexplore-chunk"] == []


@pytest.mark.parametrize("change", [{"vary": "object"}, {"markers_per_model": (2, 2)}])
def test_figures_for_other_marker_kinds(tmp_path, change):
    from flimexplore.study.config import StudyConfig
    from flimexplore.study.run import run_study_all

    cfg = StudyConfig(dataset="fish", n_images=12, splits=2, n_bg=3, epochs=1, **change)
    result = run_study_all(cfg, tmp_path, device="cpu")
    assert result.complete
    for name in ("heatmap_split0.png", "heatmap_split1.png", "heatmap_overview.png"):
        assert max(iio.imread(tmp_path / name).shape[:2]) >= 512
