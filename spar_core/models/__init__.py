"""Models: the networks, each built from its config dataclass: segmenter, shape auto-encoder and the two
discriminators.

Imports the foundation (``spar_core.errors``) and, for the 2.5D input's slice stride, ``spar_core.data.slicing``;
no other stage.
"""

from __future__ import annotations

from spar_core.models.discriminators import (
    CodeDiscriminator,
    CodeDiscriminatorConfig,
    MaskDiscriminator,
    MaskDiscriminatorConfig,
)
from spar_core.models.shape_ae import ShapeAEConfig, ShapeAutoEncoder, ShapeDecoder, ShapeEncoder
from spar_core.models.unet import UNet, UNetConfig

__all__ = [
    "CodeDiscriminator",
    "CodeDiscriminatorConfig",
    "MaskDiscriminator",
    "MaskDiscriminatorConfig",
    "ShapeAEConfig",
    "ShapeAutoEncoder",
    "ShapeDecoder",
    "ShapeEncoder",
    "UNet",
    "UNetConfig",
]
