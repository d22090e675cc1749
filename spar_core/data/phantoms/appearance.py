"""MR simulation: tissue classes → a 2D multi-slice magnitude image.

The chain follows the acquisition: per-exam contrast (a blend of T1- and PD-like weights, marrow conversion
with age), tissue texture, partial volume over the slice thickness (sub-slices averaged), a smooth coil
sensitivity (bias) field, k-space sampling of each slice (truncation → blur and Gibbs ringing, optional
motion phase errors → ghosts along the phase-encode axis), complex Gaussian noise on the acquired samples
and the magnitude (→ Rician noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
from scipy import ndimage

from spar_core.data.phantoms.scene import Tissue

N_TISSUES = len(Tissue)

# Signal per class (fat ≈ 1000) for a T1-like and a PD-like weighting; marrow is (red, fatty).
_T1 = {Tissue.FAT: 950, Tissue.MUSCLE: 330, Tissue.TENDON: 40, Tissue.CORTEX: 30, Tissue.MARROW: (420, 880),
       Tissue.EPIPHYSIS: (560, 900), Tissue.PHYSIS: 380, Tissue.CARTILAGE: 430, Tissue.FLUID: 170, Tissue.LUNG: 25}
_PD = {Tissue.FAT: 820, Tissue.MUSCLE: 360, Tissue.TENDON: 60, Tissue.CORTEX: 45, Tissue.MARROW: (520, 780),
       Tissue.EPIPHYSIS: (600, 800), Tissue.PHYSIS: 700, Tissue.CARTILAGE: 600, Tissue.FLUID: 900, Tissue.LUNG: 35}
_TEXTURE = {Tissue.FAT: 0.04, Tissue.MUSCLE: 0.08, Tissue.MARROW: 0.12, Tissue.EPIPHYSIS: 0.10,
            Tissue.PHYSIS: 0.05, Tissue.CARTILAGE: 0.05, Tissue.FLUID: 0.03, Tissue.TENDON: 0.3}


@dataclass(frozen=True)
class Acquisition:
    """Per-exam scanner settings, all drawn from the subject's rng (see :func:`draw_acquisition`)."""

    signal: tuple[float, ...]  # mean signal per Tissue class
    pd_weight: float  # 0 = T1-like, 1 = PD-like
    bias: float  # half-range of the multiplicative bias field (0.2 = ±20 %)
    snr: float  # mean body signal / noise σ
    kept: tuple[float, float]  # fraction of k-space acquired along x, y
    phase_axis: int  # in-plane axis (0 or 1) of phase encoding
    motion: bool


def draw_acquisition(rng: np.random.Generator, age: float, snr: float, motion: bool) -> Acquisition:
    """Contrast and sampling for one exam: heterogeneous across exams, as in a multi-scanner cohort."""
    w = float(rng.uniform(0, 1))
    red_to_fat = {Tissue.MARROW: np.clip((age - 3) / 15, 0.05, 0.9) + rng.uniform(-0.08, 0.08),
                  Tissue.EPIPHYSIS: rng.uniform(0.6, 0.95)}
    gain = rng.uniform(0.8, 1.05)
    signal = np.zeros(N_TISSUES)
    for t in Tissue:
        if t == Tissue.AIR:
            continue
        a, b = np.asarray(_T1[t], float), np.asarray(_PD[t], float)
        v = (1 - w) * a + w * b
        if v.ndim:  # marrow: mix red and fatty signal
            f = float(np.clip(red_to_fat[t], 0, 1))
            v = (1 - f) * v[0] + f * v[1]
        signal[t] = float(v) * rng.uniform(0.92, 1.08) * gain
    phase_axis = int(rng.integers(0, 2))
    kept = [rng.uniform(0.85, 1.0), rng.uniform(0.85, 1.0)]
    kept[phase_axis] = rng.uniform(0.62, 0.82)
    return Acquisition(tuple(signal), w, float(rng.uniform(0.18, 0.3)), float(snr), (kept[0], kept[1]),
                       phase_axis, motion)


