"""The segmenter S: a 2D UNet (conv-BN-ReLU, max-pool, transposed conv, skip connections).

``UNet.forward`` returns LOGITS. Everything downstream (cross-entropy aside) works on the *softmax output*,
``probs = probabilities(logits)`` (:mod:`spar_core.models.outputs`): the per-pixel class probabilities that the
shape encoder F and the discriminators receive (never the argmax, never the logits).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from spar_core.data.slicing import context_stride
from spar_core.errors import SparError
from spar_core.models.blocks import ConvBNReLU, check_input, check_positive


class DoubleConv(nn.Sequential):
    """The UNet block: two conv-BN-ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(ConvBNReLU(in_channels, out_channels), ConvBNReLU(out_channels, out_channels))


@dataclass(frozen=True)
class UNetConfig:
    """UNet size. Channels double at each of the ``depth`` down-samplings: base, 2·base, …, 2**depth·base.

    Inputs must have H and W divisible by ``2**depth``. With ``context`` > 0 the network is 2.5D: it sees the
    slice and ``context`` neighbours on each side, ``context_stride`` slices apart (or, with ``context_mm`` > 0,
    the number of slices closest to ``context_mm`` mm in each exam), as extra channels.
    """

    in_channels: int = 1
    num_classes: int = 4  # background included
    base_channels: int = 16
    depth: int = 4  # number of max-pool down-samplings
    context: int = 0  # neighbouring slices on each side (2.5D input)
    context_stride: int = 1  # slices between two input slices
    context_mm: float = 0.0  # > 0: the distance between two input slices in mm instead (per exam's spacing)

    def __post_init__(self) -> None:
        check_positive("UNetConfig", in_channels=self.in_channels, num_classes=self.num_classes,
                       base_channels=self.base_channels, depth=self.depth, context_stride=self.context_stride)
        if self.context < 0:
            raise SparError(f"UNetConfig.context: expected ≥ 0 neighbouring slices, got {self.context}")
        if not (self.context_mm >= 0 and np.isfinite(self.context_mm)):
            raise SparError(f"UNetConfig.context_mm: expected a distance ≥ 0 mm, got {self.context_mm}")
        if self.num_classes < 2:
            raise SparError(f"UNetConfig.num_classes: expected ≥ 2 (background included), got {self.num_classes}")

    def stride_along(self, spacing_mm: float) -> int:
        """Slices between two input slices for an exam whose slices are ``spacing_mm`` apart."""
        return context_stride(self.context_stride, self.context_mm, spacing_mm)

    @property
    def input_channels(self) -> int:
        """Channels of the network's input: each image channel of the slice and of its neighbours."""
        return self.in_channels * (1 + 2 * self.context)


class UpBlock(nn.Module):
    """Transposed conv ×2 up, concatenate the encoder's skip, DoubleConv."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2, bias=False)
        self.conv = DoubleConv(out_channels + skip_channels, out_channels)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = self.up(x)  # (B, out, 2h, 2w)
        return self.conv(torch.cat([x, skip], dim=1))  # (B, out + skip, 2h, 2w) -> (B, out, 2h, 2w)


class UNet(nn.Module):
    """Segmenter S: image (B, input_channels, H, W) → logits (B, num_classes, H, W).

    :func:`spar_core.models.outputs.probabilities` turns them into the probabilities used everywhere downstream.

    Raises:
        SparError: in the constructor for a bad config; in ``forward`` when H or W is not divisible by 2**depth.
    """

    config_class = UNetConfig

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        chans = [cfg.base_channels * 2**i for i in range(cfg.depth + 1)]  # e.g. [16, 32, 64, 128, 256]
        self.down = nn.ModuleList(
            DoubleConv(c_in, c_out) for c_in, c_out in zip([cfg.input_channels] + chans[:-2], chans[:-1])
        )
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = DoubleConv(chans[-2], chans[-1])
        self.up = nn.ModuleList(UpBlock(c_in, c_out, c_out) for c_in, c_out in zip(chans[:0:-1], chans[-2::-1]))
        self.head = nn.Conv2d(chans[0], cfg.num_classes, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        check_input("UNet", x, self.cfg.input_channels, 2**self.cfg.depth)
        skips = []
        for down in self.down:
            x = down(x)
            skips.append(x)  # (B, c_i, H/2**i, W/2**i)
            x = self.pool(x)
        x = self.bottleneck(x)  # (B, 2**depth·base, H/2**depth, W/2**depth)
        for up, skip in zip(self.up, reversed(skips)):
            x = up(x, skip)
        return self.head(x)  # (B, num_classes, H, W) logits
