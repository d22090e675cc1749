"""What an epoch is: its length in updates and the order in which it draws the training slices.

By default an epoch is one pass over the slices, as in the paper. With ``steps_per_epoch`` set (nnU-Net's
250 "iterations per epoch") an epoch is that many updates whatever the size of the training set: the budget
is then counted in updates, so a run's time does not grow with the data, and a smaller training set is not
simply trained for fewer updates. The order is a chain of random permutations, so every slice is drawn
once before any is drawn twice.
"""

from __future__ import annotations

import math
from enum import IntEnum

import torch

from spar_core.errors import SparError


class Stream(IntEnum):
    """The independent random streams of one epoch, one per use; a new use takes a new member (below 101)."""

    SHAPE_AE_ORDER = 1
    SHAPE_AE_AUGMENT = 2
    SEGMENTER_ORDER = 3
    SEGMENTER_AUGMENT = 4  # one per process of a multi-GPU run (its rank)


def epoch_generator(seed: int, epoch: int, stream: Stream, rank: int = 0) -> torch.Generator:
    """A CPU generator fixed by (seed, epoch, stream, rank): resuming at any epoch replays the same randomness,
    and the processes of a multi-GPU run draw apart."""
    if not 0 <= int(stream) < 101:
        raise SparError(f"random stream {stream}: expected 0 to 100")
    # a rank moves the seed as 65,537 epochs would (torch's CPU generator reads its low 32 bits only)
    return torch.Generator().manual_seed(((seed * 1_000_003 + epoch + rank * 65_537) * 101 + int(stream)) % (2**63))


def epoch_steps(n: int, batch_size: int, steps_per_epoch: int | None) -> int:
    """Updates per epoch: ``steps_per_epoch``, or one pass over ``n`` slices in batches of ``batch_size``."""
    if n < 1 or batch_size < 1:
        raise SparError(f"epoch of {n} slices in batches of {batch_size}: expected at least one of each")
    if steps_per_epoch is None:
        return max(1, math.ceil(n / batch_size))
    if steps_per_epoch < 1:
        raise SparError(f"steps_per_epoch={steps_per_epoch}: expected a positive number of updates, or None")
    return steps_per_epoch


def epoch_order(n: int, batch_size: int, steps_per_epoch: int | None, generator: torch.Generator) -> torch.Tensor:
    """The slice indices in [0, n) an epoch draws, in order: one random permutation of the n slices (its last
    batch may be short), or with ``steps_per_epoch`` consecutive permutations cut at steps × batch_size."""
    if steps_per_epoch is None:
        return torch.randperm(n, generator=generator)
    count = epoch_steps(n, batch_size, steps_per_epoch) * batch_size
    laps = math.ceil(count / n)
    return torch.cat([torch.randperm(n, generator=generator) for _ in range(laps)])[:count]
