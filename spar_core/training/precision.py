"""Numerical precision of training and inference: full fp32, or autocast to bfloat16 / float16.

``auto`` takes the fastest precision the hardware runs natively: bfloat16 on a CPU with AVX512-BF16 or AMX (read
from the CPU's flags, never guessed), bfloat16 on a CUDA GPU that supports it, else float16 there, fp32
everywhere else (Apple MPS included). Under autocast the convolutions run in the lower precision while the
weights and the optimizer states stay fp32; the segmenter's softmax, which F and D receive, is always computed
in fp32. float16 needs a loss scaler (:meth:`Precision.grad_scaler`); bfloat16 and fp32 do not.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import ContextManager

import torch

from spar_core.errors import SparError
from spar_core.training.names import PRECISIONS

_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bfloat16 arithmetic


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """True when the CPU announces AVX512-BF16 or AMX-BF16; False when it does not or cannot be asked."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    return any(flag in flags for flag in CPU_BF16_FLAGS)


def resolve(name: str, device: torch.device) -> str:
    """The precision ``name`` means on ``device``: "fp32", "bf16" or "fp16" (``auto`` decided here).

    Raises:
        SparError: an unknown name, fp16 off CUDA, or bf16 on a GPU without it; the message names --precision.
    """
    if name not in PRECISIONS:
        raise SparError(f"--precision: {name!r} is unknown; expected one of {', '.join(PRECISIONS)}")
    cuda = device.type == "cuda"
    if name == "auto":
        if cuda:
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"
    if name == "fp16" and not cuda:
        raise SparError(f"--precision fp16: float16 autocast needs a CUDA device, not {device.type}; "
                        "use bf16 or fp32")
    if name == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise SparError("--precision bf16: this GPU has no bfloat16; use fp16 or fp32")
    if name == "bf16" and device.type == "mps":
        raise SparError("--precision bf16: not supported on Apple MPS here; use fp32")
    return name


@dataclass(frozen=True)
class Precision:
    """A resolved precision on one device: ``name`` is "fp32", "bf16" or "fp16"."""

    name: str
    device: torch.device

    @classmethod
    def of(cls, name: str, device: torch.device | str) -> "Precision":
        device = torch.device(device)
        return cls(resolve(name, device), device)

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast type, None for fp32."""
        return _DTYPES[self.name]

    def autocast(self) -> ContextManager:
        """``torch.autocast`` to :attr:`dtype` on the device, or a no-op context for fp32."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A loss scaler, enabled only for float16 (bfloat16 and fp32 need none)."""
        return torch.amp.GradScaler(self.device.type if self.device.type == "cuda" else "cpu",
                                    enabled=self.name == "fp16")

