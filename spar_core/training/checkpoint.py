"""Atomic checkpoints: a killed job leaves the previous file, never half of a new one; loaded without running code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from spar_core.errors import SparError
from spar_core.paths import atomic_path


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """``torch.save`` to a temporary file, then replace ``path`` (tensors, numbers, strings, lists, dicts)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``: no code in a checkpoint ever runs."""
    path = Path(path)
    if not path.is_file():
        raise SparError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # pickle, zip and weights-only errors all mean the same to a user
        raise SparError(f"{path}: not a readable spar checkpoint ({type(err).__name__}: {err})") from None
