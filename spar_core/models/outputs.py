"""The networks' outputs as the rest of spar uses them: per-pixel class probabilities (the softmax of the
segmenter's logits, in fp32 whatever precision the network ran in, so that F and D receive the same values
under autocast) and label maps as one-hot masks, the form true masks take beside predicted probabilities."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def probabilities(logits: Tensor) -> Tensor:
    """(B, C, H, W) logits -> (B, C, H, W) fp32 probabilities, summing to 1 over C."""
    return torch.softmax(logits.float(), dim=1)


def one_hot(labels: Tensor, num_classes: int) -> Tensor:
    """(B, H, W) integer labels in [0, num_classes) -> (B, C, H, W) float one-hot masks."""
    return F.one_hot(labels, num_classes).permute(0, 3, 1, 2).float()
