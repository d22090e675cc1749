"""Graded corruptions of any exam, for robustness studies: the phantoms' MR appearance models used as operators.

Five kinds, each at severities 0 (the exam as it is) to 4:

| kind | what changes | severity 1 → 4 |
|---|---|---|
| ``noise`` | Rician noise: complex Gaussian noise added to the magnitude image, then the magnitude | SNR 20, 10, 5, 2.5 |
| ``ghosting`` | motion ghosts along the in-plane phase axis (:func:`~spar_core.data.phantoms.appearance.motion_ghosts`): every 4th k-space line shifted | 2, 4, 7, 10 mm |
| ``bias`` | a smooth multiplicative coil field (:func:`~spar_core.data.phantoms.appearance.bias_field`) | ±15, 30, 50, 80 % |
| ``gamma`` | contrast: intensities (min–max scaled) raised to a power | γ 1.5, 2, 2.5, 3 |
| ``thick_slices`` | k consecutive slices averaged (a thicker acquisition), repeated back on the grid | k 2, 3, 4, 6 |

The grid, the affine and therefore the labels never change, so a corrupted exam is scored against its own
truth. Every corruption is seeded from (seed, case, kind, severity): the same for every method.
"""

from __future__ import annotations

import hashlib

import numpy as np
import scipy.fft

from spar_core.data.phantoms.appearance import bias_field, motion_ghosts
from spar_core.errors import SparError

CORRUPTIONS: tuple[str, ...] = ("noise", "ghosting", "bias", "gamma", "thick_slices")
SEVERITIES: tuple[int, ...] = (0, 1, 2, 3, 4)
LEVELS: dict[str, tuple[float, ...]] = {  # the parameter at severities 1..4
    "noise": (20.0, 10.0, 5.0, 2.5),  # SNR: mean body signal / noise σ
    "ghosting": (2.0, 4.0, 7.0, 10.0),  # mm of motion on the ghost lines
    "bias": (0.15, 0.3, 0.5, 0.8),  # half-range of the field
    "gamma": (1.5, 2.0, 2.5, 3.0),
    "thick_slices": (2.0, 3.0, 4.0, 6.0),  # slices averaged
}
UNITS = {"noise": "SNR", "ghosting": "mm", "bias": "± fraction", "gamma": "γ", "thick_slices": "slices"}
GHOST_PERIOD = 4


def level(kind: str, severity: int) -> float | None:
    """The parameter a (kind, severity) applies (None at severity 0).

    Raises:
        SparError: an unknown kind or a severity outside 0..4.
    """
    if kind not in CORRUPTIONS:
        raise SparError(f"corruption {kind!r}: expected one of {', '.join(CORRUPTIONS)}")
    if isinstance(severity, bool) or severity not in SEVERITIES:
        raise SparError(f"severity {severity!r}: expected an integer in 0..{SEVERITIES[-1]}")
    return None if severity == 0 else LEVELS[kind][severity - 1]


def _rng(seed: int, case: str, kind: str, severity: int) -> np.random.Generator:
    words = np.frombuffer(hashlib.sha256(f"{seed}|{case}|{kind}|{severity}".encode()).digest()[:16], np.uint32)
    return np.random.default_rng(words.tolist())


def _in_plane(image: np.ndarray, slice_axis: int) -> tuple[np.ndarray, tuple[int, int]]:
    """``image`` with the slice axis last, and the two in-plane axes (for moving it back)."""
    return np.moveaxis(image, slice_axis, -1), tuple(a for a in range(3) if a != slice_axis)  # type: ignore


def corrupt(image: np.ndarray, spacing: tuple[float, float, float], slice_axis: int, kind: str, severity: int, *,
            case: str = "", seed: int = 0) -> np.ndarray:
    """``image`` (X, Y, Z) corrupted by ``kind`` at ``severity`` (a new float32 array; 0 returns a copy).

    Raises:
        SparError: an unknown kind or severity, or an image that is not 3D.
    """
    value = level(kind, severity)
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3:
        raise SparError(f"corrupt: image has shape {image.shape}; expected a 3D volume")
    if value is None:
        return image.copy()
    rng = _rng(seed, case, kind, severity)
    body = image[image > 0.2 * float(image.max())]
    body_mean = float(body.mean()) if body.size else 1.0
    if kind == "noise":
        sigma = body_mean / value
        noise = rng.standard_normal((2, *image.shape), dtype=np.float32) * np.float32(sigma)
        return np.sqrt((image + noise[0]) ** 2 + noise[1] ** 2)
    if kind == "bias":
        return image * bias_field(rng, image.shape, value)
    if kind == "gamma":
        lo, hi = float(image.min()), float(image.max())
        scaled = (image - lo) / max(hi - lo, 1e-6)
        return (lo + (hi - lo) * scaled ** np.float32(value)).astype(np.float32)
    moved, plane = _in_plane(image, slice_axis)
    if kind == "ghosting":
        k = scipy.fft.fft2(moved, axes=(0, 1), norm="ortho")
        in_plane_spacing = (spacing[plane[0]], spacing[plane[1]])
        k = motion_ghosts(k, rng, axis=int(rng.integers(0, 2)), spacing=in_plane_spacing, period=GHOST_PERIOD,
                          shift_mm=value)
        out = np.abs(scipy.fft.ifft2(k, axes=(0, 1), norm="ortho")).astype(np.float32)
    else:  # thick_slices: blocks of k slices averaged, each slice of a block given the block's mean
        k_slices = int(value)
        n = moved.shape[-1]
        out = np.empty_like(moved)
        for start in range(0, n, k_slices):
            out[..., start:start + k_slices] = moved[..., start:start + k_slices].mean(axis=-1, keepdims=True)
    return np.ascontiguousarray(np.moveaxis(out, -1, slice_axis))
