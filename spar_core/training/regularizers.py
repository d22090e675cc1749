"""The four ways of regularizing the segmenter, behind one interface, chosen by name.

The segmenter's loss is ``CE(ŷ, y) + λ·L_reg``; only L_reg differs between methods:

| key           | shown as   | L_reg                                   | own discriminator       |
|---------------|------------|-----------------------------------------|-------------------------|
| `baseline`    | Base. UNet | 0                                       | —                       |
| `adversarial` | Adv. Reg.  | −log D_mask(ŷ)   (Luc et al. 2016)      | D_mask on masks         |
| `shape`       | Sh. Reg.   | ‖F(ŷ) − F(y)‖²   (Oktay et al. 2017)    | —                       |
| `spar`        | SPAR       | −log D(F(ŷ))                            | D on shape codes        |

ŷ is always the softmax output (probabilities), never the argmax or the logits. The shape encoder F is frozen
with ``requires_grad_(False)`` and kept in eval mode (BN statistics of the AE pre-training), and never run under
``torch.no_grad()``: L_reg's gradient must flow *through* F back to ŷ and the UNet.

F is shared by the regularizers of a fold and owned by the caller: it is held outside the module tree, so
``parameters()`` and ``state_dict()`` hold only the discriminator's weights (``.to()`` still moves F).

Training step, alternating as in the paper::

    probs = probabilities(unet(x))            # spar_core.models.outputs: fp32 softmax
    d_opt.zero_grad()                      # D's weights live in the regularizer
    reg.discriminator_loss(probs.detach(), y1h, x).backward(); d_opt.step()
    s_opt.zero_grad()                      # s_opt holds the UNet's parameters only
    (ce + lam * reg.segmenter_term(probs, y1h, x)).backward(); s_opt.step()

``segmenter_term``'s backward also leaves gradients on D's weights (D is on the path); the ``zero_grad``
before the next D step clears them.

Adding a method: add its facts to :data:`spar_core.methods.METHODS`, then subclass ``Regularizer`` here with
that ``info``, a ``segmenter_term`` (and a discriminator with its ``discriminator_loss``), decorated with
``@register``. Nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn.functional import binary_cross_entropy_with_logits as bce_with_logits

from spar_core.errors import SparError
from spar_core.methods import METHODS, Method
from spar_core.models import (
    CodeDiscriminator,
    CodeDiscriminatorConfig,
    MaskDiscriminator,
    MaskDiscriminatorConfig,
    ShapeEncoder,
)


REGULARIZERS: dict[str, type["Regularizer"]] = {}


def register(cls: type["Regularizer"]) -> type["Regularizer"]:
    """Class decorator adding a regularizer to ``REGULARIZERS`` under ``cls.info.key`` (a key of ``METHODS``)."""
    if METHODS.get(cls.info.key) is not cls.info:
        raise ValueError(f"{cls.__name__}.info must be spar_core.methods.METHODS[{cls.info.key!r}]")
    REGULARIZERS[cls.info.key] = cls
    return cls


# BCE on logits is numerically the same as sigmoid + BCE, and stable when D is confident.
def _bce(logits: Tensor, real: bool) -> Tensor:
    return bce_with_logits(logits, torch.full_like(logits, 1.0 if real else 0.0))


def _check_pair(probs: Tensor, target_onehot: Tensor) -> Tensor:
    if probs.shape != target_onehot.shape:
        raise SparError(
            f"regularizer: probs {tuple(probs.shape)} and target_onehot {tuple(target_onehot.shape)} "
            "must both be (B, num_classes, H, W)"
        )
    return target_onehot.to(probs.dtype)


class Regularizer(nn.Module):
    """L_reg for the segmenter, and (optionally) its own discriminator with a BCE loss.

    Args:
        encoder: the pre-trained shape encoder F (frozen here, in place), or None for methods without it.
        discriminator: the method's discriminator (a submodule: its weights are this module's parameters).
    """

    info: ClassVar[Method]
    discriminator: nn.Module | None

    def __init__(self, encoder: ShapeEncoder | None = None, discriminator: nn.Module | None = None) -> None:
        super().__init__()
        if self.info.needs_shape_encoder and encoder is None:
            raise SparError(f"method {self.info.key!r} needs the pre-trained shape encoder F (encoder=None given)")
        if encoder is not None:
            encoder.requires_grad_(False).eval()
        self.__dict__["_encoder"] = encoder  # not a submodule: F is the caller's, shared and frozen
        self.discriminator = discriminator

    @classmethod
    def build(cls, parts: "Parts") -> "Regularizer":
        """Build from what ``build_regularizer`` was given; methods with a discriminator override this."""
        return cls(encoder=parts.encoder if cls.info.needs_shape_encoder else None)

    @property
    def encoder(self) -> ShapeEncoder | None:
        """The frozen shape encoder F (None for methods that do not use it)."""
        return self._encoder

    def encode(self, mask: Tensor) -> Tensor:
        """F(mask) with gradients flowing to ``mask`` (not to F): (B, C, H, W) → (B, latent, h, w)."""
        if self._encoder.training:  # someone called .train() on the shared AE: BN must keep its statistics
            self._encoder.eval()
        return self._encoder(mask)

    def segmenter_term(self, probs: Tensor, target_onehot: Tensor, image: Tensor | None = None) -> Tensor:
        """L_reg, a 0-dim tensor whose gradient flows to ``probs`` (B, C, H, W) softmax output."""
        raise NotImplementedError

    def forward(self, probs: Tensor, target_onehot: Tensor, image: Tensor | None = None) -> Tensor:
        """``reg(probs, y, x)`` is ``reg.segmenter_term(probs, y, x)``."""
        return self.segmenter_term(probs, target_onehot, image)

    def discriminator_loss(self, probs: Tensor, target_onehot: Tensor, image: Tensor | None = None) -> Tensor:
        """Discriminator BCE, real = ground truth, fake = prediction; 0 for methods without a discriminator.

        ``probs`` is detached here too, so this loss never reaches the segmenter.
        """
        return probs.new_zeros(())

    def discriminator_parameters(self) -> list[nn.Parameter]:
        """The parameters D's optimizer must get (empty without a discriminator)."""
        return [] if self.discriminator is None else list(self.discriminator.parameters())

    def train(self, mode: bool = True) -> "Regularizer":
        """Train/eval the discriminator; F stays in eval mode whatever ``mode`` is."""
        super().train(mode)
        if self._encoder is not None:
            self._encoder.eval()
        return self

    def to(self, *args: Any, **kwargs: Any) -> "Regularizer":
        """Move the discriminator and F (F is not a submodule, so ``nn.Module.to`` alone would skip it)."""
        super().to(*args, **kwargs)
        if self._encoder is not None:
            self._encoder.to(*args, **kwargs)
        return self


