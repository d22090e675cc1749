"""One contract for the four regularizers: L_reg's value and where its gradient goes, the D step, ill cases."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import Tensor, nn

from spar_core.errors import SparError
from spar_core.models import (
    CodeDiscriminatorConfig,
    MaskDiscriminatorConfig,
    ShapeAEConfig,
    ShapeAutoEncoder,
    UNet,
    UNetConfig,
)
from spar_core.training.regularizers import REGULARIZERS, Regularizer, build_regularizer

B, C, S, LAM = 2, 3, 32, 1e-2
KEYS = ["baseline", "adversarial", "shape", "spar"]
REGULARIZING = ["adversarial", "shape", "spar"]  # L_reg ≠ 0
WITH_D = ["adversarial", "spar"]


@dataclass
class Setup:
    unet: UNet
    encoder: nn.Module
    reg: Regularizer
    x: Tensor
    y: Tensor  # one-hot (B, C, S, S)


def make(key: str, with_image: bool = False) -> Setup:
    torch.manual_seed(0)
    unet = UNet(UNetConfig(in_channels=1, num_classes=C, base_channels=4, depth=2))
    ae = ShapeAutoEncoder(ShapeAEConfig(num_classes=C, base_channels=4, depth=2, latent_channels=16))
    reg = build_regularizer(
        key, num_classes=C, encoder=ae.encoder,
        code_disc_cfg=CodeDiscriminatorConfig(latent_channels=16, spatial=S // 4),
        mask_disc_cfg=MaskDiscriminatorConfig(num_classes=C, with_image=with_image, base_channels=4, depth=2),
    )
    x = torch.randn(B, 1, S, S)
    y = nn.functional.one_hot(torch.randint(0, C, (B, S, S)), C).permute(0, 3, 1, 2).float()
    return Setup(unet, ae.encoder, reg, x, y)


def snapshot(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def same(module: nn.Module, before: dict[str, Tensor]) -> bool:
    return all(torch.equal(v, before[k]) for k, v in module.state_dict().items())


@pytest.fixture(params=KEYS)
def setup(request: pytest.FixtureRequest) -> Setup:
    return make(request.param)


def test_registry_order_and_info() -> None:
    assert list(REGULARIZERS) == KEYS
    for key, cls in REGULARIZERS.items():
        assert cls.info.key == key
        assert cls.info.needs_shape_encoder == (key in ("shape", "spar"))
        assert cls.info.has_discriminator == (key in WITH_D)


def test_segmenter_term_is_a_finite_scalar(setup: Setup) -> None:
    probs = torch.softmax(setup.unet(setup.x), dim=1)
    term = setup.reg.segmenter_term(probs, setup.y, setup.x)
    assert term.dim() == 0 and torch.isfinite(term)


def test_baseline_term_is_zero() -> None:
    s = make("baseline")
    term = s.reg.segmenter_term(torch.softmax(s.unet(s.x), 1), s.y, s.x)
    assert term.item() == 0.0 and term.grad_fn is None


def test_shape_term_is_zero_for_a_perfect_prediction_only() -> None:
    s = make("shape")
    assert s.reg.segmenter_term(s.y.clone(), s.y).item() == 0.0
    assert s.reg.segmenter_term(torch.softmax(s.unet(s.x), 1), s.y).item() > 0.0


@pytest.mark.parametrize("key", REGULARIZING)
def test_gradient_flows_through_frozen_F_to_every_unet_parameter(key: str) -> None:
    s = make(key)
    f_before = snapshot(s.encoder)
    probs = torch.softmax(s.unet(s.x), dim=1)
    (LAM * s.reg.segmenter_term(probs, s.y, s.x)).backward()  # L_reg alone, no cross-entropy
    for name, p in s.unet.named_parameters():
        assert p.grad is not None and p.grad.norm() > 0, name
    assert all(p.grad is None for p in s.encoder.parameters())
    unet_before = snapshot(s.unet)
    torch.optim.Adam(s.unet.parameters(), lr=1e-3).step()
    assert not same(s.unet, unet_before)
    assert same(s.encoder, f_before)  # weights and BN statistics bit-identical


@pytest.mark.parametrize("key, with_image", [("adversarial", False), ("adversarial", True), ("spar", False)],
                         ids=["adversarial", "adversarial+image", "spar"])
def test_discriminator_step_changes_only_the_discriminator(key: str, with_image: bool) -> None:
    s = make(key, with_image)
    probs = torch.softmax(s.unet(s.x), dim=1)
    unet_before, f_before, d_before = snapshot(s.unet), snapshot(s.encoder), snapshot(s.reg.discriminator)
    opt = torch.optim.Adam(s.reg.discriminator_parameters(), lr=1e-2)
    loss = s.reg.discriminator_loss(probs.detach(), s.y, s.x)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    opt.step()
    for name, p in s.reg.discriminator.named_parameters():
        assert not torch.equal(p, d_before[name]), name
    assert same(s.unet, unet_before) and same(s.encoder, f_before)
    assert all(p.grad is None for p in s.unet.parameters())


def test_discriminator_loss_never_reaches_the_segmenter() -> None:
    s = make("spar")
    probs = torch.softmax(s.unet(s.x), dim=1)
    s.reg.discriminator_loss(probs, s.y).backward()  # caller forgot .detach()
    assert all(p.grad is None for p in s.unet.parameters())


def test_F_is_not_a_parameter_and_stays_in_eval(setup: Setup) -> None:
    reg = setup.reg
    f_ids = {id(p) for p in setup.encoder.parameters()}
    assert not f_ids & {id(p) for p in reg.parameters()}
    assert {id(p) for p in reg.parameters()} == {id(p) for p in reg.discriminator_parameters()}
    assert (reg.discriminator is None) == (not reg.info.has_discriminator)
    if not reg.info.needs_shape_encoder:
        assert reg.encoder is None  # F is left untouched by methods that do not use it
        return
    assert reg.encoder is setup.encoder
    reg.train()
    assert not setup.encoder.training
    assert all(not p.requires_grad for p in setup.encoder.parameters())
    assert all(k.startswith("discriminator.") for k in reg.state_dict())  # F is saved with the shape AE


def test_methods_without_discriminator_have_zero_discriminator_loss() -> None:
    for key in ("baseline", "shape"):
        s = make(key)
        assert s.reg.discriminator_parameters() == []
        assert s.reg.discriminator_loss(s.y, s.y).item() == 0.0


def test_unknown_method_lists_the_valid_ones() -> None:
    with pytest.raises(SparError, match="'unet_plus'.*baseline, adversarial, shape, spar"):
        build_regularizer("unet_plus", num_classes=C, encoder=None)


@pytest.mark.parametrize("key", ["shape", "spar"])
def test_methods_using_F_need_an_encoder(key: str) -> None:
    with pytest.raises(SparError, match=f"{key}.*encoder"):
        build_regularizer(key, num_classes=C, encoder=None, code_disc_cfg=CodeDiscriminatorConfig(16, 8))


def test_mismatched_configs_raise() -> None:
    enc = ShapeAutoEncoder(ShapeAEConfig(num_classes=C, base_channels=4, depth=2, latent_channels=16)).encoder
    with pytest.raises(SparError, match="code_disc_cfg is required"):
        build_regularizer("spar", num_classes=C, encoder=enc)
    with pytest.raises(SparError, match="latent_channels"):
        build_regularizer("spar", num_classes=C, encoder=enc, code_disc_cfg=CodeDiscriminatorConfig(32, 8))
    with pytest.raises(SparError, match="num_classes"):
        build_regularizer("shape", num_classes=C + 1, encoder=enc)
    with pytest.raises(SparError, match="mask_disc_cfg.num_classes"):
        build_regularizer("adversarial", num_classes=C, encoder=None, mask_disc_cfg=MaskDiscriminatorConfig(C + 1))
    with pytest.raises(SparError, match="probs"):
        make("shape").reg.segmenter_term(torch.rand(B, C, S, S), torch.rand(B, C + 1, S, S))
