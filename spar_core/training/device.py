"""Where training and inference run: CUDA, else Apple MPS, else the CPU (precision: ``precision.py``)."""

from __future__ import annotations

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
