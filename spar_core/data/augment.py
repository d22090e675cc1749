"""Batched random augmentation of slices on device: an affine (scaling, rotation, shifting) of slices and their
masks, and nnU-Net's intensity changes (gamma, brightness, contrast, a coarser acquisition, blur, noise) of the
slices alone.

The paper augments with random scaling, rotation and shifting. Here one affine per sample is built from a
CPU ``torch.Generator`` (so a seed gives the same batch on CPU and GPU) and applied to the whole batch at once
with ``affine_grid`` + ``grid_sample`` on the tensors' device: image and mask share the sampling grid, so
they move identically; the mask is sampled with nearest neighbour so it stays a valid label map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

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
        brightness: intensities multiplied by a factor in [1 − brightness, 1 + brightness] (nnU-Net 0.25); 0 = off.
        low_res: a coarser acquisition, the slice averaged down by a factor in [1, 1 + low_res] and interpolated
            back (nnU-Net: up to 2, i.e. 1); 0 = off.
        blur: Gaussian blur of σ in [0, blur] pixels (nnU-Net 0.5–1); 0 = off.
        noise: Gaussian noise of σ in [0, noise] (intensities span [0, 1]); 0 = off.
        p_intensity: the probability that each intensity transform is applied to a sample (nnU-Net: 0.1–0.3 per
            transform; 1 = every sample, as the gamma and contrast of earlier runs were).
    """

    scale: float = 0.1
    rotation_deg: float = 10.0
    shift: float = 0.1
    p: float = 1.0
    gamma: float = 0.0
    contrast: float = 0.0
    brightness: float = 0.0
    low_res: float = 0.0
    blur: float = 0.0
    noise: float = 0.0
    p_intensity: float = 1.0

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
        if not 0.0 <= self.brightness < 1.0:
            raise SparError(f"AugmentConfig brightness={self.brightness}: expected 0 <= brightness < 1")
        if not 0.0 <= self.low_res <= 4.0:
            raise SparError(f"AugmentConfig low_res={self.low_res}: expected 0 (off) to 4 (a factor up to 5)")
        if not 0.0 <= self.blur <= 4.0:
            raise SparError(f"AugmentConfig blur={self.blur}: expected 0 (off) to 4 pixels")
        if not 0.0 <= self.noise <= 0.5:
            raise SparError(f"AugmentConfig noise={self.noise}: expected 0 (off) to 0.5")
        if not 0.0 <= self.p_intensity <= 1.0:
            raise SparError(f"AugmentConfig p_intensity={self.p_intensity}: expected a probability in [0, 1]")

    @property
    def has_intensity(self) -> bool:
        """True when an intensity transform can change a sample."""
        return self.p_intensity > 0 and any((self.gamma, self.contrast, self.brightness, self.low_res, self.blur,
                                             self.noise))

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


def _gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """(N, 2·radius + 1) normalised 1D Gaussian kernels, one per σ (pixels); σ = 0 gives the identity kernel."""
    x = torch.arange(-radius, radius + 1, device=sigma.device, dtype=sigma.dtype)
    safe = sigma.clamp_min(1e-3)[:, None]
    k = torch.exp(-0.5 * (x[None] / safe) ** 2)
    k = torch.where(sigma[:, None] > 0, k, (x[None] == 0).to(sigma.dtype))
    return k / k.sum(dim=1, keepdim=True)


