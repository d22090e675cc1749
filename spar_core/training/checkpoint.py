"""Atomic checkpoints: a killed job leaves the previous file, never half of a new one; loaded without running code."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, TypeVar

import torch
from torch import nn

from spar_core.errors import SparError
from spar_core.paths import atomic_path

M = TypeVar("M", bound=nn.Module)


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
        raise SparError(f"{path}: not a readable spar checkpoint ({_reason(err)})") from None


def _reason(err: Exception) -> str:
    """Why torch could not load a file, in a few words — never torch's advice to load it with
    ``weights_only=False``, which would run whatever code an untrusted file holds."""
    text = str(err)
    if "Weights only load failed" in text or "weights_only" in text:
        return "it holds Python objects beyond tensors and plain data, which spar never loads"
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{type(err).__name__}: {first[:200]}" if first else type(err).__name__


def restore(path: str | Path, build: Callable[[dict[str, Any]], M], weights: str, what: str,
            device: torch.device | str = "cpu") -> tuple[M, dict[str, Any]]:
    """A network rebuilt from a checkpoint: ``build(state)`` makes it from the checkpoint's config, then its
    ``state[weights]`` are loaded; returned in eval mode on ``device`` with the whole checkpoint.

    Raises:
        SparError: unreadable file, or a checkpoint that is not ``what`` (missing keys, another architecture).
    """
    state = load_checkpoint(path, map_location=device)
    try:
        model = build(state)
        model.load_state_dict(state[weights])
    except (KeyError, TypeError, RuntimeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SparError(f"{path}: not {what} ({reason})") from None
    return model.to(device).eval(), state
