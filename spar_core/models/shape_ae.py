"""The shape auto-encoder: encoder F (mask → latent shape code) and decoder G (code → mask logits).

Pre-trained on ground-truth masks with a cross-entropy reconstruction loss, then F is frozen and shared by the
regularizers of one fold. F takes a (B, C, H, W) probability map: a one-hot ground truth or the segmenter's
softmax output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from spar_core.errors import SparError
from spar_core.models.blocks import ConvBNReLU, check_input, check_positive


@dataclass(frozen=True)
class ShapeAEConfig:
    """Shape auto-encoder size: ``depth`` conv-BN-ReLU + max-pool stages, then a conv to ``latent_channels``.

    The latent map is (B, latent_channels, H/2**depth, W/2**depth); the paper's preset uses 512 channels.
    """

    num_classes: int = 4  # background included
    base_channels: int = 16
    depth: int = 4
    latent_channels: int = 64

    def __post_init__(self) -> None:
        check_positive("ShapeAEConfig", num_classes=self.num_classes, base_channels=self.base_channels,
                       depth=self.depth, latent_channels=self.latent_channels)
        if self.num_classes < 2:
            raise SparError(f"ShapeAEConfig.num_classes: expected ≥ 2 (background included), got {self.num_classes}")

    @property
    def channels(self) -> list[int]:
        """Channels of the ``depth`` encoder stages: base, 2·base, …"""
        return [self.base_channels * 2**i for i in range(self.depth)]


class ShapeEncoder(nn.Module):
    """F: mask probabilities (B, C, H, W) → latent map (B, latent_channels, H/2**depth, W/2**depth)."""

    def __init__(self, cfg: ShapeAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ins = [cfg.num_classes] + cfg.channels[:-1]
        self.stages = nn.ModuleList(nn.Sequential(ConvBNReLU(i, o), nn.MaxPool2d(2)) for i, o in zip(ins, cfg.channels))
        self.to_latent = ConvBNReLU(cfg.channels[-1], cfg.latent_channels)

    def forward(self, mask: Tensor) -> Tensor:
        check_input("ShapeEncoder", mask, self.cfg.num_classes, 2**self.cfg.depth)
        x = mask
        for stage in self.stages:
            x = stage(x)  # (B, c_i, H/2**(i+1), W/2**(i+1))
        return self.to_latent(x)  # (B, latent, H/2**depth, W/2**depth)


class UpConvBNReLU(nn.Sequential):
    """Transposed conv ×2 up → BN → ReLU → conv-BN-ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            ConvBNReLU(out_channels, out_channels),
        )


class ShapeDecoder(nn.Module):
    """G: latent map (B, latent_channels, h, w) → mask logits (B, C, h·2**depth, w·2**depth)."""

    def __init__(self, cfg: ShapeAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        outs = cfg.channels[::-1]  # e.g. [128, 64, 32, 16]
        self.stages = nn.ModuleList(UpConvBNReLU(i, o) for i, o in zip([cfg.latent_channels] + outs[:-1], outs))
        self.head = nn.Conv2d(outs[-1], cfg.num_classes, kernel_size=1)

    def forward(self, z: Tensor) -> Tensor:
        check_input("ShapeDecoder", z, self.cfg.latent_channels)
        for stage in self.stages:
            z = stage(z)  # (B, c, 2h, 2w)
        return self.head(z)  # (B, C, H, W) logits


class ShapeAutoEncoder(nn.Module):
    """G(F(mask)): reconstruction logits of a mask; ``encode`` and ``pooled_codes`` give F's shape codes."""

    config_class = ShapeAEConfig

    def __init__(self, cfg: ShapeAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = ShapeEncoder(cfg)
        self.decoder = ShapeDecoder(cfg)

    def forward(self, mask: Tensor) -> Tensor:
        """(B, C, H, W) probabilities or one-hot → (B, C, H, W) reconstruction logits."""
        return self.decoder(self.encoder(mask))

    def encode(self, mask: Tensor) -> Tensor:
        """z = F(mask): (B, latent_channels, H/2**depth, W/2**depth)."""
        return self.encoder(mask)

    def pooled_codes(self, mask: Tensor) -> Tensor:
        """Global max pool of F(mask): (B, latent_channels), the paper's 512-d codes embedded with t-SNE."""
        return self.encoder(mask).amax(dim=(2, 3))

    def structure_codes(self, mask: Tensor, structure: int) -> Tensor:
        """Pooled codes of one structure's mask (its channel kept, the rest as background): (B, C, H, W) →
        (B, latent_channels). The codes the latent maps and the triage compare, one per bone of a slice."""
        return self.pooled_codes(single_structure(mask, structure))


def single_structure(mask: Tensor, structure: int) -> Tensor:
    """Keep one structure of a (B, C, H, W) probability or one-hot map: its channel as is, the rest as
    background."""
    out = torch.zeros_like(mask)
    out[:, structure] = mask[:, structure]
    out[:, 0] = 1.0 - mask[:, structure]
    return out
