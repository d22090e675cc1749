"""Where training and inference run: CUDA, else Apple MPS, else the CPU (precision: ``precision.py``)."""

from __future__ import annotations

import torch

from spar_core.errors import SparError


def pick_device(prefer: str | None = None) -> torch.device:
    """The device to use: ``prefer`` when given ("cpu", "cuda", "cuda:1", "mps"), checked to be there, else the
    fastest present.

    Raises:
        SparError: ``prefer`` is no device name, or names one this machine (or this build of torch) does not have;
            said before any work.
    """
    if prefer:
        try:
            device = torch.device(prefer)
        except (RuntimeError, ValueError):
            raise SparError(f"--device {prefer!r}: expected cpu, cuda, cuda:N or mps") from None
        _check_present(device, prefer)
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _check_present(device: torch.device, asked: str) -> None:
    if device.type == "cuda":
        if not torch.cuda.is_available():
            built = "" if torch.backends.cuda.is_built() else " (this torch is a CPU build)"
            raise SparError(f"--device {asked}: no CUDA GPU here{built}; use --device cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise SparError(f"--device {asked}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise SparError(f"--device {asked}: no Apple MPS device here; use --device cpu")
    elif device.type != "cpu":
        raise SparError(f"--device {asked}: spar runs on cpu, cuda or mps")
