"""flimexplore score: given pairs are trained and scored exactly as a study does (issue 8 §4)."""

import numpy as np
import pytest

from flimexplore.cli import main
from flimexplore.data import write_seeds
from flimexplore.errors import MarkerError
from flimexplore.markers import MarkerPixels, MarkerSet, ObjectMarkerSet, disk_offsets
from flimexplore.study.run import run_study_all
from flimexplore.study.score import group_pairs, read_pairs, score_pairs_all


@pytest.fixture(scope="module")
def finished(tmp_path_factory, small_config, small_context):
    out = tmp_path_factory.mktemp("study")
    run_study_all(small_config, out, context=small_context)
    return out


def test_scoring_a_studys_pairs_reproduces_its_results_exactly(tmp_path, finished, small_config, small_context):
    res = score_pairs_all(small_config, finished / "results.csv", tmp_path, context=small_context)
    assert (tmp_path / "results.csv").read_bytes() == (finished / "results.csv").read_bytes()
    assert isinstance(res.markers[0], MarkerSet) and len(res.markers) == small_config.splits
    assert (tmp_path / "heatmap_split0.png").exists()


def test_pairs_file_without_header_and_split_rule(tmp_path, small_context):
    mask = small_context.mask
    obj = np.argwhere(mask)[len(np.argwhere(mask)) // 2]
    bg = [p for p in np.argwhere(~mask) if 4 <= p[0] < 120 and 4 <= p[1] < 120][:3]
    lines = [f"{obj[0]},{obj[1]},{b[0]},{b[1]}" for b in bg]
    f = tmp_path / "pairs.csv"
    f.write_text("# my pairs\n" + "\n".join(lines) + "\n")
    pairs = read_pairs(f)
    assert pairs.lines.tolist() == [2, 3, 4]
    sets = group_pairs(pairs, 3)
    assert len(sets) == 1 and len(sets[0]) == 3  # one object marker: one split
    objs = group_pairs(pairs, 3, "object")
    assert len(objs) == 3 and all(isinstance(s, ObjectMarkerSet) for s in objs)  # three background markers


def _one_line_error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("flimexplore: error:") and "\n" not in err
    return err


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("1,2,3\n", "line 1"),
        ("obj_row,obj_col,bg_row,bg_col\n60,60,x,4\n", "line 2"),
        ("a,b,c,d\n1,2,3,4\n", "does not name the columns"),
        ("", "no marker pairs"),
    ],
)
def test_malformed_pairs_files_name_file_and_line(tmp_path, capsys, text, needle):
    f = tmp_path / "p.csv"
    f.write_text(text)
    err = _one_line_error(capsys, ["score", "--pairs", str(f), "--n-images", "12", "--out", str(tmp_path / "o")])
    assert str(f) in err and needle in err


def test_pairs_that_do_not_fit_the_marked_image(tmp_path, capsys, small_config, small_context):
    mask = small_context.mask
    inside = np.argwhere(mask)[0]
    outside = next(p for p in np.argwhere(~mask) if 10 <= p[0] < 110 and 10 <= p[1] < 110)
    base = ["--n-images", "16", "--seed", str(small_config.seed), "--epochs", "2", "--out", str(tmp_path / "o")]
    cases = [
        (f"{inside[0]},{inside[1]},{outside[0]},{outside[1]}\n{outside[0]},{outside[1]},{outside[0]},{outside[1]}\n",
         "line 2: object marker", "lies on the background"),
        (f"{inside[0]},{inside[1]},500,3\n", "line 1: background marker (500, 3)", "outside"),
        (f"{inside[0]},{inside[1]},1,{outside[1]}\n", "line 1: background marker", "reaches outside"),
    ]
    for text, where, what in cases:
        f = tmp_path / "p.csv"
        f.write_text(text)
        err = _one_line_error(capsys, ["score", "--pairs", str(f), *base])
        assert where in err and what in err, err
    assert not (tmp_path / "o" / "results.csv").exists()


def test_seeds_file_is_scored_as_drawn(tmp_path, small_config, small_context):
    mask = small_context.mask
    ys, xs = np.nonzero(mask)
    c = np.array([int(np.median(ys)), int(np.median(xs))])
    obj = np.array([p for p in np.argwhere(mask) if abs(p[0] - c[0]) <= 1 and abs(p[1] - c[1]) <= 4])  # a stroke
    bg = disk_offsets(2) + next(p for p in np.argwhere(~mask) if p[0] > 10 and p[1] > 10)
    markers = np.vstack([np.column_stack([obj, np.ones(len(obj), int)]), np.column_stack([bg, np.zeros(len(bg), int)])])
    f = tmp_path / "img-seeds.txt"
    write_seeds(f, markers, mask.shape)
    pairs = read_pairs(f)
    assert pairs.pixels is not None and len(pairs.pixels[0]) == len(obj)
    assert isinstance(group_pairs(pairs, 3)[0], MarkerPixels)
    res = score_pairs_all(small_config.replace(epochs=2), f, context=small_context)
    assert len(res.rows) == 1 and 0.0 <= res.rows[0]["val_dice"] <= 1.0
    two = np.vstack([markers, [[2, 2, 0]]])  # a second background component: scored whole (it used to be refused)
    write_seeds(f, two, mask.shape)
    pairs = read_pairs(f)
    assert len(pairs.pixels[1]) == len(bg) + 1
    res2 = score_pairs_all(small_config.replace(epochs=2), f, context=small_context)
    assert len(res2.rows) == 1 and res2.rows[0]["val_dice"] != res.rows[0]["val_dice"]
    write_seeds(f, markers[markers[:, 2] == 1], mask.shape)  # no background pixel at all
    with pytest.raises(MarkerError, match="no background marker pixels"):
        read_pairs(f)