def _blur(images: torch.Tensor, sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Each sample of (B, C, H, W) blurred in-plane by its own Gaussian σ (B,) in pixels: a separable grouped
    convolution, reflect-padded, kernels ``radius`` pixels each side (one call for the whole batch)."""
    b, c, h, w = images.shape
    kernels = _gaussian_kernels(sigma, radius).repeat_interleave(c, dim=0)  # (B·C, K)
    flat = images.reshape(1, b * c, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), kernels[:, None, None, :], groups=b * c)
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect"), kernels[:, None, :, None], groups=b * c)
    return flat.reshape(b, c, h, w)


# nnU-Net's intensity transforms in the order they are applied; column k of the draws belongs to transform k
INTENSITY_TRANSFORMS: tuple[str, ...] = ("gamma", "brightness", "contrast", "low_res", "blur", "noise")


def _intensity(name: str, x: torch.Tensor, m: torch.Tensor, cfg: AugmentConfig, noise: torch.Generator
               ) -> torch.Tensor:
    """Transform ``name`` applied to the samples (N, C, H, W) it was drawn for, each at its magnitude ``m`` (N,)
    in [-1, 1) (float64 on the CPU)."""
    dev, dt = x.device, x.dtype

    def per_sample(values: torch.Tensor) -> torch.Tensor:
        return values.to(dev, dt)[:, None, None, None]

    if name == "gamma":
        return x ** per_sample(torch.exp(math.log1p(cfg.gamma) * m))
    if name == "brightness":
        return x * per_sample(1 + cfg.brightness * m)
    if name == "contrast":
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * per_sample(1 + cfg.contrast * m) + mean
    if name == "low_res":
        h, w = x.shape[-2:]
        factors = (1 + cfg.low_res * (m + 1) / 2).tolist()  # drawn on the CPU: no device synchronisation
        return torch.cat([F.interpolate(F.interpolate(x[i:i + 1], size=(max(1, round(h / f)), max(1, round(w / f))),
                                                      mode="area"), size=(h, w), mode="bilinear", align_corners=False)
                          for i, f in enumerate(factors)])
    if name == "blur":
        return _blur(x, (cfg.blur * (m + 1) / 2).to(dev, dt), max(1, math.ceil(3 * cfg.blur)))
    if name == "noise":
        field = torch.randn(x.shape, generator=noise, device=dev, dtype=dt)
        return x + field * per_sample(cfg.noise * (m + 1) / 2)
    raise ValueError(f"intensity transform {name!r}: expected one of {', '.join(INTENSITY_TRANSFORMS)}")


def augment_intensity(images: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator,
                      clock: Callable[[str], None] | None = None) -> torch.Tensor:
    """nnU-Net's intensity augmentation of slices (B, C, H, W) in [0, 1], each transform applied to a sample with
    probability ``cfg.p_intensity`` and one draw for all its channels (the neighbouring slices of one exam):
    gamma, multiplicative brightness, contrast about the mean, a coarser acquisition (area-averaged down by a
    factor, bilinear back), Gaussian blur, Gaussian noise; the result is clipped to [0, 1].

    Each transform runs on the samples drawn for it alone (nnU-Net's probabilities of 0.1–0.3 leave most of a
    batch untouched, and a blur or a noise field of the whole batch cost as much as a forward pass of the
    ``cpu`` network). The numbers are drawn from the CPU ``generator`` (the noise field from a device generator
    it seeds), so a seed gives the same parameters on every device. With every intensity range 0 the images are
    returned as they are and nothing is drawn (runs without intensity augmentation keep their random stream).
    ``clock(name)`` is called after each transform that ran (a profile's laps).
    """
    if not cfg.has_intensity:
        return images
    b = images.shape[0]
    u = torch.rand(b, 12, generator=generator, dtype=torch.float64)  # 6 coin flips, 6 magnitudes
    noise_seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
    on = u[:, :6] < cfg.p_intensity
    mag = u[:, 6:] * 2 - 1  # in [-1, 1)
    noise = torch.Generator(device=images.device).manual_seed(noise_seed)
    out = images.clamp(0.0, 1.0)
    for k, name in enumerate(INTENSITY_TRANSFORMS):
        rows = torch.nonzero(on[:, k]).flatten()
        if getattr(cfg, name) <= 0 or rows.numel() == 0:
            continue
        if rows.numel() == b:
            out = _intensity(name, out, mag[:, k], cfg, noise)
        else:
            where = rows.to(images.device)
            out = out.index_copy(0, where, _intensity(name, out.index_select(0, where), mag[rows, k], cfg, noise))
        if clock is not None:
            clock(name)
    return out.clamp(0.0, 1.0)
