"""From 3D exams to the network's 2D input and back: intensity normalization, slicing, square resizing.

The UNet sees S×S slices; exams come in any (H, W). A slice is zero-padded to a centred P×P square
(P = max(H, W)) and resized to S×S; ``from_square`` is the exact geometric inverse, so predictions land on
the native voxel grid where metrics are measured in mm. Resizing runs batched in torch on the tensors' device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from spar_core.errors import SparError

Mode = Literal["bilinear", "nearest"]
_INFERENCE_CHUNK = 16  # slices resized at once in slices_to_volume: bounds memory at native resolution


def normalize_intensity(image: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5) -> np.ndarray:
    """Clip an exam to its own [low_pct, high_pct] percentiles and rescale to [0, 1], float32.

    MR intensities have no absolute scale and scanners differ in gain, so each exam is normalized on its own;
    percentiles (not min/max) keep a few hot voxels from squashing the contrast. If the percentiles coincide
    the full range is used; a constant image becomes zeros.

    Raises:
        SparError: percentiles out of order, or the image holds NaN / infinite values.
    """
    if not 0.0 <= low_pct < high_pct <= 100.0:
        raise SparError(f"low_pct={low_pct}, high_pct={high_pct}: expected 0 <= low_pct < high_pct <= 100")
    image = np.asarray(image, dtype=np.float32)
    if image.size == 0:
        return image.copy()
    if not np.isfinite(image).all():
        raise SparError("image contains NaN or infinite intensities: expected finite values")
    lo, hi = np.percentile(image, [low_pct, high_pct])
    if hi <= lo:
        lo, hi = float(image.min()), float(image.max())
    if hi <= lo:
        return np.zeros_like(image)
    out = (np.clip(image, lo, hi) - lo) / (hi - lo)
    return out.astype(np.float32, copy=False)


def _check_axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise SparError(f"slice_axis={axis}: expected an integer in [0, {ndim - 1}] for a {ndim}D volume")
    return axis % ndim


def to_slices(volume: np.ndarray, axis: int) -> np.ndarray:
    """A 3D volume as a stack of 2D slices taken along ``axis``: (N, H, W), a view (no copy)."""
    return np.moveaxis(volume, _check_axis(axis, volume.ndim), 0)


def from_slices(slices: np.ndarray, axis: int) -> np.ndarray:
    """Inverse of :func:`to_slices`: put the stacking axis (0) back at ``axis``."""
    return np.moveaxis(slices, 0, _check_axis(axis, slices.ndim))


@dataclass(frozen=True)
class SquareGeometry:
    """How a native (height, width) slice maps to the network's size×size input.

    The slice is zero-padded to a centred square of side ``padded`` = max(height, width) (aspect ratio kept,
    odd remainders go to the bottom / right), then resized to size×size. All in pixels.
    """

    height: int
    width: int
    size: int

    def __post_init__(self) -> None:
        for name in ("height", "width", "size"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise SparError(f"SquareGeometry {name}={value!r}: expected a positive integer")

    @property
    def padded(self) -> int:
        """Side P of the centred square, in native pixels."""
        return max(self.height, self.width)

    @property
    def pad(self) -> tuple[int, int, int, int]:
        """Zero padding (top, bottom, left, right) in native pixels."""
        dh, dw = self.padded - self.height, self.padded - self.width
        return dh // 2, dh - dh // 2, dw // 2, dw - dw // 2


def _as_4d(x: torch.Tensor, mode: Mode) -> tuple[torch.Tensor, bool]:
    if mode not in ("bilinear", "nearest"):
        raise ValueError(f"mode={mode!r}: expected 'bilinear' or 'nearest'")
    if x.dim() not in (3, 4):
        raise ValueError(f"x has shape {tuple(x.shape)}: expected (B, C, H, W) or (B, H, W)")
    if mode == "bilinear" and not x.is_floating_point():
        raise ValueError(f"mode='bilinear' needs a float tensor, got {x.dtype}; use mode='nearest' for labels")
    return (x.unsqueeze(1), True) if x.dim() == 3 else (x, False)


def _resize(x: torch.Tensor, size: int, mode: Mode) -> torch.Tensor:
    """Resize (B, C, n, n) to (B, C, size, size); the coordinate convention is the same in both directions."""
    n = x.shape[-1]
    if n == size:
        return x
    if mode == "nearest":
        # nearest-exact samples pixel centres (floor((i + 0.5) * n / size)), symmetric under inversion.
        # interpolate has no integer kernels: labels go through float32 (exact below 2**24).
        out = F.interpolate(x.to(torch.float32), size=(size, size), mode="nearest-exact")
        return out.to(x.dtype)
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=size < n)


def to_square(x: torch.Tensor, geom: SquareGeometry, *, mode: Mode) -> torch.Tensor:
    """Native slices to the network's grid: (B, C, H, W) -> (B, C, S, S), or labels (B, H, W) -> (B, S, S).

    Zero padding to the centred P×P square, then resizing to S×S: ``"bilinear"`` (antialiased when
    shrinking) for images, ``"nearest"`` for labels, whose dtype and integer values are kept.
    """
    x4, squeezed = _as_4d(x, mode)
    if tuple(x4.shape[-2:]) != (geom.height, geom.width):
        raise ValueError(f"x has spatial shape {tuple(x4.shape[-2:])}, geom expects {(geom.height, geom.width)}")
    top, bottom, left, right = geom.pad
    out = _resize(F.pad(x4, (left, right, top, bottom)), geom.size, mode)
    return out.squeeze(1) if squeezed else out


def from_square(x: torch.Tensor, geom: SquareGeometry, *, mode: Mode) -> torch.Tensor:
    """Inverse of :func:`to_square`: (B, C, S, S) -> (B, C, H, W), or labels (B, S, S) -> (B, H, W).

    Resizes S×S back to P×P with the same coordinate convention, then crops the padding. Use ``"bilinear"``
    on probabilities or logits (and take the argmax afterwards), ``"nearest"`` on labels.
    """
    x4, squeezed = _as_4d(x, mode)
    if tuple(x4.shape[-2:]) != (geom.size, geom.size):
        raise ValueError(f"x has spatial shape {tuple(x4.shape[-2:])}, geom expects {(geom.size, geom.size)}")
    top, _, left, _ = geom.pad
    out = _resize(x4, geom.padded, mode)[..., top : top + geom.height, left : left + geom.width]
    return out.squeeze(1) if squeezed else out


def context_stride(stride: int, context_mm: float, spacing_mm: float) -> int:
    """Slices between two input slices of a 2.5D network: ``stride`` as given, or with ``context_mm`` > 0 the
    whole number of slices closest to ``context_mm`` mm at this exam's slice spacing (at least 1), so that
    exams of different slice thickness show the network neighbours at the same distance."""
    if context_mm < 0 or not np.isfinite(context_mm):
        raise SparError(f"context_mm={context_mm}: expected a distance ≥ 0 mm")
    if context_mm == 0:
        return stride
    return max(1, int(round(context_mm / float(spacing_mm))))


def with_context(slices: np.ndarray, context: int, stride: int) -> np.ndarray:
    """(N, H, W) slices as (N, 1 + 2·context, H, W): each slice between its ``context`` neighbours on each side,
    ``stride`` slices apart, in order; past either end of the stack the last slice is repeated."""
    if context < 0 or stride < 1:
        raise SparError(f"context={context}, stride={stride}: expected context ≥ 0 and stride ≥ 1")
    n = len(slices)
    offsets = np.arange(-context, context + 1) * stride
    index = np.clip(np.arange(n)[:, None] + offsets[None, :], 0, n - 1)  # (N, 1 + 2·context)
    return slices[index]


def volume_slices(
    image: np.ndarray, label: np.ndarray | None, axis: int, size: int, *, context: int = 0, stride: int = 1
) -> tuple[torch.Tensor, torch.Tensor | None, SquareGeometry]:
    """One exam as network input: normalized, sliced along ``axis``, padded and resized to size×size.

    Args:
        image: (X, Y, Z) intensities, any scale.
        label: (X, Y, Z) integer label volume on the same grid, or None at inference.
        axis: the slicing axis (the dataset's ``slice_axis``).
        size: S, the network's input side in pixels.
        context, stride: 2.5D input, see :func:`with_context` (0: the slice alone).

    Returns:
        images (N, 1 + 2·context, S, S) float32 in [0, 1], labels (N, S, S) int64 or None, and the geometry
        that :func:`slices_to_volume` needs to go back to the native grid. N is the length along ``axis``.
    """
    if image.ndim != 3:
        raise SparError(f"image has shape {image.shape}: expected a 3D volume")
    if label is not None and label.shape != image.shape:
        raise SparError(f"label has shape {label.shape}, image has {image.shape}: expected the same grid")
    slices = to_slices(normalize_intensity(image), axis)
    geom = SquareGeometry(int(slices.shape[1]), int(slices.shape[2]), int(size))
    stack = with_context(slices, context, stride) if context else slices[:, None]
    images = torch.cat([to_square(torch.from_numpy(np.ascontiguousarray(stack[i:i + _INFERENCE_CHUNK])), geom,
                                  mode="bilinear") for i in range(0, len(stack), _INFERENCE_CHUNK)])
    if label is None:
        return images, None, geom
    if not np.issubdtype(label.dtype, np.integer):
        rounded = np.rint(label)
        if not np.array_equal(rounded, label):
            raise SparError("label volume has non-integer values: expected integer class labels")
        label = rounded
    label_slices = np.ascontiguousarray(to_slices(label.astype(np.int64, copy=False), axis))
    return images, to_square(torch.from_numpy(label_slices), geom, mode="nearest"), geom


def slices_to_volume(probs: torch.Tensor, geom: SquareGeometry, axis: int) -> np.ndarray:
    """Per-slice class probabilities (N, C, S, S) back to a native label volume (argmax after resizing).

    Resizing probabilities (not labels) keeps boundaries smooth on the finer native grid. Works in chunks of
    slices so memory stays bounded at native resolution. Returns an integer array (uint8 when C <= 256) with
    the slice index at ``axis``, i.e. the shape of the source volume.
    """
    if probs.dim() != 4:
        raise ValueError(f"probs has shape {tuple(probs.shape)}: expected (N, C, S, S)")
    n, c = probs.shape[:2]
    out = np.empty((n, geom.height, geom.width), dtype=np.min_scalar_type(max(c - 1, 0)))
    with torch.no_grad():
        for start in range(0, n, _INFERENCE_CHUNK):
            chunk = probs[start : start + _INFERENCE_CHUNK].float()
            native = from_square(chunk, geom, mode="bilinear").argmax(dim=1)  # (b, H, W)
            out[start : start + len(chunk)] = native.cpu().numpy()
    return from_slices(out, axis)
