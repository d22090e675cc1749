"""Batched random augmentation of slices on device: an affine (scaling, rotation, shifting) of slices and their
masks, and an intensity change (gamma, contrast) of the slices alone.

The paper augments with random scaling, rotation and shifting. Here one affine per sample is built from a
CPU ``torch.Generator`` (so a seed gives the same batch on CPU and GPU) and applied to the whole batch at once
with ``affine_grid`` + ``grid_sample`` on the tensors' device: image and mask share the sampling grid, so
they move identically; the mask is sampled with nearest neighbour so it stays a valid label map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from spar_core.errors import SparError


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random affine; each parameter is drawn uniformly in [-range, +range] per sample.

    Attributes:
        scale: maximum relative zoom, e.g. 0.1 -> zoom factor in [0.9, 1.1].
        rotation_deg: maximum rotation in degrees.
        shift: maximum translation along each axis, as a fraction of the image side.
        p: probability that a sample is augmented at all (otherwise it is returned unchanged).
        gamma: intensity gamma drawn log-uniformly in [1 / (1 + gamma), 1 + gamma] per slice (nnU-Net draws
            0.7–1.5); 0 = off. Another scanner's contrast, not another shape.
        contrast: intensities scaled about the slice mean by a factor in [1 − contrast, 1 + contrast]; 0 = off.
    """

    scale: float = 0.1
    rotation_deg: float = 10.0
    shift: float = 0.1
    p: float = 1.0
    gamma: float = 0.0
    contrast: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.scale < 1.0:
            raise SparError(f"AugmentConfig scale={self.scale}: expected 0 <= scale < 1 (relative zoom)")
        if not 0.0 <= self.rotation_deg <= 180.0:
            raise SparError(f"AugmentConfig rotation_deg={self.rotation_deg}: expected degrees in [0, 180]")
        if not 0.0 <= self.shift <= 1.0:
            raise SparError(f"AugmentConfig shift={self.shift}: expected a fraction of the image in [0, 1]")
        if not 0.0 <= self.p <= 1.0:
            raise SparError(f"AugmentConfig p={self.p}: expected a probability in [0, 1]")
        if not 0.0 <= self.gamma <= 4.0:
            raise SparError(f"AugmentConfig gamma={self.gamma}: expected 0 (off) to 4")
        if not 0.0 <= self.contrast < 1.0:
            raise SparError(f"AugmentConfig contrast={self.contrast}: expected 0 <= contrast < 1")

    @property
    def is_identity(self) -> bool:
        """True when no sample can change: all ranges zero or p == 0."""
        return self.p == 0.0 or (self.scale == 0.0 and self.rotation_deg == 0.0 and self.shift == 0.0)


def random_affines(
    batch: int, height: int, width: int, cfg: AugmentConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample per-sample affines as ``affine_grid`` matrices, on the CPU.

    Returns:
        theta (B, 2, 3) float32 mapping output to input normalized coordinates, and applied (B,) bool.
        Always draws 5 numbers per sample, so the random stream does not depend on ``cfg``.
    """
    u = torch.rand(batch, 5, generator=generator, dtype=torch.float64) * 2 - 1  # (B, 5) in [-1, 1)
    zoom = 1 + cfg.scale * u[:, 0]
    angle = math.radians(cfg.rotation_deg) * u[:, 1]
    shift_x, shift_y = 2 * cfg.shift * u[:, 2], 2 * cfg.shift * u[:, 3]  # normalized coords span 2
    applied = (u[:, 4] + 1) / 2 < cfg.p
    # Output pixel -> input pixel: rotate by -angle and shrink by the zoom. Expressed in normalized
    # coordinates (x scaled by W/2, y by H/2), the off-diagonal terms carry the aspect ratio H≠W.
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [
            torch.stack([cos, -sin * height / width, shift_x], dim=1),
            torch.stack([sin * width / height, cos, shift_y], dim=1),
        ],
        dim=1,
    )  # (B, 2, 3)
    identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    theta = torch.where(applied[:, None, None], theta, identity)
    return theta.float(), applied


def augment_batch(
    images: torch.Tensor, labels: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One random affine per sample, applied identically to images and labels, on their device.

    Args:
        images: (B, C, H, W) float, e.g. normalized slices in [0, 1].
        labels: (B, H, W) integer label maps on the same grid.
        cfg: ranges of zoom, rotation and shift, and the per-sample probability.
        generator: CPU generator the parameters are drawn from (then moved to the device).

    Returns:
        images (B, C, H, W) resampled bilinearly, zeros outside the source; labels (B, H, W) in the input
        dtype, resampled by nearest neighbour, so they only take values present before (and 0 outside).
        Samples that are not augmented are returned bit for bit; with an identity ``cfg`` the inputs are
        returned as they are.
    """
    if images.dim() != 4 or labels.dim() != 3:
        raise ValueError(
            f"images {tuple(images.shape)}, labels {tuple(labels.shape)}: expected (B, C, H, W) and (B, H, W)"
        )
    b, _, h, w = images.shape
    if labels.shape != (b, h, w):
        raise ValueError(f"labels have shape {tuple(labels.shape)}: expected {(b, h, w)} to match images")
    if not images.is_floating_point():
        raise ValueError(f"images have dtype {images.dtype}: expected a float tensor")
    theta, applied = random_affines(b, h, w, cfg, generator)
    if cfg.is_identity or not applied.any():
        return images, labels
    theta, applied = theta.to(images.device), applied.to(images.device)
    grid = F.affine_grid(theta, [b, 1, h, w], align_corners=False)  # (B, H, W, 2)
    warped = F.grid_sample(
        images, grid.to(images.dtype), mode="bilinear", padding_mode="zeros", align_corners=False
    )  # (B, C, H, W)
    # grid_sample has no integer kernels; float32 holds labels exactly below 2**24.
    warped_labels = F.grid_sample(
        labels[:, None].to(torch.float32), grid, mode="nearest", padding_mode="zeros", align_corners=False
    )[:, 0].to(labels.dtype)  # (B, H, W)
    images = torch.where(applied[:, None, None, None], warped, images)
    labels = torch.where(applied[:, None, None], warped_labels, labels)
    return images, labels


def augment_intensity(images: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """A random gamma and contrast per sample of images (B, C, H, W) in [0, 1]; the result stays in [0, 1].

    With ``gamma`` and ``contrast`` both 0 the images are returned as they are and nothing is drawn from
    ``generator`` (runs without intensity augmentation keep their random stream).
    """
    if cfg.gamma == 0.0 and cfg.contrast == 0.0:
        return images
    u = torch.rand(images.shape[0], 2, generator=generator, dtype=torch.float64) * 2 - 1  # (B, 2) in [-1, 1)
    gamma = torch.exp(math.log1p(cfg.gamma) * u[:, 0]).to(images.device, images.dtype)[:, None, None, None]
    factor = (1 + cfg.contrast * u[:, 1]).to(images.device, images.dtype)[:, None, None, None]
    out = images.clamp(0.0, 1.0) ** gamma
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    return ((out - mean) * factor + mean).clamp(0.0, 1.0)
