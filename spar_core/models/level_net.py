"""The level model: a small CNN that names which member of a row a 2.5D crop is centred on (a vertebral body
between L1 and L5), or that it lies one step beyond the row's first or last member (T12, S1), from the anatomy
the crop holds. SPINEPS labels vertebrae the same way, with a classifier on a crop around each one.

A stack of conv blocks halves the crop three times; the features are flattened, not pooled, so that *where* the
neighbours lie in the crop (the sacrum below, not above) reaches the classifier.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from spar_core.errors import SparError
from spar_core.models.blocks import ConvBNReLU, check_input, check_positive


@dataclass(frozen=True)
class LevelNetConfig:
    """in_channels: planes per crop; classes: members of the row + 2; pixels: (along, across), each a multiple of
    8; width: channels of the first block (doubled at each of the three halvings, at most 4×)."""

    in_channels: int = 3
    classes: int = 7
    pixels: tuple[int, int] = (48, 32)
    width: int = 16
    hidden: int = 128
    dropout: float = 0.3

    def __post_init__(self) -> None:
        check_positive("LevelNetConfig", in_channels=self.in_channels, classes=self.classes, width=self.width,
                       hidden=self.hidden)
        if self.classes < 3:
            raise SparError(f"LevelNetConfig.classes={self.classes}: expected a row of one member or more + 2")
        check_positive("LevelNetConfig", along=self.pixels[0] // 8, across=self.pixels[1] // 8)


class LevelNet(nn.Module):
    """(B, C, H, W) crops → (B, classes) logits."""

    config_class = LevelNetConfig

    def __init__(self, cfg: LevelNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        widths = [w, 2 * w, 4 * w]
        blocks, cin = [], cfg.in_channels
        for cout in widths:
            blocks += [ConvBNReLU(cin, cout), ConvBNReLU(cout, cout), nn.MaxPool2d(2)]
            cin = cout
        self.features = nn.Sequential(*blocks)
        h, wd = cfg.pixels[0] // 8, cfg.pixels[1] // 8
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(cfg.dropout), nn.Linear(cin * h * wd, cfg.hidden),
                                  nn.ReLU(inplace=True), nn.Linear(cfg.hidden, cfg.classes))

    def forward(self, x: Tensor) -> Tensor:
        check_input("LevelNet", x, self.cfg.in_channels, 8)
        if tuple(x.shape[-2:]) != tuple(self.cfg.pixels):
            raise SparError(f"LevelNet: expected crops of {self.cfg.pixels} pixels, got {tuple(x.shape[-2:])}")
        x = self.features(x)  # (B, 4w, H/8, W/8)
        return self.head(x)  # (B, classes)
