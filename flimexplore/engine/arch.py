"""LIDS ``arch.json`` (libift / pyflim / FLIM-Builder) to and from :class:`FlimSettings`.

The format (FIELD_NOTES §1.8)::

    {"stdev_factor": 0.01, "nlayers": L, "apply_intrinsic_atrous": false,
     "layer1": {"conv": {"kernel_size": [k, k, 0], "dilation_rate": [1, 1, 0],
                         "nkernels_per_marker": 8, "noutput_channels": 16},
                "relu": true,
                "pooling": {"type": "avg_pool", "size": [3, 3, 0], "stride": 2}},
     ...}

:func:`arch_to_settings` refuses, with one line naming the file and the key,
what flimexplore cannot honour: 3-D kernels or pooling, non-square windows,
dilation other than 1, ``apply_intrinsic_atrous`` true, ``relu`` false,
more than 3 layers, layers with different settings, and a per-image
reduction (``nkernels_per_image``) below the kernels the two markers give.
``no_pool`` is read as 1x1 average pooling with stride 1 (the identity).
:func:`settings_to_arch` writes the standard keys plus a ``"flimexplore"``
object with the settings libift has no key for (decision layer, consensus,
clustering), which :func:`arch_to_settings` reads back.
"""

from __future__ import annotations

import json
import os
from typing import Any

from flimexplore.engine.settings import MAX_LAYERS, FlimSettings
from flimexplore.errors import ConfigError

__all__ = ["arch_to_settings", "read_arch", "settings_to_arch", "write_arch"]

_EXTRA = ("decision_layer", "consensus", "clustering", "restarts", "min_cluster_fraction", "cluster_seed")
_POOL_NAMES = {"avg_pool": "avg", "max_pool": "max"}


def settings_to_arch(settings: FlimSettings, channels: list[int] | None = None) -> dict[str, Any]:
    """The LIDS arch dictionary of the settings.

    Parameters
    ----------
    settings : FlimSettings
    channels : list of int, optional
        Actual output channels of each layer (libift writes back the number
        of kernels it kept); default ``settings.n_kernels`` for every layer.
    """
    out: dict[str, Any] = {
        "stdev_factor": settings.stdev_factor,
        "nlayers": settings.layers,
        "apply_intrinsic_atrous": False,
    }
    k, p = settings.kernel_size, settings.pool_size
    for n in range(1, settings.layers + 1):
        out[f"layer{n}"] = {
            "conv": {
                "kernel_size": [k, k, 0],
                "dilation_rate": [1, 1, 0],
                "nkernels_per_marker": settings.kernels_per_marker,
                "noutput_channels": channels[n - 1] if channels else settings.n_kernels,
            },
            "relu": True,
            "pooling": {"type": f"{settings.pool}_pool", "size": [p, p, 0], "stride": settings.pool_stride},
        }
    out["flimexplore"] = {name: getattr(settings, name) for name in _EXTRA}
    return out


def write_arch(path: str | os.PathLike, settings: FlimSettings, channels: list[int] | None = None) -> None:
    """Write :func:`settings_to_arch` as JSON."""
    with open(path, "w") as f:
        json.dump(settings_to_arch(settings, channels), f, indent=2)
        f.write("\n")


