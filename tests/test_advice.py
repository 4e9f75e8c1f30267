"""Marker advice: held out data stays held out, the study's object markers, the files it writes."""

import csv
import dataclasses
import json

import numpy as np
import pytest

from flimexplore.analysis.advice import AdviceSettings, advise, default_weights, fit_weights, score_positions
from flimexplore.cli import main
from flimexplore.data import load_dataset, split_dataset
from flimexplore.errors import ConfigError, MarkerError

N_IMAGES = 10


@pytest.fixture(scope="module")
def eggs():
    return load_dataset("eggs", n_images=N_IMAGES)


def _marked(ds, image=0, seed=0):
    return split_dataset(len(ds), seed=seed).marked[image]


def _training(ds, seed=0):
    """Indices of the split's marked (training) images: the only masks advice may read."""
    return set(split_dataset(len(ds), seed=seed).marked)


def _held_out_inverted(ds):
    keep = _training(ds)
    return dataclasses.replace(ds, masks=tuple(m if i in keep else ~m for i, m in enumerate(ds.masks)))


def _same_advice(a, b):
    assert np.array_equal(a.centres, b.centres) and np.array_equal(a.scores, b.scores)
    for k in a.descriptors:
        assert np.array_equal(a.descriptors[k], b.descriptors[k], equal_nan=True), k
    assert a.reliability == b.reliability


@pytest.mark.parametrize("probe_on", ["training", "marked"])
def test_advice_and_its_reliability_are_bit_identical_when_every_held_out_mask_changes(eggs, probe_on):
    settings = AdviceSettings(dataset="eggs", split=1, n_images=N_IMAGES, probe=6, epochs=2, probe_on=probe_on)
    a = advise(settings, data=eggs)
    assert a.reliability is not None and 0.0 <= a.reliability["position_share"] <= 1.0
    _same_advice(a, advise(settings, data=_held_out_inverted(eggs)))
    # and the training masks the probe reads do matter (the test could fail)
    changed = _marked(eggs) if probe_on == "marked" else sorted(_training(eggs) - {_marked(eggs)})[0]
    own = tuple(np.roll(m, 5, axis=1) if i == changed else m for i, m in enumerate(eggs.masks))
    c = advise(settings, data=dataclasses.replace(eggs, masks=own))
    same = len(a.centres) == len(c.centres) and np.array_equal(a.centres, c.centres) and np.array_equal(a.scores, c.scores)
    assert not same


class _Guard(tuple):
    """Masks whose held-out entries raise when read."""

    def __new__(cls, masks, allowed):
        obj = super().__new__(cls, masks)
        obj.allowed = set(allowed) if isinstance(allowed, set | list | tuple) else {allowed}
        return obj

    def __getitem__(self, i):
        if isinstance(i, slice) or i not in self.allowed:
            raise AssertionError(f"advice read held-out mask {i!r}")
        return super().__getitem__(i)

    def __iter__(self):
        raise AssertionError("advice iterated over every mask")


def test_advice_runs_when_held_out_masks_are_unreadable(eggs):
    guarded = dataclasses.replace(eggs)
    object.__setattr__(guarded, "masks", _Guard(eggs.masks, _training(eggs)))
    held_out = next(i for i in range(N_IMAGES) if i not in _training(eggs))
    with pytest.raises(AssertionError):  # the guard works
        guarded.masks[held_out]
    adv = advise(AdviceSettings(dataset="eggs", image=1, split=0, n_images=N_IMAGES, probe=4, epochs=2), data=guarded)
    assert len(adv.centres) > 100 and adv.reliability["probe_images"]
    # probe_on="marked" reads the marked image's mask alone
    object.__setattr__(guarded, "masks", _Guard(eggs.masks, _marked(eggs, image=1)))
    adv = advise(AdviceSettings(dataset="eggs", image=1, split=0, n_images=N_IMAGES, probe=4, epochs=2, probe_on="marked"),
                 data=guarded)
    assert adv.reliability["probe_images"] == [eggs.stems[_marked(eggs, image=1)]]


def test_split_gives_the_studys_object_marker(eggs):
    from flimexplore.study.config import StudyConfig
    from flimexplore.study.context import StudyContext
    from flimexplore.study.run import plan_markers

    ctx = StudyContext(StudyConfig(dataset="eggs", n_images=N_IMAGES, image=2, splits=3, n_bg=4, seed=5), "cpu", dataset=eggs)
    markers = plan_markers(ctx)
    for s in range(3):
        adv = advise(AdviceSettings(dataset="eggs", image=2, split=s, seed=5, n_images=N_IMAGES, probe=0), data=eggs)
        assert adv.obj.tolist() == markers[s].obj.tolist()
        # candidates are exactly the dense grid of that object marker, best first
        dense = plan_markers(ctx.__class__(ctx.config.replace(dense=True), "cpu", dataset=eggs))[s].bg
        assert sorted(map(tuple, adv.centres.tolist())) == sorted(map(tuple, dense.tolist()))
    assert (np.diff(adv.scores) <= 0).all()


