"""Checkpoints: one typed record for every network spar saves (:class:`Checkpoint`), written atomically (a killed
job leaves the previous file, never half of a new one) and loaded without running code.

On disk a checkpoint is the dict ``torch.save`` writes (format 1): a segmenter's ``model.pt`` holds its
``unet_config``, its ``unet`` weights, what its training reached (method, preset, epoch of epochs, precision,
classes, slice size, history) and the states resuming needs (optimizers, the discriminator); a shape
auto-encoder's holds its ``config`` and ``state_dict``. :meth:`Checkpoint.from_state` reads both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch
from torch import nn

from spar_core.errors import SparError
from spar_core.paths import atomic_path

M = TypeVar("M", bound=nn.Module)
FORMAT = 1
NETWORKS = ("unet", "shape_ae")
# The keys of a segmenter's file that are not resuming state, in the order they are written.
_SEGMENTER_KEYS = ("method", "preset", "epoch", "precision", "epochs", "num_classes", "size")


@dataclass(frozen=True)
class Checkpoint:
    """What one checkpoint file holds.

    Args:
        network: ``"unet"`` (a segmenter) or ``"shape_ae"``.
        config: the network's configuration dataclass as a dict (``UNetConfig`` / ``ShapeAEConfig``).
        weights: the network's ``state_dict``.
        method, preset, epoch, epochs, precision, num_classes, size: a segmenter's training so far (slice size
            in pixels); None for a shape auto-encoder.
        history: a segmenter's history lines, one per finished epoch.
        resume: what resuming a segmenter needs beyond its weights (optimizer states, the discriminator).
    """

    network: str
    config: dict[str, Any]
    weights: dict[str, Any]
    method: str | None = None
    preset: str | None = None
    epoch: int | None = None
    epochs: int | None = None
    precision: str | None = None
    num_classes: int | None = None
    size: int | None = None
    history: tuple[dict[str, Any], ...] = ()
    resume: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.network not in NETWORKS:
            raise SparError(f"checkpoint network {self.network!r}: expected one of {', '.join(NETWORKS)}")

    def to_state(self) -> dict[str, Any]:
        """The dict written to disk (the layout earlier versions wrote and read)."""
        if self.network == "shape_ae":
            return {"format": FORMAT, "config": self.config, "state_dict": self.weights}
        return {"format": FORMAT, **{k: getattr(self, k) for k in _SEGMENTER_KEYS}, "unet_config": self.config,
                "history": list(self.history), "unet": self.weights, **self.resume}

    @classmethod
    def from_state(cls, state: Any, path: str | Path) -> "Checkpoint":
        """The record of a loaded file; a file that is neither network's is one error naming it."""
        try:
            if "unet_config" in state:
                known = {"format", "unet_config", "history", "unet", *_SEGMENTER_KEYS}
                return cls("unet", dict(state["unet_config"]), state["unet"],
                           **{k: state[k] for k in _SEGMENTER_KEYS if k in state},
                           history=tuple(state.get("history", ())),
                           resume={k: v for k, v in state.items() if k not in known})
            return cls("shape_ae", dict(state["config"]), state["state_dict"])
        except (KeyError, TypeError, ValueError) as err:
            raise SparError(f"{path}: not a spar checkpoint (no segmenter or shape auto-encoder in it: "
                            f"{type(err).__name__} {err})") from None

    def save(self, path: str | Path) -> None:
        save_checkpoint(self.to_state(), path)

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> "Checkpoint":
        return cls.from_state(load_checkpoint(path, map_location), path)


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


def restore(path: str | Path, network: str, build: Callable[[dict[str, Any]], M],
            device: torch.device | str = "cpu") -> tuple[M, Checkpoint]:
    """A network rebuilt from its checkpoint: ``build(config)`` makes it, then its weights are loaded; returned
    in eval mode on ``device`` with the whole record.

    Raises:
        SparError: unreadable file, or a checkpoint that is not of ``network`` (another network, another
            architecture).
    """
    record = Checkpoint.load(path, map_location=device)
    what = {"unet": "a spar segmenter checkpoint", "shape_ae": "a shape auto-encoder checkpoint"}[network]
    if record.network != network:
        raise SparError(f"{path}: not {what} (it holds a {record.network})")
    try:
        model = build(record.config)
        model.load_state_dict(record.weights)
    except (KeyError, TypeError, RuntimeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SparError(f"{path}: not {what} ({reason})") from None
    return model.to(device).eval(), record