def _square(value: Any, what: str, where: str) -> int:
    """An ``[x, y, z]`` size as one odd-or-any int; refuses 3-D and non-square."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, list) or not 2 <= len(value) <= 3 or not all(isinstance(v, int) for v in value):
        raise ConfigError(f"{where}: {what} must be [x, y, z] integers, got {value!r}")
    if len(value) == 3 and value[2] not in (0, 1):
        raise ConfigError(f"{where}: {what} {value} is 3-D; flimexplore handles 2-D images only (z must be 0)")
    if value[0] != value[1]:
        raise ConfigError(f"{where}: {what} {value} is not square; flimexplore uses square windows")
    return value[0]


def _layer(spec: Any, where: str) -> dict[str, Any]:
    """The flimexplore settings of one layer object."""
    if not isinstance(spec, dict) or not isinstance(spec.get("conv"), dict):
        raise ConfigError(f"{where}: expected an object with a 'conv' object")
    conv = spec["conv"]
    for key in ("kernel_size", "nkernels_per_marker", "noutput_channels"):
        if key not in conv:
            raise ConfigError(f"{where}: conv.{key} is missing")
    out = {
        "kernel_size": _square(conv["kernel_size"], "conv.kernel_size", where),
        "kernels_per_marker": conv["nkernels_per_marker"],
        "channels": conv["noutput_channels"],
    }
    dilation = _square(conv.get("dilation_rate", [1, 1, 0]), "conv.dilation_rate", where)
    if dilation != 1:
        raise ConfigError(f"{where}: conv.dilation_rate {conv.get('dilation_rate')} is not supported; use 1")
    per_image = conv.get("nkernels_per_image")
    if per_image is not None and isinstance(out["kernels_per_marker"], int) and per_image < 2 * out["kernels_per_marker"]:
        raise ConfigError(
            f"{where}: conv.nkernels_per_image {per_image} < 2 x nkernels_per_marker would need libift's "
            "per-image reduction, which flimexplore does not do (one image, two markers); remove it or raise it"
        )
    if spec.get("relu", True) is not True:
        raise ConfigError(f"{where}: relu false is not supported; FLIM layers here always apply ReLU")
    pooling = spec.get("pooling", {"type": "no_pool"})
    kind = pooling.get("type") if isinstance(pooling, dict) else None
    if kind == "no_pool":
        out |= {"pool": "avg", "pool_size": 1, "pool_stride": 1}
    elif kind in _POOL_NAMES:
        out |= {
            "pool": _POOL_NAMES[kind],
            "pool_size": _square(pooling.get("size"), "pooling.size", where),
            "pool_stride": pooling.get("stride", 1),
        }
    else:
        raise ConfigError(f"{where}: pooling.type must be avg_pool, max_pool or no_pool, got {kind!r}")
    return out


def arch_to_settings(arch: Any, where: str = "arch.json") -> FlimSettings:
    """:class:`FlimSettings` of a parsed LIDS arch dictionary.

    Raises
    ------
    ConfigError
        Naming ``where`` and the key, for anything flimexplore cannot honour.
    """
    if not isinstance(arch, dict) or "nlayers" not in arch:
        raise ConfigError(f"{where}: not a LIDS arch file (no 'nlayers' key)")
    n = arch["nlayers"]
    if not isinstance(n, int) or not 1 <= n <= MAX_LAYERS:
        raise ConfigError(f"{where}: nlayers must be 1 to {MAX_LAYERS} in flimexplore, got {n!r}")
    if arch.get("apply_intrinsic_atrous", False):
        raise ConfigError(f"{where}: apply_intrinsic_atrous true is not supported; set it to false")
    layers = []
    for i in range(1, n + 1):
        if f"layer{i}" not in arch:
            raise ConfigError(f"{where}: nlayers is {n} but layer{i} is missing")
        layers.append(_layer(arch[f"layer{i}"], f"{where} layer{i}"))
    for i, other in enumerate(layers[1:], start=2):
        diff = sorted(k for k in other if other[k] != layers[0][k])
        if diff:
            raise ConfigError(
                f"{where}: layer{i} differs from layer1 in {', '.join(diff)}; flimexplore uses the same "
                "settings for every layer"
            )
    values = dict(layers[0], layers=n, stdev_factor=arch.get("stdev_factor", 0.01))
    extra = arch.get("flimexplore", {})
    if not isinstance(extra, dict) or set(extra) - set(_EXTRA):
        raise ConfigError(f"{where}: 'flimexplore' must be an object with keys among {', '.join(_EXTRA)}")
    values |= extra
    settings = FlimSettings(**values)
    bad = settings.problems()
    if bad:
        raise ConfigError(f"{where}: " + "; ".join(f"{k} {v}" for k, v in bad.items()))
    return settings


def read_arch(path: str | os.PathLike) -> FlimSettings:
    """Read a LIDS ``arch.json`` into :class:`FlimSettings` (see :func:`arch_to_settings`)."""
    where = os.fspath(path)
    try:
        with open(path) as f:
            arch = json.load(f)
    except OSError as err:
        raise ConfigError(f"cannot read --arch file {where}: {err.strerror or err}") from err
    except ValueError as err:
        raise ConfigError(f"--arch file {where} is not valid JSON: {err}") from err
    return arch_to_settings(arch, where)