@register
class BaselineRegularizer(Regularizer):
    """Base. UNet: cross-entropy alone."""

    info = METHODS["baseline"]

    def segmenter_term(self, probs: Tensor, target_onehot: Tensor, image: Tensor | None = None) -> Tensor:
        return probs.new_zeros(())  # constant 0 without grad_fn; λ·0 adds nothing to the loss or its gradient


class CriticRegularizer(Regularizer):
    """A method with a discriminator ("critic") D: L_reg = −log D(ŷ), D trained on real = y vs fake = ŷ.

    Subclasses say only what D looks at, in :meth:`critic` (logits (B,)).
    """

    def critic(self, mask: Tensor, image: Tensor | None) -> Tensor:
        raise NotImplementedError

    def segmenter_term(self, probs: Tensor, target_onehot: Tensor, image: Tensor | None = None) -> Tensor:
        _check_pair(probs, target_onehot)
        return _bce(self.critic(probs, image), real=True)

    def discriminator_loss(self, probs: Tensor, target_onehot: Tensor, image: Tensor | None = None) -> Tensor:
        target = _check_pair(probs, target_onehot)
        real = self.critic(target, image)  # the truth (SPAR: z = F(y))
        fake = self.critic(probs.detach(), image)  # the prediction (SPAR: ẑ = F(ŷ)), no path to the segmenter
        return 0.5 * (_bce(real, real=True) + _bce(fake, real=False))


@register
class AdversarialRegularizer(CriticRegularizer):
    """Adv. Reg. (Luc et al. 2016): a discriminator on masks; L_reg = −log D_mask(ŷ)."""

    info = METHODS["adversarial"]
    discriminator: MaskDiscriminator

    @classmethod
    def build(cls, parts: "Parts") -> "Regularizer":
        cfg = parts.mask_disc_cfg or MaskDiscriminatorConfig(num_classes=parts.num_classes)
        if cfg.num_classes != parts.num_classes:
            raise SparError(f"method 'adversarial': mask_disc_cfg.num_classes is {cfg.num_classes}, "
                            f"expected num_classes = {parts.num_classes}")
        return cls(discriminator=MaskDiscriminator(cfg))

    def critic(self, mask: Tensor, image: Tensor | None) -> Tensor:
        return self.discriminator(mask, image if self.discriminator.cfg.with_image else None)  # (B,) logits


