"""One contract for every network (forward shapes at several resolutions, backward, save/load), plus ill cases.

Adding a model is one row in ``CASES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest
import torch
from torch import Tensor, nn

from spar_core.errors import SparError
from spar_core.models import (
    CodeDiscriminator,
    CodeDiscriminatorConfig,
    MaskDiscriminator,
    MaskDiscriminatorConfig,
    ShapeAEConfig,
    ShapeAutoEncoder,
    ShapeEncoder,
    UNet,
    UNetConfig,
)

B, C, BASE, LATENT = 2, 3, 4, 16
UNET_DEPTH, AE_DEPTH = 3, 2
RESOLUTIONS = [(32, 32), (64, 64), (32, 64)]

UNET = UNetConfig(in_channels=1, num_classes=C, base_channels=BASE, depth=UNET_DEPTH)
AE = ShapeAEConfig(num_classes=C, base_channels=BASE, depth=AE_DEPTH, latent_channels=LATENT)


def _probs(h: int, w: int) -> Tensor:
    return torch.softmax(torch.randn(B, C, h, w), dim=1)


def _latent_hw(h: int, w: int) -> tuple[int, int]:
    return h // 2**AE_DEPTH, w // 2**AE_DEPTH


@dataclass
class Case:
    """A model built for an (H, W) slice, the inputs it takes, and the shape it must return."""

    name: str
    build: Callable[[int, int], nn.Module]
    inputs: Callable[[int, int], tuple[Tensor, ...]]
    out_shape: Callable[[int, int], tuple[int, ...]]


CASES = [
    Case("unet", lambda h, w: UNet(UNET),
         lambda h, w: (torch.randn(B, 1, h, w),), lambda h, w: (B, C, h, w)),
    Case("shape_ae", lambda h, w: ShapeAutoEncoder(AE),
         lambda h, w: (_probs(h, w),), lambda h, w: (B, C, h, w)),
    Case("shape_encoder", lambda h, w: ShapeEncoder(AE),
         lambda h, w: (_probs(h, w),), lambda h, w: (B, LATENT, *_latent_hw(h, w))),
    Case("code_discriminator", lambda h, w: CodeDiscriminator(CodeDiscriminatorConfig(LATENT, _latent_hw(h, w))),
         lambda h, w: (torch.randn(B, LATENT, *_latent_hw(h, w)),), lambda h, w: (B,)),
    Case("mask_discriminator", lambda h, w: MaskDiscriminator(MaskDiscriminatorConfig(C, False, BASE, 3)),
         lambda h, w: (_probs(h, w),), lambda h, w: (B,)),
    Case("mask_discriminator+image", lambda h, w: MaskDiscriminator(MaskDiscriminatorConfig(C, True, BASE, 3)),
         lambda h, w: (_probs(h, w), torch.randn(B, 1, h, w)), lambda h, w: (B,)),
]


@pytest.fixture(params=CASES, ids=lambda c: c.name)
def case(request: pytest.FixtureRequest) -> Case:
    torch.manual_seed(0)
    return request.param


@pytest.mark.parametrize("hw", RESOLUTIONS, ids=lambda hw: f"{hw[0]}x{hw[1]}")
def test_output_shape(case: Case, hw: tuple[int, int]) -> None:
    model = case.build(*hw)
    out = model(*case.inputs(*hw))
    assert tuple(out.shape) == case.out_shape(*hw)
    assert torch.isfinite(out).all()


def test_every_parameter_gets_a_finite_gradient(case: Case) -> None:
    model = case.build(32, 32).train()
    model(*case.inputs(32, 32)).pow(2).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


def test_state_dict_round_trip(case: Case, tmp_path) -> None:
    inputs = case.inputs(32, 32)
    model = case.build(32, 32)
    model(*inputs)  # one train-mode pass, so BN running statistics are not the defaults
    model.eval()
    torch.save(model.state_dict(), tmp_path / "m.pt")
    torch.manual_seed(1)
    fresh = case.build(32, 32)
    fresh.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(model(*inputs), fresh(*inputs))


@pytest.mark.parametrize("hw", RESOLUTIONS, ids=lambda hw: f"{hw[0]}x{hw[1]}")
def test_pooled_codes_are_the_max_of_the_latent_map(hw: tuple[int, int]) -> None:
    ae = ShapeAutoEncoder(AE).eval()
    mask = _probs(*hw)
    codes = ae.pooled_codes(mask)
    assert codes.shape == (B, LATENT)
    assert torch.equal(codes, ae.encode(mask).amax(dim=(2, 3)))


def test_unet_works_at_any_multiple_of_2_pow_depth() -> None:
    unet = UNet(UNetConfig(num_classes=C, base_channels=BASE, depth=4)).eval()
    with torch.no_grad():
        assert unet(torch.randn(1, 1, 48, 80)).shape == (1, C, 48, 80)


def test_paper_sized_code_discriminator_halves_down_to_1x1() -> None:
    d = CodeDiscriminator(CodeDiscriminatorConfig(latent_channels=512, spatial=8))
    assert len(d.blocks) == 3 and d.head.in_features == 64  # 512×8×8 → 256×4×4 → 128×2×2 → 64×1×1


def test_every_model_is_built_from_its_own_config_class() -> None:
    cfgs = {UNet: UNET, ShapeAutoEncoder: AE, CodeDiscriminator: CodeDiscriminatorConfig(LATENT, 8),
            MaskDiscriminator: MaskDiscriminatorConfig(C, False, BASE, 2)}
    for cls, cfg in cfgs.items():
        assert cls.config_class is type(cfg) and isinstance(cls(cfg), cls)


ILL_CONFIGS = [
    (lambda: UNetConfig(depth=0), "UNetConfig.depth"),
    (lambda: UNetConfig(base_channels=-4), "UNetConfig.base_channels"),
    (lambda: UNetConfig(num_classes=1), "UNetConfig.num_classes"),
    (lambda: ShapeAEConfig(depth=0), "ShapeAEConfig.depth"),
    (lambda: ShapeAEConfig(latent_channels=-1), "ShapeAEConfig.latent_channels"),
    (lambda: CodeDiscriminatorConfig(latent_channels=0), "CodeDiscriminatorConfig.latent_channels"),
    (lambda: CodeDiscriminatorConfig(spatial=0), "CodeDiscriminatorConfig.spatial"),
    (lambda: MaskDiscriminatorConfig(base_channels=-2), "MaskDiscriminatorConfig.base_channels"),
    (lambda: MaskDiscriminatorConfig(depth=0), "MaskDiscriminatorConfig.depth"),
]


@pytest.mark.parametrize("make, match", ILL_CONFIGS)
def test_bad_config_raises_naming_the_argument(make: Callable[[], object], match: str) -> None:
    with pytest.raises(SparError, match=match):
        make()


ILL_INPUTS = [
    (lambda: UNet(UNET)(torch.randn(1, 1, 36, 32)), r"36×32.*2\*\*depth = 8"),
    (lambda: UNet(UNET)(torch.randn(1, 2, 32, 32)), r"\(B, 1, H, W\)"),
    (lambda: ShapeEncoder(AE)(torch.randn(1, C, 30, 32)), r"30×32.*2\*\*depth = 4"),
    (lambda: CodeDiscriminator(CodeDiscriminatorConfig(LATENT, 8))(torch.randn(1, LATENT, 4, 4)), "spatial"),
    (lambda: MaskDiscriminator(MaskDiscriminatorConfig(C, True))(torch.randn(1, C, 32, 32)), "with_image"),
]


@pytest.mark.parametrize("run, match", ILL_INPUTS)
def test_bad_input_raises_naming_size_and_depth(run: Callable[[], object], match: str) -> None:
    with pytest.raises(SparError, match=match):
        run()
