"""The CUDA path of the engine, checked on the CPU: batched encoding, precision options, GPU chunking."""

import pytest
import torch

from flimexplore.engine import precision
from flimexplore.engine.batched import _image_chunk
from flimexplore.engine.encoding import _encode_cuda
from flimexplore.engine.flim import FlimBank, encode
from flimexplore.errors import ConfigError
from flimexplore.study.config import StudyConfig


def bank(b: int, c: int = 3, seed: int = 0) -> FlimBank:
    g = torch.Generator().manual_seed(seed)
    kernels = torch.randn(b, 16, c, 3, 3, generator=g)
    kernels /= kernels.flatten(2).norm(dim=2)[..., None, None, None]
    mean, std = torch.randn(b, c, generator=g), torch.rand(b, c, generator=g) + 0.3
    return FlimBank(kernels, mean, std, torch.zeros(b, 16, dtype=torch.int64))


@pytest.mark.parametrize("shape", [(9, 14), (16, 16), (5, 7)])
def test_batched_encoding_equals_the_cpu_band_encoding(shape):
    images = torch.randn(3, 3, *shape, generator=torch.Generator().manual_seed(1))
    bk = bank(4)
    ours, cpu = _encode_cuda(images, bk), encode(images, bk)
    assert ours.shape == cpu.shape == (3, 4, 16, (shape[0] + 1) // 2, (shape[1] + 1) // 2)
    assert ours.permute(0, 3, 4, 1, 2).is_contiguous()  # the same channels-last layout as encode
    torch.testing.assert_close(ours, cpu, atol=2e-5, rtol=1e-5)


def test_bf16_convolution_changes_features_a_little():
    images = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(2))
    bk = bank(2)
    exact = _encode_cuda(images, bk)
    token = precision._current.set("bf16")  # what precision_scope("bf16", "cuda") sets
    try:
        low = _encode_cuda(images, bk)
    finally:
        precision._current.reset(token)
    assert low.dtype == torch.float32
    err = (low - exact).abs().max().item()
    assert 0 < err < 0.05 * exact.abs().max().item()


def test_precision_is_checked():
    assert precision.check_precision("fp32", "cpu") == "fp32"
    assert precision.check_precision("bf16", torch.device("cuda")) == "bf16"  # checking needs no GPU
    with pytest.raises(ConfigError, match="--precision tf32 is for CUDA only"):
        precision.check_precision("tf32", "cpu")
    with pytest.raises(ConfigError, match="must be one of fp32, tf32, bf16"):
        precision.check_precision("fp16", "cpu")
    with precision.precision_scope("fp32", "cpu"):
        assert precision.current_precision() == "fp32"


def test_run_study_refuses_bf16_on_the_cpu_before_any_work(tmp_path):
    from flimexplore.study.run import run_study_all

    with pytest.raises(ConfigError, match="CUDA only"):
        run_study_all(StudyConfig(n_images=6, splits=1, n_bg=1, epochs=1), tmp_path / "s", device="cpu", precision="bf16")
    assert not (tmp_path / "s" / "results.csv").exists()


def test_gpu_scores_several_images_per_call():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert _image_chunk(32, (400, 400), cuda) == 3  # 1 GiB of full-resolution convolution output
    assert _image_chunk(32, (128, 128), cuda) == 32
    assert _image_chunk(32, (400, 400), cpu) == 1  # the CPU keeps one image's features in cache


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_encoding_matches_cpu():
    images = torch.rand(4, 3, 40, 40)
    bk = bank(8)
    gpu = encode(images.cuda(), FlimBank(*(t.cuda() for t in (bk.kernels, bk.mean, bk.std, bk.kernel_labels))))
    torch.testing.assert_close(gpu.cpu(), encode(images, bk), atol=1e-4, rtol=1e-4)