@register
class ShapeRegularizer(Regularizer):
    """Sh. Reg. (ACNN, Oktay et al. 2017): L_reg = ‖F(ŷ) − F(y)‖², averaged over the latent map's elements."""

    info = METHODS["shape"]

    def segmenter_term(self, probs: Tensor, target_onehot: Tensor, image: Tensor | None = None) -> Tensor:
        target = _check_pair(probs, target_onehot)
        # F(y) builds no graph (neither y nor F requires grad); F(ŷ) keeps the path back to ŷ.
        return (self.encode(probs) - self.encode(target)).pow(2).mean()  # mean over (B, latent, h, w)


@register
class SparRegularizer(CriticRegularizer):
    """SPAR: a discriminator on shape codes; L_reg = −log D(F(ŷ)), D trained on real F(y) vs fake F(ŷ)."""

    info = METHODS["spar"]
    discriminator: CodeDiscriminator

    @classmethod
    def build(cls, parts: "Parts") -> "Regularizer":
        encoder, code_disc_cfg = parts.encoder, parts.code_disc_cfg
        if code_disc_cfg is None:
            raise SparError("method 'spar': code_disc_cfg is required "
                            "(CodeDiscriminatorConfig with spatial = slice size / 2**shape_ae.depth)")
        latent = getattr(getattr(encoder, "cfg", None), "latent_channels", code_disc_cfg.latent_channels)
        if code_disc_cfg.latent_channels != latent:
            raise SparError(f"method 'spar': code_disc_cfg.latent_channels is {code_disc_cfg.latent_channels}, "
                            f"but the shape encoder outputs {latent} channels")
        return cls(encoder=encoder, discriminator=CodeDiscriminator(code_disc_cfg))

    def critic(self, mask: Tensor, image: Tensor | None) -> Tensor:
        return self.discriminator(self.encode(mask))  # D(F(mask)), (B,) logits


@dataclass(frozen=True)
class Parts:
    """What a regularizer may be built from (see :func:`build_regularizer`)."""

    num_classes: int
    encoder: ShapeEncoder | None
    code_disc_cfg: CodeDiscriminatorConfig | None
    mask_disc_cfg: MaskDiscriminatorConfig | None


def build_regularizer(
    key: str,
    *,
    num_classes: int,
    encoder: ShapeEncoder | None,
    code_disc_cfg: CodeDiscriminatorConfig | None = None,
    mask_disc_cfg: MaskDiscriminatorConfig | None = None,
) -> Regularizer:
    """The regularizer of method ``key``, with a fresh discriminator where the method has one.

    Args:
        key: one of ``REGULARIZERS`` ("baseline", "adversarial", "shape", "spar").
        num_classes: classes of the segmentation, background included.
        encoder: the fold's pre-trained shape encoder F; frozen in place (``requires_grad_(False)``, eval).
        code_disc_cfg: SPAR's code discriminator (required for "spar").
        mask_disc_cfg: the adversarial mask discriminator (default: ``MaskDiscriminatorConfig(num_classes)``).

    Raises:
        SparError: unknown ``key`` (listing the valid ones), a method needing F without ``encoder``, or configs
            that do not match ``num_classes`` / F's latent channels.
    """
    try:
        cls = REGULARIZERS[key]
    except KeyError:
        raise SparError(f"method {key!r} is unknown; expected one of {', '.join(REGULARIZERS)}") from None
    if cls.info.needs_shape_encoder:
        if encoder is None:
            raise SparError(f"method {key!r} needs the pre-trained shape encoder F (encoder=None given)")
        enc_classes = getattr(getattr(encoder, "cfg", None), "num_classes", num_classes)
        if enc_classes != num_classes:
            raise SparError(f"method {key!r}: the shape encoder takes {enc_classes} classes, "
                            f"expected num_classes = {num_classes}")
    return cls.build(Parts(num_classes, encoder, code_disc_cfg, mask_disc_cfg))

