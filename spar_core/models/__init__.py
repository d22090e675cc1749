"""Models: the networks, created by name: segmenter, shape auto-encoder and the two discriminators.

Imports the foundation (``spar_core.errors``) and, for the 2.5D input's slice stride, ``spar_core.data.slicing``;
no other stage.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from spar_core.errors import SparError
from spar_core.models.discriminators import (
    CodeDiscriminator,
    CodeDiscriminatorConfig,
    MaskDiscriminator,
    MaskDiscriminatorConfig,
)
from spar_core.models.shape_ae import ShapeAEConfig, ShapeAutoEncoder, ShapeDecoder, ShapeEncoder
from spar_core.models.unet import UNet, UNetConfig

MODELS: dict[str, type[nn.Module]] = {
    "unet": UNet,
    "shape_ae": ShapeAutoEncoder,
    "code_discriminator": CodeDiscriminator,
    "mask_discriminator": MaskDiscriminator,
}


def build_model(name: str, cfg: Any) -> nn.Module:
    """The model registered as ``name``, built from its config dataclass.

    Raises:
        SparError: unknown ``name`` (the message lists the valid ones), or ``cfg`` of the wrong type.
    """
    try:
        cls = MODELS[name]
    except KeyError:
        raise SparError(f"model {name!r} is unknown; expected one of {', '.join(MODELS)}") from None
    expected = cls.config_class  # type: ignore[attr-defined]
    if not isinstance(cfg, expected):
        raise SparError(f"model {name!r}: cfg must be a {expected.__name__}, got {type(cfg).__name__}")
    return cls(cfg)


__all__ = [
    "MODELS",
    "build_model",
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
