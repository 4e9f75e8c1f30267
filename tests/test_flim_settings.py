"""FLIM settings (issue 10): every option works in the batched and the reference path alike."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from flimexplore.engine.arch import arch_to_settings, read_arch, settings_to_arch
from flimexplore.engine.flim import encode, encode_layers, learn_banks
from flimexplore.engine.settings import FlimSettings
from flimexplore.errors import ConfigError
from flimexplore.markers import disk_offsets
from flimexplore.study.config import StudyConfig
from flimexplore.study.context import StudyContext
from flimexplore.study.run import plan_markers

TINY = StudyConfig(dataset="fish", n_images=10, splits=1, n_bg=2, epochs=3, seed=2, radius=3)

OPTIONS = {
    "kernel5": dict(kernel_size=5),
    "fewer_kernels": dict(kernels_per_marker=3, channels=16),
    "consensus_kmeans": dict(kernels_per_marker=8, channels=6),
    "consensus_pca": dict(kernels_per_marker=8, channels=6, consensus="pca"),
    "max_pool": dict(pool="max"),
    "pool5_stride3": dict(pool_size=5, pool_stride=3),
    "two_layers": dict(layers=2),
    "three_layers_read_2": dict(layers=3, decision_layer=2),
    "kmeanspp_drop": dict(clustering="kmeans++", restarts=3, min_cluster_fraction=0.05),
}


def _pixels(centres, radius=2):
    offs = torch.as_tensor(disk_offsets(radius))
    return torch.stack([offs + torch.tensor(c) for c in centres])


@pytest.fixture(scope="module")
def tiny_contexts():
    """Contexts of the fish preset at half resolution (64x64), one per option, sharing the data."""
    from flimexplore.data import load_dataset

    ds = load_dataset("fish", n_images=10)
    half = dataclasses.replace(
        ds,
        images=tuple(np.ascontiguousarray(im[::2, ::2]) for im in ds.images),
        masks=tuple(np.ascontiguousarray(m[::2, ::2]) for m in ds.masks),
    )
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = StudyContext(TINY.replace(**OPTIONS[name]), device="cpu", dataset=half)
        return cache[name]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_batched_equals_reference_for_every_option(tiny_contexts, name):
    ctx = tiny_contexts(name)
    ms = plan_markers(ctx)[0]
    obj, bg, seeds = np.stack([ms.obj, ms.obj]), ms.bg[:2], [11, 12]
    batched = ctx.evaluate(obj, bg, seeds)
    reference = ctx.evaluate_reference(obj[1:], bg[1:], seeds[1:])  # the second model of the batch
    # the project's agreement bound (benchmarks/sweep.py): Dice within 1e-3, same best epoch
    np.testing.assert_allclose(batched.arrays["val_dice_curve"][1:], reference.arrays["val_dice_curve"], atol=1e-3)
    np.testing.assert_array_equal(batched.best_epoch[1:], reference.best_epoch)
    np.testing.assert_allclose(batched.test["dice"][1:], reference.test["dice"], atol=1e-3)
    s = ctx.config.flim()
    assert batched.arrays["kernels"].shape[1:] == (s.n_kernels, 3, s.kernel_size, s.kernel_size)
    assert ("kernels2" in batched.arrays) == (s.layers >= 2)
    # a stored model predicts what it was scored with
    model = {k: v[0] for k, v in batched.arrays.items()}
    from flimexplore.engine.scores import dice

    per_image = [dice(ctx.predict(model, ctx.dataset.images[i]), ctx.dataset.masks[i]) for i in ctx.split.val]
    assert np.mean(per_image) == pytest.approx(batched.val["dice"][0], abs=1e-4)


def test_settings_change_the_model(tiny_contexts):
    ms = plan_markers(tiny_contexts("two_layers"))[0]
    curves = {
        n: tiny_contexts(n).evaluate(ms.obj[None], ms.bg[:1], [3]).arrays["val_dice_curve"][0]
        for n in ("two_layers", "max_pool", "kernel5")
    }
    assert len({tuple(np.round(c, 6)) for c in curves.values()}) == 3


@pytest.mark.parametrize(
    "settings",
    [FlimSettings(layers=3), FlimSettings(clustering="kmeans++", restarts=4, min_cluster_fraction=0.05),
     FlimSettings(kernels_per_marker=8, channels=5, consensus="pca")],
    ids=["layers3", "kmeanspp", "pca"],
)
def test_one_model_or_many_gives_the_same_kernels(settings):
    torch.manual_seed(3)
    image = torch.rand(3, 24, 24)
    obj, bg = _pixels([(12, 12), (11, 12), (12, 11)]), _pixels([(4, 4), (19, 19), (4, 19)])
    many = learn_banks(image, obj, bg, settings)
    one = learn_banks(image, obj[1:2], bg[1:2], settings)
    for a, b in zip(many.layers, one.layers, strict=True):
        assert torch.equal(a.kernels[1], b.kernels[0])
        assert torch.equal(a.mean[1], b.mean[0])


def test_layered_encoding_equals_the_banded_paper_block():
    torch.manual_seed(2)
    image = torch.rand(3, 20, 18)
    bank = learn_banks(image, _pixels([(10, 10)] * 2), _pixels([(4, 4), (15, 13)]))
    images = torch.rand(2, 3, 20, 17)
    torch.testing.assert_close(encode(images, bank), encode_layers(images, bank), atol=1e-5, rtol=1e-5)


def test_multilayer_shapes_and_stride_one_training():
    torch.manual_seed(5)
    image = torch.rand(3, 30, 30)
    s = FlimSettings(layers=3, pool_stride=2, kernels_per_marker=4, channels=8)
    bank = learn_banks(image, _pixels([(15, 15)]), _pixels([(5, 5)]), s)
    assert [tuple(layer.kernels.shape[1:3]) for layer in bank.layers] == [(8, 3), (8, 8), (8, 8)]
    assert encode(torch.rand(1, 3, 30, 30), bank).shape == (1, 1, 8, 4, 4)  # 30 -> 15 -> 8 -> 4
    two = FlimSettings(layers=3, decision_layer=1, kernels_per_marker=4, channels=8)
    assert encode(torch.rand(1, 3, 30, 30), learn_banks(image, _pixels([(15, 15)]), _pixels([(5, 5)]), two)).shape[-1] == 15


def test_dropped_clusters_become_zero_kernels():
    # a flat marker: all patches identical, so one cluster holds everything
    image = torch.zeros(3, 20, 20)
    image[:, 10:] = torch.rand(3, 10, 20)
    s = FlimSettings(clustering="kmeans++", restarts=2, min_cluster_fraction=0.05)
    bank = learn_banks(image, _pixels([(4, 10)]), _pixels([(15, 10)]), s)
    norms = bank.kernels[0, :8].flatten(1).norm(dim=1)
    assert (norms > 0.99).sum() == 1 and (norms == 0).sum() == 7
    assert torch.allclose(bank.kernels[0, 8:].flatten(1).norm(dim=1), torch.ones(8))


def test_arch_round_trip_and_refusals(tmp_path):
    s = FlimSettings(kernel_size=5, kernels_per_marker=4, channels=8, pool="max", pool_size=5, pool_stride=3,
                     layers=2, decision_layer=1, consensus="pca")
    assert arch_to_settings(settings_to_arch(s)) == s
    path = tmp_path / "arch.json"
    arch = settings_to_arch(FlimSettings(layers=2))
    del arch["flimexplore"]
    path.write_text(json.dumps(arch))
    assert read_arch(path) == FlimSettings(layers=2)
    for change, message in [
        (lambda a: a["layer1"]["conv"].update(dilation_rate=[2, 2, 0]), "dilation_rate"),
        (lambda a: a["layer1"]["conv"].update(kernel_size=[3, 3, 3]), "3-D"),
        (lambda a: a.update(apply_intrinsic_atrous=True), "apply_intrinsic_atrous"),
        (lambda a: a["layer1"]["conv"].update(nkernels_per_image=4), "nkernels_per_image"),
        (lambda a: a["layer2"]["conv"].update(noutput_channels=32), "layer2 differs"),
        (lambda a: a.update(nlayers=4), "nlayers"),
    ]:
        bad = settings_to_arch(FlimSettings(layers=2))
        change(bad)
        path.write_text(json.dumps(bad))
        with pytest.raises(ConfigError, match=message):
            read_arch(path)
    no_pool = settings_to_arch(FlimSettings())
    no_pool["layer1"]["pooling"] = {"type": "no_pool"}
    assert (arch_to_settings(no_pool).pool_size, arch_to_settings(no_pool).pool_stride) == (1, 1)


def test_cli_flags_and_arch(tmp_path):
    from flimexplore.cli._common import CliParser, add_study_arguments, config_from_args

    p = CliParser()
    add_study_arguments(p)
    assert config_from_args(p.parse_args([])).flim() == FlimSettings()
    cfg = config_from_args(p.parse_args("--kernel-size 5 --pool max --layers 2 --decision-layer 1".split()))
    assert (cfg.kernel_size, cfg.pool, cfg.layers, cfg.decision_layer) == (5, "max", 2, 1)
    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps(settings_to_arch(FlimSettings(layers=3, channels=12, kernels_per_marker=6))))
    cfg = config_from_args(p.parse_args(["--arch", str(arch), "--layers", "2"]))
    assert (cfg.layers, cfg.channels, cfg.kernels_per_marker) == (2, 12, 6)  # flags override the file
    with pytest.raises(ConfigError, match="decision_layer"):
        config_from_args(p.parse_args("--layers 2 --decision-layer 3".split()))


def test_study_config_holds_every_flim_setting_with_the_same_defaults():
    from dataclasses import fields

    from flimexplore.engine.settings import FIELDS

    assert set(FIELDS) <= {f.name for f in fields(StudyConfig)}
    assert StudyConfig().flim() == FlimSettings()
    changed = FlimSettings(kernel_size=5, layers=2, pool="max", clustering="kmeans++", restarts=4)
    assert StudyConfig().with_flim(changed).flim() == changed
