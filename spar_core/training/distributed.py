"""Several GPUs with ``torchrun`` (PyTorch DDP): which process am I, and gradient averaging.

``torchrun --nproc_per_node=N -m spar_core train ...`` sets WORLD_SIZE/RANK/LOCAL_RANK; each process takes
a share of every batch, gradients are averaged, and rank 0 alone writes files. On the CPU the ``gloo``
backend runs the same code (that is how it is tested).
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed() -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment; single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world_size=world, local_rank=local)


def device_for(info: DistInfo, default: torch.device) -> torch.device:
    """Each rank's own GPU under torchrun; ``default`` otherwise."""
    if info.enabled and default.type == "cuda":
        return torch.device("cuda", info.local_rank)
    return default


def average_gradients(params: Iterable[torch.nn.Parameter], info: DistInfo) -> None:
    """All-reduce and average gradients (used for the discriminators, which see two batches per step)."""
    if not info.enabled:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= info.world_size


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    """Wait for every rank, then leave the process group.

    A rank that exits while another still writes its files tears gloo's threads down mid-flight
    (``terminate called without an active exception``); leaving together avoids it. The DDP wrappers of the
    training are collected first (a reference cycle could keep one, with its communication hooks, alive until
    after the group is gone).
    """
    if info.enabled and dist.is_initialized():
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()