def test_scores_are_weighted_rank_percentiles():
    desc = {"bg_std": np.array([0.1, 0.3, 0.2]), "colour_distance": np.array([5.0, 1.0, 3.0])}
    s = score_positions(desc, {"bg_std": 1.0, "colour_distance": -1.0})
    # bg_std pct [0, 1, .5]; colour pct [1, 0, .5] with weight -1 -> (pct - cpct) / 2
    assert s.tolist() == pytest.approx([-0.5, 0.5, 0.0])
    with pytest.raises(ConfigError, match="unknown descriptors"):
        score_positions(desc, {"nope": 1.0})
    with pytest.raises(ConfigError, match="every advice weight is 0"):
        score_positions(desc, {"bg_std": 0.0})


def test_fit_weights_is_the_mean_spearman_rho():
    x = np.arange(5.0)
    cases = [({"bg_std": x, "bg_gradient": -x, "bg_entropy": np.array([1, 0, 1, 0, 1.0])}, x * 2)] * 2
    w = fit_weights(cases)
    assert w["bg_std"] == 1.0 and w["bg_gradient"] == -1.0 and w["bg_entropy"] == 0.0
    assert "bg_context" not in w  # descriptors not given are left out
    assert all(isinstance(v, float) for v in default_weights().values())


def test_object_and_split_are_exclusive_and_checked(eggs):
    with pytest.raises(ConfigError, match="exactly one"):
        advise(AdviceSettings(dataset="eggs", split=0, obj=(10, 10), n_images=N_IMAGES, probe=0), data=eggs)
    mask = eggs.masks[_marked(eggs)]
    r, c = np.argwhere(~mask)[0]
    with pytest.raises(MarkerError, match="lies on the background"):
        advise(dataset="eggs", obj=(int(r), int(c)), n_images=N_IMAGES, probe=0)
    r, c = np.argwhere(mask)[len(np.argwhere(mask)) // 2]
    adv = advise(dataset="eggs", obj=(int(r), int(c)), n_images=N_IMAGES, probe=0)
    assert adv.obj.tolist() == [r, c]


def test_cli_writes_csv_json_png(tmp_path, capsys):
    out = tmp_path / "adv"
    assert main(["advise", "--dataset", "eggs", "--n-images", str(N_IMAGES), "--split", "2", "--top", "3", "--probe", "4", "--epochs", "2", "--out", str(out)]) == 0
    assert "positions ranked" in capsys.readouterr().out
    rows = list(csv.DictReader(open(out / "advice.csv")))
    assert list(rows[0]) == ["rank", "bg_row", "bg_col", "score"]
    assert [int(r["rank"]) for r in rows[:3]] == [1, 2, 3]
    assert float(rows[0]["score"]) >= float(rows[-1]["score"])
    info = json.loads((out / "advice.json").read_text())
    assert {"image_stem", "obj_row", "obj_col", "radius", "seconds", "settings", "weights"} <= set(info)
    assert info["settings"]["split"] == 2 and info["n_candidates"] == len(rows)
    png = (out / "advice.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_cli_object_on_a_folder_dataset(tmp_path):
    import imageio.v3 as iio

    ds = load_dataset("fish", n_images=8)
    (tmp_path / "d" / "images").mkdir(parents=True)
    (tmp_path / "d" / "masks").mkdir()
    for stem, im, m in zip(ds.stems, ds.images, ds.masks, strict=True):
        iio.imwrite(tmp_path / "d" / "images" / f"{stem}.png", (im * 255).astype("uint8"))
        iio.imwrite(tmp_path / "d" / "masks" / f"{stem}.png", m.astype("uint8") * 255)
    mask = ds.masks[_marked(ds)]
    r, c = np.argwhere(mask)[len(np.argwhere(mask)) // 2]
    out = tmp_path / "o"
    assert main(["advise", "--dataset", str(tmp_path / "d"), "--object", f"{r},{c}", "--probe", "0", "--out", str(out)]) == 0
    info = json.loads((out / "advice.json").read_text())
    assert [info["obj_row"], info["obj_col"]] == [r, c]


def test_cli_bad_object_is_one_line(capsys, tmp_path):
    assert main(["advise", "--object", "0,0", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("flimexplore: error:") and "background" in err


def test_probe_fits_a_two_colour_image_perfectly_and_is_deterministic():
    from flimexplore.analysis.probe import marked_fit

    rng = np.random.default_rng(0)
    img = np.zeros((32, 32, 3), np.float32)
    img[..., 2] = 0.8
    mask = np.zeros((32, 32), bool)
    mask[8:24, 8:24] = True
    img[mask] = [0.9, 0.1, 0.1]
    img += rng.normal(0, 0.02, img.shape).astype(np.float32)
    img = np.clip(img, 0, 1)
    bgs = np.array([[4, 4], [28, 28], [4, 28]])
    fit = marked_fit(img, mask, (16, 16), bgs, 2, [1, 2, 3], epochs=10)
    assert fit.shape == (3,) and (fit > 0.95).all(), fit
    assert np.array_equal(fit, marked_fit(img, mask, (16, 16), bgs, 2, [1, 2, 3], epochs=10))


def test_probe_reranks_the_probed_candidates_above_the_rest(eggs):
    adv = advise(AdviceSettings(dataset="eggs", split=0, n_images=N_IMAGES, probe=6, epochs=3), data=eggs)
    fit = adv.descriptors["marked_fit"]
    assert np.isfinite(fit[:6]).all() and np.isnan(fit[6:]).all()  # the probed six rank first
    assert (np.diff(fit[:6]) <= 1e-6).all()  # ordered by their mean probe Dice
    assert adv.scores[5] >= 1.5 > 1.0 >= adv.scores[6]


def test_probed_candidates_are_half_the_best_and_half_spread_over_the_image():
    from flimexplore.analysis.advice import _probed

    rr, cc = np.mgrid[0:50:5, 0:50:5]
    centres = np.stack([rr.ravel(), cc.ravel()], 1)
    score = -centres[:, 0] - 0.01 * centres[:, 1]  # the best are all in the top row
    picked = _probed(centres, score, 10)
    assert len(set(picked.tolist())) == 10
    assert sorted(picked[:5].tolist()) == list(range(5))  # half the best
    assert centres[picked[5:], 0].max() >= 40  # the other half reaches the far side of the image


def test_probe_scores_are_the_mean_over_seeds_on_the_other_training_images(eggs):
    from flimexplore.analysis.probe import probe_scores, train_step

    adv = advise(AdviceSettings(dataset="eggs", split=0, n_images=N_IMAGES, probe=4, epochs=2, heads=3), data=eggs)
    idx = _marked(eggs)
    others = sorted(_training(eggs) - {idx}, key=split_dataset(N_IMAGES, seed=0).marked.index)
    assert adv.reliability["probe_images"] == [eggs.stems[j] for j in others]
    best = adv.centres[:2]
    seeds = [[int(np.random.SeedSequence([0, 0, int(adv.obj[0]), int(adv.obj[1]), int(r), int(c), h]).generate_state(1)[0])
              for h in range(3)] for r, c in best]
    table = probe_scores([eggs.images[j] for j in (idx, *others)], [eggs.masks[j] for j in (idx, *others)], 0,
                         adv.obj, best, adv.radius, seeds, epochs=2, pixel_step=train_step(eggs.masks[idx].shape))
    assert table.shape == (2, 3, 3)
    np.testing.assert_allclose(adv.descriptors["marked_fit"][:2], table[:, :, 1:].mean(axis=(1, 2)), atol=1e-12)


def test_reliability_abstains_where_position_cannot_matter():
    """A uniform background: every background marker sees the same pixels, so no position can be better."""
    from flimexplore.data import Dataset

    rng = np.random.default_rng(3)
    images, masks = [], []
    for k in range(10):
        img = np.full((64, 64, 3), 0.3, np.float32)
        img += rng.normal(0, 0.01, img.shape).astype(np.float32)
        mask = np.zeros((64, 64), bool)
        r, c = 18 + 3 * (k % 4), 20 + 2 * (k % 5)
        mask[r : r + 20, c : c + 20] = True
        img[mask] = [0.8, 0.7, 0.1]
        images.append(np.clip(img, 0, 1))
        masks.append(mask)
    data = Dataset(name="uniform", images=tuple(images), masks=tuple(masks), stems=tuple(f"u{k}" for k in range(10)),
                   description="synthetic: a square on a uniform field", origin="test", radius=2, n_bg=8, n_superpixels=10)
    adv = advise(AdviceSettings(dataset="uniform", split=0, probe=24, epochs=10, spacing=6), data=data)
    assert adv.abstains and adv.reliability["reason"] in ("noise", "flat"), adv.reliability
    assert adv.reliability["line"].startswith("advice abstains:")
    assert adv.summary()["abstain"] is True


def test_advice_figure_rings_the_top_positions_and_marks_the_object():
    from matplotlib.patches import Circle

    from flimexplore.figures.advice_png import advice_figure

    img = np.zeros((20, 30, 3))
    score = np.full((20, 30), np.nan)
    score[:, 15:] = np.linspace(0, 1, 15)[None]
    fig = advice_figure(img, score, np.array([[5, 25], [10, 20]]), np.array([10, 5]), 2, title="t")
    ax = fig.axes[0]
    circles = [p for p in ax.patches if isinstance(p, Circle)]
    assert len(circles) == 2 * 2 + 1  # two outlined rings per position, one object disk
    assert [t.get_text() for t in ax.texts] == ["1", "2"]
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"top 2 background positions", "object marker"}
    assert ax.get_title() == "t" and len(fig.axes) == 2  # image + colour bar
    shown = ax.images[1].get_array()
    assert shown.mask[:, :15].all() and not shown.mask[:, 15:].any()  # NaN (no candidate) is transparent


# -- advise --vary object: object positions for a fixed background marker ------------------------------------------


def _object_advice(data, **changes):
    settings = AdviceSettings(dataset="eggs", split=1, n_images=N_IMAGES, epochs=2, target="object", spacing=6)
    return advise(dataclasses.replace(settings, **changes), data=data)


def test_object_advice_fixes_the_vary_object_studys_background_and_ranks_inside_the_object(eggs):
    from flimexplore.study.config import StudyConfig
    from flimexplore.study.context import StudyContext
    from flimexplore.study.run import plan_markers

    adv = _object_advice(eggs)
    cfg = StudyConfig(dataset="eggs", n_images=N_IMAGES, splits=2, n_bg=1, vary="object", epochs=2)
    planned = plan_markers(StudyContext(cfg, device="cpu", dataset=eggs))[1]
    assert tuple(adv.obj) == tuple(planned.background)
    mask = eggs.masks[_marked(eggs)]
    assert len(adv.centres) > 3 and mask[adv.centres[:, 0], adv.centres[:, 1]].all()
    assert np.all(np.diff(adv.scores) <= 0)  # best first
    assert adv.table()[0].keys() == {"rank", "obj_row", "obj_col", "score"}
    assert adv.summary()["bg_row"] == int(planned.background[0]) and adv.summary()["target"] == "object"


def test_object_advice_scores_are_the_probe_of_each_object_position(eggs):
    from flimexplore.analysis.probe import probe_scores, train_step

    adv = _object_advice(eggs)
    idx = _marked(eggs)
    others = [j for j in split_dataset(N_IMAGES, seed=0).marked if j != idx]
    best = adv.centres[:2]
    seeds = [[int(np.random.SeedSequence([0, 0, int(r), int(c), int(adv.obj[0]), int(adv.obj[1]), h]).generate_state(1)[0])
              for h in range(5)] for r, c in best]
    table = probe_scores([eggs.images[j] for j in (idx, *others)], [eggs.masks[j] for j in (idx, *others)], 0,
                         best, adv.obj, adv.radius, seeds, epochs=2, pixel_step=train_step(eggs.masks[idx].shape))
    np.testing.assert_allclose(adv.descriptors["marked_fit"][:2], table[:, :, 1:].mean(axis=(1, 2)), atol=1e-12)
    probed = np.isfinite(adv.descriptors["marked_fit"])
    n = adv.summary()["reliability"]["n_probed"]
    assert probed[:n].all() and not probed[n:].any()  # the probed positions rank first, the others follow them
    assert adv.reliability is not None and 2 <= n <= len(adv.centres)


def test_object_advice_never_reads_held_out_masks(eggs):
    a = _object_advice(eggs)
    b = _object_advice(_held_out_inverted(eggs))
    _same_advice(a, b)
    guarded = dataclasses.replace(eggs)
    object.__setattr__(guarded, "masks", _Guard(eggs.masks, _training(eggs)))  # held-out masks raise when read
    c = _object_advice(guarded)
    assert np.array_equal(a.centres, c.centres)


def test_cli_for_object_writes_obj_columns_and_refuses_mixed_markers(tmp_path, capsys):
    out = tmp_path / "adv"
    assert main(["advise", "--dataset", "eggs", "--n-images", str(N_IMAGES), "--vary", "object", "--split", "0",
                 "--spacing", "8", "--epochs", "2", "--out", str(out)]) == 0
    with open(out / "advice.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["rank", "obj_row", "obj_col", "score"] and rows[0]["rank"] == "1"
    assert json.loads((out / "advice.json").read_text())["target"] == "object"
    assert (out / "advice.png").stat().st_size > 10_000
    assert main(["advise", "--dataset", "eggs", "--for", "object", "--object", "60,60", "--out", str(out)]) == 2
    assert "--background ROW,COL" in capsys.readouterr().err
