"""Where training and inference run: CUDA, else Apple MPS, else the CPU, and mixed precision on CUDA."""

from __future__ import annotations

import contextlib
from typing import ContextManager

import torch


def pick_device(prefer: str | None = None) -> torch.device:
    """The device to use: ``prefer`` when given ("cpu", "cuda", "cuda:1", "mps"), else the fastest present."""
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed-precision type on CUDA (bfloat16 where supported, else float16); None elsewhere."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device) -> ContextManager:
    """``torch.autocast`` on CUDA, a no-op context on CPU and MPS (full precision there)."""
    dtype = autocast_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)


def grad_scaler(device: torch.device) -> torch.amp.GradScaler:
    """A loss scaler, enabled only for float16 autocast (bfloat16 and full precision need none)."""
    return torch.amp.GradScaler("cuda", enabled=autocast_dtype(device) == torch.float16)
