"""Carry a learned model out of flimexplore: a LIDS model folder and a PyTorch file.

:func:`export_model` reads model ``N`` of a study folder (``config.json`` and
``models/*.npz``) and writes into ``DEST``:

LIDS model folder (libift / pyflim, FIELD_NOTES §1.8)
    ``arch.json``
        The layer settings (the format ``--arch`` reads), with the actual
        number of kernels of each layer as ``noutput_channels`` and a
        ``"flimexplore"`` object for what libift has no key for.
    ``convN-kernels.npy``
        float32 matrix ``[k*k*C_in, n_kernels]`` per layer, rows in libift
        order: adjacency-major (the centre offset first, then the other
        offsets in raster order, rows outer, columns inner), channels
        innermost: row ``a * C_in + c`` holds channel ``c`` at offset ``a``.
    ``convN-mean.txt``, ``convN-stdev.txt``
        Marker-based normalisation of the layer's input, one value per input
        channel, space-separated; the stdev includes ``stdev_factor`` (as
        libift stores it).  No bias file: kernels act on the normalised input
        with zero padding.
    ``decision.json``
        flimexplore's decision layer (not a LIDS file): which layer it reads
        and its batch-norm and 1x1 convolution parameters.

PyTorch file ``model.pt``
    ``{"state_dict": ..., "settings": FlimSettings dict, "format": 1}``;
    :func:`load_torch` rebuilds the :class:`FlimNet` module.  Its input is
    the image in flimexplore's normalised Lab (:func:`to_input` converts RGB
    in [0, 1]); ``forward`` returns the object-minus-background logit gap
    at image size and ``predict`` the object mask, the same mask as
    :meth:`flimexplore.study.context.StudyContext.predict`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from flimexplore.engine.arch import read_arch, write_arch
from flimexplore.engine.colour import lab_norm
from flimexplore.engine.decision import BN_EPS
from flimexplore.engine.settings import FlimSettings
from flimexplore.errors import OutputError
from flimexplore.study.config import StudyConfig

__all__ = [
    "FlimNet",
    "build_net",
    "export_model",
    "from_libift_rows",
    "libift_offsets",
    "load_torch",
    "read_lids",
    "read_study_model",
    "to_input",
    "to_libift_rows",
    "write_lids",
    "write_torch",
]


# -- libift kernel row order ---------------------------------------------------------------------


def libift_offsets(k: int) -> list[tuple[int, int]]:
    """Window offsets ``(dy, dx)`` in libift order: the centre, then raster order without it."""
    h = k // 2
    return [(0, 0)] + [(dy, dx) for dy in range(-h, h + 1) for dx in range(-h, h + 1) if (dy, dx) != (0, 0)]


def to_libift_rows(kernels: NDArray) -> NDArray[np.float32]:
    """Convolution weights ``(n, C, k, k)`` -> libift matrix ``[k*k*C, n]``."""
    n, c, k, _ = kernels.shape
    h = k // 2
    rows = [kernels[:, ch, dy + h, dx + h] for dy, dx in libift_offsets(k) for ch in range(c)]
    return np.ascontiguousarray(np.stack(rows), dtype=np.float32)


def from_libift_rows(matrix: NDArray, channels: int) -> NDArray[np.float32]:
    """libift matrix ``[k*k*C, n]`` -> convolution weights ``(n, C, k, k)``."""
    m, n = matrix.shape
    k = int(round((m // channels) ** 0.5))
    if k * k * channels != m:
        raise OutputError(f"a kernel matrix of {m} rows is not k*k*{channels} for any k")
    out = np.zeros((n, channels, k, k), np.float32)
    h = k // 2
    for a, (dy, dx) in enumerate(libift_offsets(k)):
        out[:, :, dy + h, dx + h] = matrix[a * channels : (a + 1) * channels].T
    return out


# -- the model as an nn.Module -------------------------------------------------------------------


class FlimNet(nn.Module):
    """A FLIM encoder and flimexplore's decision layer, as plain PyTorch.

    Each layer: ``(x - mean) / std``, convolution (zero padding, no bias),
    ReLU, pooling; the decision layer reads layer ``settings.read_layer``:
    batch norm (evaluation statistics) and a 1x1 convolution to two logits,
    folded into ``gap = a . features + c`` at the features' resolution and
    interpolated bilinearly to the input size (the engine's order of
    operations).

    Parameters
    ----------
    settings : FlimSettings
    shapes : list of tuple of int
        ``(n_kernels, C_in)`` of each layer.
    """

    def __init__(self, settings: FlimSettings, shapes: list[tuple[int, int]]) -> None:
        super().__init__()
        self.settings = settings
        k = settings.kernel_size
        for i, (n, c) in enumerate(shapes, start=1):
            self.register_buffer(f"mean{i}", torch.zeros(c))
            self.register_buffer(f"std{i}", torch.ones(c))
            self.register_buffer(f"kernels{i}", torch.zeros(n, c, k, k))
        n = shapes[settings.read_layer - 1][0]
        self.bn = nn.BatchNorm2d(n, eps=BN_EPS)
        self.head = nn.Conv2d(n, 2, 1)
        self.requires_grad_(False)
        self.eval()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the layer the decision layer reads, ``(N, K, h, w)``."""
        s = self.settings
        for i in range(1, s.read_layer + 1):
            mean, std = getattr(self, f"mean{i}"), getattr(self, f"std{i}")
            w = getattr(self, f"kernels{i}")
            y = F.relu(F.conv2d((x - mean[:, None, None]) / std[:, None, None], w, padding=w.shape[-1] // 2))
            if s.pool == "max":
                x = F.max_pool2d(y, s.pool_size, stride=s.pool_stride, padding=s.pool_size // 2)
            else:
                x = F.avg_pool2d(y, s.pool_size, stride=s.pool_stride, padding=s.pool_size // 2, count_include_pad=True)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logit gap (object minus background) ``(N, H, W)`` of images ``(N, 3, H, W)`` in normalised Lab."""
        f = self.features(x)
        scale = self.bn.weight / torch.sqrt(self.bn.running_var + BN_EPS)
        dw = self.head.weight[1, :, 0, 0] - self.head.weight[0, :, 0, 0]
        a = dw * scale
        c = (dw * (self.bn.bias - scale * self.bn.running_mean)).sum() + self.head.bias[1] - self.head.bias[0]
        gap = torch.einsum("c,nchw->nhw", a, f) + c
        return F.interpolate(gap[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Object mask ``(N, H, W)``, bool: where the gap is strictly positive."""
        return self(x) > 0


def to_input(rgb: NDArray[np.floating]) -> torch.Tensor:
    """An RGB image ``(H, W, 3)`` in [0, 1] as a :class:`FlimNet` input ``(1, 3, H, W)``."""
    return torch.from_numpy(np.ascontiguousarray(lab_norm(rgb).transpose(2, 0, 1)))[None]


def _layers(arrays: dict[str, NDArray], settings: FlimSettings) -> list[dict[str, NDArray]]:
    out = []
    for i in range(1, settings.layers + 1):
        sfx = "" if i == 1 else str(i)
        out.append({"kernels": arrays[f"kernels{sfx}"], "mean": arrays[f"norm_mean{sfx}"], "std": arrays[f"norm_std{sfx}"]})
    return out


def build_net(arrays: dict[str, NDArray], settings: FlimSettings) -> FlimNet:
    """The :class:`FlimNet` of one stored model's arrays."""
    layers = _layers(arrays, settings)
    net = FlimNet(settings, [layer["kernels"].shape[:2] for layer in layers])
    state = {}
    for i, layer in enumerate(layers, start=1):
        state |= {f"mean{i}": layer["mean"], f"std{i}": layer["std"], f"kernels{i}": layer["kernels"]}
    state |= {
        "bn.weight": arrays["gamma"], "bn.bias": arrays["beta"], "bn.running_mean": arrays["bn_mean"],
        "bn.running_var": arrays["bn_running_var"], "head.weight": arrays["weight"][:, :, None, None],
        "head.bias": arrays["bias"],
    }
    net.load_state_dict({k: torch.as_tensor(np.asarray(v, np.float32)) for k, v in state.items()}, strict=False)
    return net


def write_torch(path: str | os.PathLike, net: FlimNet) -> None:
    """Save ``net`` as ``{"state_dict", "settings", "format"}``."""
    torch.save({"state_dict": net.state_dict(), "settings": net.settings.to_dict(), "format": 1}, path)


def load_torch(path: str | os.PathLike) -> FlimNet:
    """Load a ``model.pt`` written by ``flimexplore export``.

    Returns
    -------
    FlimNet
        In evaluation mode, on the CPU; ``net(to_input(rgb))`` is the logit
        gap, ``net.predict(...)`` the object mask.
    """
    data = torch.load(path, map_location="cpu", weights_only=True)
    settings = FlimSettings.from_dict(data["settings"])
    sd = data["state_dict"]
    shapes = [tuple(sd[f"kernels{i}"].shape[:2]) for i in range(1, settings.layers + 1)]
    net = FlimNet(settings, shapes)
    net.load_state_dict(sd)
    return net


# -- LIDS folder ---------------------------------------------------------------------------------


def _floats(values: NDArray) -> str:
    return " ".join(repr(float(v)) for v in np.asarray(values, np.float32)) + "\n"


def write_lids(dest: str | os.PathLike, arrays: dict[str, NDArray], settings: FlimSettings) -> None:
    """Write one model's arrays as a LIDS model folder (see the module docstring)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    layers = _layers(arrays, settings)
    write_arch(dest / "arch.json", settings, [int(layer["kernels"].shape[0]) for layer in layers])
    for i, layer in enumerate(layers, start=1):
        np.save(dest / f"conv{i}-kernels.npy", to_libift_rows(layer["kernels"]))
        (dest / f"conv{i}-mean.txt").write_text(_floats(layer["mean"]))
        (dest / f"conv{i}-stdev.txt").write_text(_floats(layer["std"]))
    decision = {k: np.asarray(arrays[k], np.float32).tolist() for k in ("gamma", "beta", "weight", "bias", "bn_mean", "bn_running_var")}
    decision["layer"] = settings.read_layer
    (dest / "decision.json").write_text(json.dumps(decision, indent=1) + "\n")


def read_lids(folder: str | os.PathLike) -> tuple[FlimSettings, dict[str, NDArray]]:
    """Read a LIDS model folder written by :func:`write_lids` back into settings and model arrays."""
    folder = Path(folder)
    settings = read_arch(folder / "arch.json")
    arrays: dict[str, NDArray] = {}
    c_in = 3
    for i in range(1, settings.layers + 1):
        sfx = "" if i == 1 else str(i)
        mean = np.asarray((folder / f"conv{i}-mean.txt").read_text().split(), np.float32)
        std = np.asarray((folder / f"conv{i}-stdev.txt").read_text().split(), np.float32)
        kernels = from_libift_rows(np.load(folder / f"conv{i}-kernels.npy"), len(mean))
        if len(mean) != c_in:
            raise OutputError(f"{folder}/conv{i}-mean.txt has {len(mean)} channels, the layer input has {c_in}")
        arrays |= {f"kernels{sfx}": kernels, f"norm_mean{sfx}": mean, f"norm_std{sfx}": std}
        c_in = kernels.shape[0]
    decision = json.loads((folder / "decision.json").read_text())
    arrays |= {k: np.asarray(v, np.float32) for k, v in decision.items() if k != "layer"}
    return settings, arrays


# -- from a study folder -------------------------------------------------------------------------


def read_study_model(study_dir: str | os.PathLike, model: int) -> tuple[StudyConfig, dict[str, NDArray]]:
    """The settings and stored arrays of model ``model`` of a study folder."""
    study = Path(study_dir)
    try:
        record = json.loads((study / "config.json").read_text())
        config = StudyConfig.from_dict(record["config"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise OutputError(f"{study} is not a flimexplore study folder (cannot read config.json: {err})") from err
    for f in sorted((study / "models").glob("*.npz")):
        with np.load(f) as z:
            ids = [int(m) for m in z["model"]]
            if model in ids:
                j = ids.index(model)
                return config, {k: z[k][j] for k in z.files if k != "model"}
    raise OutputError(f"model {model} is not stored in {study}/models; see the 'model' column of results.csv")


def export_model(study_dir: str | os.PathLike, model: int, dest: str | os.PathLike) -> Path:
    """Write model ``model`` of a study as a LIDS folder plus ``model.pt`` into ``dest``.

    Returns
    -------
    Path
        ``dest``.
    """
    config, arrays = read_study_model(study_dir, model)
    settings = config.flim()
    dest = Path(dest)
    write_lids(dest, arrays, settings)
    write_torch(dest / "model.pt", build_net(arrays, settings))
    return dest
