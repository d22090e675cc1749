"""The two discriminators: D on shape codes (SPAR, paper §2.3) and D_mask on masks (Luc et al. 2016).

Both return a LOGIT per sample, shape (B,). Their BCE losses use ``binary_cross_entropy_with_logits``, which is
numerically the same as sigmoid followed by BCE but stable when the sigmoid saturates; ``prob`` gives the
paper's sigmoid output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from spar_core.errors import SparError
from spar_core.models.blocks import check_input, check_positive


def _as_hw(spatial: int | tuple[int, int]) -> tuple[int, ...]:
    """(h, w) from an int side or a pair (a list read back from JSON included)."""
    if isinstance(spatial, (tuple, list)):
        return tuple(spatial)
    return (spatial, spatial)


@dataclass(frozen=True)
class CodeDiscriminatorConfig:
    """Shape code discriminator for latent maps (B, latent_channels, *spatial).

    ``spatial`` is the side (or (h, w)) of F's output: slice size / 2**shape_ae.depth (256 / 2**4 = 16 by
    default). Blocks halve channels and spatial size while the map is at least 2×2 and the halved
    channels stay ≥ ``min_channels`` (paper: 512×8×8 → 256×4×4 → 128×2×2 → 64×1×1); a linear layer then
    maps what is left to one logit.
    """

    latent_channels: int = 64
    spatial: int | tuple[int, int] = 16
    min_channels: int = 8

    def __post_init__(self) -> None:
        check_positive("CodeDiscriminatorConfig", latent_channels=self.latent_channels,
                       min_channels=self.min_channels)
        hw = _as_hw(self.spatial)
        if len(hw) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in hw):
            raise SparError(f"CodeDiscriminatorConfig.spatial: expected a positive int or (h, w), got {self.spatial!r}")


class HalvingBlock(nn.Sequential):
    """Paper §2.3: 1×1 conv halving the features → BN → max-pool halving the spatial size → ReLU."""

    def __init__(self, in_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, in_channels // 2, kernel_size=1, bias=False),
            nn.BatchNorm2d(in_channels // 2),
            nn.MaxPool2d(2),
            nn.ReLU(inplace=True),
        )


class CodeDiscriminator(nn.Module):
    """D: latent map z (B, latent_channels, h, w) → logit (B,) of "z is the code of a true mask"."""

    config_class = CodeDiscriminatorConfig

    def __init__(self, cfg: CodeDiscriminatorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.in_hw = _as_hw(cfg.spatial)
        c, (h, w) = cfg.latent_channels, self.in_hw
        blocks = []
        while min(h, w) >= 2 and c // 2 >= cfg.min_channels:
            blocks.append(HalvingBlock(c))
            c, h, w = c // 2, h // 2, w // 2
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(c * h * w, 1)

    def forward(self, z: Tensor) -> Tensor:
        check_input("CodeDiscriminator", z, self.cfg.latent_channels)
        if tuple(z.shape[-2:]) != self.in_hw:
            raise SparError(
                f"CodeDiscriminator: latent map is {tuple(z.shape[-2:])}, but CodeDiscriminatorConfig.spatial "
                f"is {self.in_hw}; set spatial = slice size / 2**shape_ae.depth"
            )
        x = self.blocks(z)  # (B, c, h, w), c = latent / 2**blocks
        return self.head(x.flatten(1)).squeeze(1)  # (B, c·h·w) -> (B,)

    def prob(self, z: Tensor) -> Tensor:
        """sigmoid(logit): D's probability that z is the code of a ground-truth mask, (B,)."""
        return torch.sigmoid(self(z))


@dataclass(frozen=True)
class MaskDiscriminatorConfig:
    """Mask discriminator: ``depth`` strided conv-BN-LeakyReLU stages, channels base, 2·base, …

    With ``with_image`` the softmax mask is concatenated with the image (``image_channels`` channels).
    """

    num_classes: int = 4
    with_image: bool = False
    base_channels: int = 16
    depth: int = 4
    image_channels: int = 1

    def __post_init__(self) -> None:
        check_positive("MaskDiscriminatorConfig", num_classes=self.num_classes, base_channels=self.base_channels,
                       depth=self.depth, image_channels=self.image_channels)


class StridedConvBNLReLU(nn.Sequential):
    """conv 3×3 stride 2 (halves H and W, any size) → BN → LeakyReLU(0.2)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(0.2, inplace=True),
        )


class MaskDiscriminator(nn.Module):
    """D_mask: softmax mask (B, C, H, W) [+ image (B, image_channels, H, W)] → logit (B,) of "true mask"."""

    config_class = MaskDiscriminatorConfig

    def __init__(self, cfg: MaskDiscriminatorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.in_channels = cfg.num_classes + (cfg.image_channels if cfg.with_image else 0)
        chans = [cfg.base_channels * 2**i for i in range(cfg.depth)]
        self.stages = nn.Sequential(*(StridedConvBNLReLU(i, o) for i, o in zip([self.in_channels] + chans, chans)))
        self.head = nn.Linear(chans[-1], 1)

    def forward(self, mask: Tensor, image: Tensor | None = None) -> Tensor:
        if self.cfg.with_image != (image is not None):
            raise SparError(
                f"MaskDiscriminator: with_image={self.cfg.with_image} but image was "
                f"{'not ' if image is None else ''}given"
            )
        x = mask if image is None else torch.cat([mask, image], dim=1)  # (B, C [+ image_channels], H, W)
        check_input("MaskDiscriminator", x, self.in_channels)
        x = self.stages(x)  # (B, 2**(depth-1)·base, H/2**depth, W/2**depth)
        return self.head(x.mean(dim=(2, 3))).squeeze(1)  # global average pool (B, c) -> (B,)

    def prob(self, mask: Tensor, image: Tensor | None = None) -> Tensor:
        """sigmoid(logit), (B,)."""
        return torch.sigmoid(self(mask, image))