def acquire(tissue: np.ndarray, subslices: int, spacing: tuple[float, float, float], acq: Acquisition,
            rng: np.random.Generator) -> np.ndarray:
    """Magnitude image (nx, ny, nz) int16 from fine tissue classes (nx, ny, nz·subslices)."""
    nx, ny, nzf = tissue.shape
    nz = nzf // subslices
    signal = np.asarray(acq.signal, dtype=np.float32)[tissue].reshape(nx, ny, nz, subslices).mean(-1)
    amp_table = np.zeros(N_TISSUES, np.float32)
    for t, a in _TEXTURE.items():
        amp_table[t] = a
    amp = amp_table[tissue].reshape(nx, ny, nz, subslices).mean(-1)
    signal *= 1 + amp * _texture(rng, (nx, ny, nz))
    signal *= bias_field(rng, (nx, ny, nz), acq.bias)
    body_mean = float(signal[signal > 0.2 * signal.max()].mean())

    k = scipy.fft.fft2(signal, axes=(0, 1), norm="ortho")
    window = _sampling_window(nx, acq.kept[0])[:, None] * _sampling_window(ny, acq.kept[1])[None, :]
    k *= window[..., None].astype(np.complex64)
    if acq.motion:
        k = motion_ghosts(k, rng, acq.phase_axis, spacing)
    # Noise lives on the acquired samples only, so it is as correlated as the image; σ is the image-domain σ.
    sigma = body_mean / acq.snr / np.sqrt(float((window > 0).mean()))
    acquired = (window > 0)[..., None]
    noise = rng.standard_normal((2, nx, ny, nz), dtype=np.float32) * np.float32(sigma)
    k += (noise[0] + 1j * noise[1]) * acquired
    image = np.abs(scipy.fft.ifft2(k, axes=(0, 1), norm="ortho"))
    return np.clip(np.rint(image), 0, 32767).astype(np.int16)


def _texture(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """Zero-mean tissue heterogeneity (unit scale): a coarse mottle (~6 mm) plus a finer grain (~1.5 mm)."""
    out = np.zeros(shape, np.float32)
    for step, weight in ((12, 0.6), (3, 0.8)):
        small = rng.standard_normal((shape[0] // step + 2, shape[1] // step + 2, max(shape[2] // 2, 2)))
        zoom = [s / c for s, c in zip(shape, small.shape)]
        out += weight * ndimage.zoom(small.astype(np.float32), zoom, order=1, grid_mode=True, mode="nearest")
    return out


def bias_field(rng: np.random.Generator, shape: tuple[int, int, int], half_range: float) -> np.ndarray:
    """Smooth coil sensitivity: exp of a random quadratic polynomial, scaled to 1 ± ``half_range``."""
    u, v, w = (np.linspace(-1, 1, n, dtype=np.float32) for n in shape)
    u, v, w = u[:, None, None], v[None, :, None], w[None, None, :]
    c = rng.normal(size=7).astype(np.float32)
    field = c[0] * u + c[1] * v + 0.5 * c[2] * w + 0.6 * (c[3] * u * u + c[4] * v * v + c[5] * u * v) + 0.3 * c[6] * w * w
    lo, hi = float(field.min()), float(field.max())
    field = (field - 0.5 * (lo + hi)) / max(0.5 * (hi - lo), 1e-6)  # in [-1, 1]
    return np.exp(np.log1p(half_range) * field).astype(np.float32)


def _sampling_window(n: int, kept: float) -> np.ndarray:
    """Acquired part of one k-space axis (FFT order): the central ``kept`` fraction, edges gently tapered."""
    f = np.abs(np.fft.fftfreq(n)) * 2  # 0 at the centre of k-space, 1 at the edge
    taper = np.clip((kept - f) / 0.08, 0, 1)
    return (0.5 - 0.5 * np.cos(np.pi * taper)).astype(np.float32)


def motion_ghosts(k: np.ndarray, rng: np.random.Generator, axis: int, spacing, period: int | None = None,
                  shift_mm: float | None = None) -> np.ndarray:
    """Ghosts: every ``period``-th phase-encode line (default: drawn in 3..5) was acquired with the limb shifted
    by ``shift_mm`` (default: drawn in 4..9 mm per slice), a phase ramp on those lines; the image then holds
    copies shifted by n/period voxels along the phase axis. ``k``: (nx, ny, nz) in-plane k-space per slice."""
    n = k.shape[axis]
    period = int(rng.integers(3, 6)) if period is None else int(period)
    lines = (np.arange(n) % period) == rng.integers(0, period)
    freq = np.fft.fftfreq(n).astype(np.float32)
    for z in range(k.shape[2]):
        mm = rng.uniform(4, 9) if shift_mm is None else float(shift_mm)
        shift = mm / spacing[axis] * rng.choice([-1, 1])  # voxels
        ramp = np.where(lines, np.exp(-2j * np.pi * freq * shift), 1).astype(np.complex64)
        if axis == 0:
            k[:, :, z] *= ramp[:, None]
        else:
            k[:, :, z] *= ramp[None, :]
    return k
