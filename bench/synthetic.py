"""Synthetic slices for the speed benchmarks: speed does not depend on what the pixels show."""

from __future__ import annotations

import torch

NUM_CLASSES = 4  # background and three structures


def blobs(n: int, size: int, gen: torch.Generator, channels: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """n random slices with three elliptical structures each: (n, channels, S, S) images (a 2.5D network's input:
    the slice and its neighbours, here the same blobs under other noise), (n, S, S) labels."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    labels = torch.zeros(n, size, size, dtype=torch.long)
    for s in range(1, NUM_CLASSES):
        c = torch.rand(n, 2, generator=gen) - 0.5
        r = 0.15 + 0.2 * torch.rand(n, 2, generator=gen)
        inside = ((xx - c[:, :1, None]) / r[:, :1, None]) ** 2 + ((yy - c[:, 1:, None]) / r[:, 1:, None]) ** 2 < 1
        labels[inside] = s
    images = labels[:, None].float() / NUM_CLASSES + 0.1 * torch.randn(n, channels, size, size, generator=gen)
    return images, labels
