"""What the networks share: the conv-BN-ReLU block, and the checks of their configs and inputs, which name
the argument and what was expected."""

from __future__ import annotations

from torch import Tensor, nn

from spar_core.errors import SparError


def check_positive(owner: str, **values: int) -> None:
    """SparError naming ``owner.argument`` unless every value is a positive int."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SparError(f"{owner}.{name}: expected a positive integer, got {value!r}")


def check_input(owner: str, x: Tensor, channels: int, multiple: int = 1) -> None:
    """SparError unless ``x`` is (B, channels, H, W) with H and W divisible by ``multiple``."""
    if x.dim() != 4 or x.shape[1] != channels:
        raise SparError(f"{owner}: expected input of shape (B, {channels}, H, W), got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % multiple or w % multiple:
        raise SparError(
            f"{owner}: input size {h}×{w} is not divisible by 2**depth = {multiple}; "
            f"pad or resize to a multiple of {multiple}"
        )


class ConvBNReLU(nn.Sequential):
    """conv 3×3 (no bias: BN's shift replaces it) → batch norm → ReLU; keeps H and W."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
