"""Arithmetic precision of the engine on CUDA: fp32 (default), tf32 or bf16.

``tf32`` lets cuBLAS and cuDNN use TensorFloat-32 for float32 matrix
products and convolutions; ``bf16`` runs the FLIM convolution of
:func:`flimexplore.engine.flim.encode` (the dominant cost) in bfloat16 and
everything after it (ReLU, pooling, decision layer, counting) in float32.
On the CPU only ``fp32`` is offered: the CPU path is float32 throughout.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch

from flimexplore.errors import ConfigError

__all__ = ["PRECISIONS", "check_precision", "current_precision", "precision_scope"]

PRECISIONS = ("fp32", "tf32", "bf16")
_current: ContextVar[str] = ContextVar("flimexplore_precision", default="fp32")


def check_precision(precision: str, device: torch.device | str) -> str:
    """Return ``precision`` if it can run on ``device``.

    Raises
    ------
    ConfigError
        If it is not one of :data:`PRECISIONS`, or is not ``fp32`` on a device other than CUDA.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision (--precision) must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "fp32" and torch.device(device).type != "cuda":
        raise ConfigError(
            f"--precision {precision} is for CUDA only; the engine on {torch.device(device).type} runs in fp32 "
            "(leave --precision out, or use --device cuda)"
        )
    return precision


def current_precision() -> str:
    """The precision in force (set by :func:`precision_scope`)."""
    return _current.get()


@contextmanager
def precision_scope(precision: str, device: torch.device | str) -> Iterator[None]:
    """Run the engine in ``precision`` inside the ``with`` block (checked by :func:`check_precision`)."""
    check_precision(precision, device)
    token = _current.set(precision)
    cuda = torch.device(device).type == "cuda"
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) if cuda else None
    try:
        if saved is not None:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"
        yield
    finally:
        if saved is not None:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
        _current.reset(token)
