"""Graded corruptions of any exam, for robustness studies: the phantoms' MR appearance models used as operators,
another scanner's contrast and resolution, and another placement of the field of view.

Seven kinds, each at severities 0 (the exam as it is) to 4; the two-sided kinds (``gamma``, ``fov_shift``) also
take -1 to -4, the other direction:

| kind | what changes | severity 1 → 4 (−1 → −4) |
|---|---|---|
| ``noise`` | Rician noise: complex Gaussian noise added to the magnitude image, then the magnitude | SNR 20, 10, 5, 2.5 |
| ``ghosting`` | motion ghosts along the in-plane phase axis (:func:`~spar_core.data.phantoms.appearance.motion_ghosts`): every 4th k-space line shifted | 2, 4, 7, 10 mm |
| ``bias`` | a smooth multiplicative coil field (:func:`~spar_core.data.phantoms.appearance.bias_field`) | ±15, 30, 50, 80 % |
| ``gamma`` | contrast: intensities (min–max scaled) raised to a power | γ 1.5, 2, 2.5, 3 (1/1.5 … 1/3) |
| ``thick_slices`` | k consecutive slices averaged (a thicker acquisition), repeated back on the grid | k 2, 3, 4, 6 |
| ``low_res`` | a coarser in-plane acquisition: each slice averaged down by a factor, then interpolated back (blur) | × 1.5, 2, 3, 4 |
| ``fov_shift`` | the content moved in the slice plane, toward the head (toward the feet), by the level along the in-plane axis nearest head–feet and a seeded third of it at most along the other; the field of view's new part filled with the exam's own background | 7.5, 15, 30, 45 mm |
| ``fov_mirror`` | as ``fov_shift``, the new part filled with the exam's own content mirrored at the old border: no edge, no band, nothing a model could count from | 7.5, 15, 30, 45 mm |

The grid and the affine never change. ``fov_shift`` and ``fov_mirror`` move the labels with the content
(:func:`corrupt_label`; the mirrored part is background: it holds no real anatomy): anatomy moved inside the field
of view, as another placement of it would; the other kinds leave them as they are. :func:`content_extent` says
which part of the grid still shows the exam's own content. A corrupted exam is scored against its own (moved) truth. Every corruption is seeded from
(seed, case, kind, severity): the same for every method.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
import scipy.fft
import scipy.ndimage

from spar_core.data.phantoms.appearance import bias_field, motion_ghosts
from spar_core.errors import SparError

CORRUPTIONS: tuple[str, ...] = ("noise", "ghosting", "bias", "gamma", "thick_slices", "low_res", "fov_shift",
                                 "fov_mirror")
SEVERITIES: tuple[int, ...] = (0, 1, 2, 3, 4)
MOVES: frozenset[str] = frozenset({"fov_shift", "fov_mirror"})  # the content (and its truth) moves in the grid
TWO_SIDED: frozenset[str] = frozenset({"gamma", *MOVES})  # severity -s: the other direction
LEVELS: dict[str, tuple[float, ...]] = {  # the parameter at severities 1..4
    "noise": (20.0, 10.0, 5.0, 2.5),  # SNR: mean body signal / noise σ
    "ghosting": (2.0, 4.0, 7.0, 10.0),  # mm of motion on the ghost lines
    "bias": (0.15, 0.3, 0.5, 0.8),  # half-range of the field
    "gamma": (1.5, 2.0, 2.5, 3.0),
    "thick_slices": (2.0, 3.0, 4.0, 6.0),  # slices averaged
    "low_res": (1.5, 2.0, 3.0, 4.0),  # in-plane voxel size factor
    "fov_shift": (7.5, 15.0, 30.0, 45.0),  # mm toward the head (negative severities: toward the feet)
    "fov_mirror": (7.5, 15.0, 30.0, 45.0),
}
UNITS = {"noise": "SNR", "ghosting": "mm", "bias": "± fraction", "gamma": "γ", "thick_slices": "slices",
         "low_res": "× voxel", "fov_shift": "mm toward the head", "fov_mirror": "mm toward the head"}
BACKGROUND_PERCENTILE = 5.0  # the darkest voxels of an exam: its background, drawn to fill a moved field of view
SECOND_AXIS_SHARE = 1 / 3  # fov_shift: the most the content moves along the other in-plane axis, as a share
GHOST_PERIOD = 4


def severities_of(kind: str, severities: Sequence[int]) -> list[int]:
    """The severities a study runs for ``kind``: those given, and for a two-sided kind their negatives too
    (``0,2,4`` → ``-4,-2,0,2,4``), in increasing order."""
    wanted = {int(s) for s in severities}
    if kind in TWO_SIDED:
        wanted |= {-s for s in wanted}
    return sorted(wanted)


def level(kind: str, severity: int) -> float | None:
    """The parameter a (kind, severity) applies (None at severity 0): for a negative severity of a two-sided kind,
    the other direction (γ 1/level, a shift toward the feet: −mm).

    Raises:
        SparError: an unknown kind, or a severity outside 0..4 (−4..4 for a two-sided kind).
    """
    if kind not in CORRUPTIONS:
        raise SparError(f"corruption {kind!r}: expected one of {', '.join(CORRUPTIONS)}")
    low = -SEVERITIES[-1] if kind in TWO_SIDED else 0
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) \
            or not low <= severity <= SEVERITIES[-1]:
        raise SparError(f"severity {severity!r} of {kind}: expected an integer in {low}..{SEVERITIES[-1]}")
    if severity == 0:
        return None
    value = LEVELS[kind][abs(severity) - 1]
    if severity > 0:
        return value
    return 1.0 / value if kind == "gamma" else -value


def _rng(seed: int, case: str, kind: str, severity: int) -> np.random.Generator:
    words = np.frombuffer(hashlib.sha256(f"{seed}|{case}|{kind}|{severity}".encode()).digest()[:16], np.uint32)
    return np.random.default_rng(words.tolist())


def _in_plane(image: np.ndarray, slice_axis: int) -> tuple[np.ndarray, tuple[int, int]]:
    """``image`` with the slice axis last, and the two in-plane axes (for moving it back)."""
    return np.moveaxis(image, slice_axis, -1), tuple(a for a in range(3) if a != slice_axis)  # type: ignore


def fov_offsets(shape: Sequence[int], spacing: Sequence[float], affine: np.ndarray | None, slice_axis: int,
                mm: float, rng: np.random.Generator) -> tuple[int, int, int]:
    """Voxels the content moves along each axis for a ``mm`` shift toward the head: along the in-plane axis whose
    direction is nearest head–feet (the affine's third row, RAS+), and up to a third of it, seeded, along the other
    in-plane axis; none along the slice axis. Without an affine the first in-plane axis, toward higher indices."""
    plane = [a for a in range(3) if a != slice_axis]
    affine = np.eye(4) if affine is None else np.asarray(affine, dtype=float)
    main = max(plane, key=lambda a: abs(affine[2, a]) / max(np.linalg.norm(affine[:3, a]), 1e-12))
    other = plane[0] if main == plane[1] else plane[1]
    toward_head = 1.0 if affine[2, main] >= 0 else -1.0
    offsets = [0, 0, 0]
    offsets[main] = int(round(toward_head * mm / float(spacing[main])))
    side = float(rng.uniform(-1.0, 1.0)) * SECOND_AXIS_SHARE * abs(mm)
    offsets[other] = int(round(side / float(spacing[other])))
    return offsets[0], offsets[1], offsets[2]


def _moved(volume: np.ndarray, offsets: Sequence[int], fill: np.ndarray | float) -> np.ndarray:
    """``volume`` with its content moved by integer ``offsets``; what comes into view takes ``fill`` (an array of
    the volume's shape, or a value)."""
    out = np.array(np.broadcast_to(fill, volume.shape), dtype=volume.dtype)
    src, dst = [], []
    for n, d in zip(volume.shape, offsets):
        d = int(np.clip(d, -n, n))
        src.append(slice(max(0, -d), n - max(0, d)))
        dst.append(slice(max(0, d), n - max(0, -d)))
    out[tuple(dst)] = volume[tuple(src)]
    return out


def _mirrored(volume: np.ndarray, offsets: Sequence[int]) -> np.ndarray:
    """``volume`` with its content moved by integer ``offsets``; what comes into view is the content mirrored at
    the old border (repeatedly, for a move longer than the volume)."""
    pads = [(max(0, int(d)), max(0, -int(d))) for d in offsets]
    padded = np.pad(volume, pads, mode="symmetric")
    return np.ascontiguousarray(padded[tuple(slice(after, after + n) for (_, after), n in zip(pads, volume.shape))])


def content_extent(shape: Sequence[int], spacing: Sequence[float], slice_axis: int, kind: str, severity: int, *,
                   affine: np.ndarray | None = None, case: str = "", seed: int = 0) -> tuple[tuple[int, int], ...]:
    """Per axis, the [start, stop) voxels of the corrupted exam that show its own content (the rest is fill): the
    whole grid but for a moved field of view."""
    value = level(kind, severity)
    if kind not in MOVES or value is None:
        return tuple((0, int(n)) for n in shape)
    offsets = fov_offsets(shape, spacing, affine, slice_axis, value, _rng(seed, case, kind, severity))
    return tuple((min(int(n), max(0, d)), max(0, int(n) - max(0, -d))) for n, d in zip(shape, offsets))


def corrupt_label(label: np.ndarray, spacing: tuple[float, float, float], slice_axis: int, kind: str,
                  severity: int, *, affine: np.ndarray | None = None, case: str = "", seed: int = 0) -> np.ndarray:
    """The truth of the exam that ``corrupt`` makes with the same arguments: moved with the content for
    ``fov_shift`` and ``fov_mirror`` (background where the field of view is new), a copy otherwise."""
    value = level(kind, severity)
    label = np.asarray(label)
    if kind not in MOVES or value is None:
        return label.copy()
    offsets = fov_offsets(label.shape, spacing, affine, slice_axis, value, _rng(seed, case, kind, severity))
    return _moved(label, offsets, 0)


def corrupt(image: np.ndarray, spacing: tuple[float, float, float], slice_axis: int, kind: str, severity: int, *,
            case: str = "", seed: int = 0, affine: np.ndarray | None = None) -> np.ndarray:
    """``image`` (X, Y, Z) corrupted by ``kind`` at ``severity`` (a new float32 array; 0 returns a copy).
    ``affine`` (voxel → RAS+ mm) tells ``fov_shift`` where the head is.

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
    if kind == "fov_mirror":
        return _mirrored(image, fov_offsets(image.shape, spacing, affine, slice_axis, value, rng))
    if kind == "fov_shift":
        offsets = fov_offsets(image.shape, spacing, affine, slice_axis, value, rng)
        background = np.sort(image.ravel())[: max(1, int(image.size * BACKGROUND_PERCENTILE / 100))]
        return _moved(image, offsets, rng.choice(background, size=image.shape).astype(np.float32))
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
    elif kind == "low_res":  # area-averaged down by the factor, linear interpolation back to the grid
        factor = float(value)
        size = tuple(max(1, int(round(n / factor))) for n in moved.shape[:2])
        small = np.stack([_area_down(moved[..., z], size) for z in range(moved.shape[-1])], axis=-1)
        zoom = (moved.shape[0] / size[0], moved.shape[1] / size[1], 1.0)
        out = scipy.ndimage.zoom(small, zoom, order=1, mode="nearest", grid_mode=True).astype(np.float32)
        out = out[: moved.shape[0], : moved.shape[1]]
    else:  # thick_slices: blocks of k slices averaged, each slice of a block given the block's mean
        k_slices = int(value)
        n = moved.shape[-1]
        out = np.empty_like(moved)
        for start in range(0, n, k_slices):
            out[..., start:start + k_slices] = moved[..., start:start + k_slices].mean(axis=-1, keepdims=True)
    return np.ascontiguousarray(np.moveaxis(out, -1, slice_axis))


def _area_down(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A 2D array sampled down to ``size`` after the Gaussian smoothing a coarser acquisition's point spread
    gives (scikit-image's anti-aliasing)."""
    from skimage.transform import resize

    return resize(plane, size, order=1, anti_aliasing=True, preserve_range=True).astype(np.float32)
