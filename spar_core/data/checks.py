"""The input checks every entry point calls: voxel spacings, 3D volumes, voxel grids and label values. One
home, so that a dataset, ``spar evaluate``, post-processing, the metrics, the triage and the figures refuse the
same inputs with the same words.

Each check returns the checked value (as the type its callers compute with) or raises one
:class:`~spar_core.errors.SparError` naming the file or argument and what was expected. Torch-free.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Collection, Sequence

import numpy as np

from spar_core.errors import SparError

_COUNT = {2: "two", 3: "three"}


def dims(shape: Sequence[int]) -> str:
    """``12×10×6`` for a shape."""
    return "×".join(str(int(n)) for n in shape)


def check_spacing(spacing: Sequence[float], what: str = "spacing", ndim: int = 3) -> tuple[float, ...]:
    """``ndim`` finite, positive voxel sizes in mm, as floats.

    Raises:
        SparError: not a sequence of ``ndim`` numbers, or one of them ≤ 0, nan or inf; the message names ``what``.
    """
    count = _COUNT.get(ndim, str(ndim))
    try:
        values = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        raise SparError(f"{what}: expected {count} voxel sizes in mm, got {spacing!r}") from None
    if len(values) != ndim or not all(math.isfinite(s) and s > 0 for s in values):
        shown = tuple(spacing) if not isinstance(spacing, (str, bytes)) else spacing
        raise SparError(f"{what}: expected {count} positive voxel sizes in mm, got {shown!r}")
    return values


# mm per spatial unit a NIfTI header may declare (xyzt_units); "unknown" is read as mm, as ITK and nibabel do.
UNIT_MM = {"mm": 1.0, "meter": 1000.0, "micron": 1e-3, "unknown": 1.0}
# Voxel sizes outside this range (mm) are a header's mistake, not an exam: refused before any size derives from them.
SPACING_RANGE_MM = (1e-2, 100.0)


def header_spacing(header: Any, path: str | Path, affine: np.ndarray | None = None) -> tuple[float, float, float]:
    """The voxel sizes in mm of a NIfTI header (its first three zooms, in the spatial unit its ``xyzt_units``
    declare: metres and micrometres converted), checked, and with ``affine`` (the image's, in the same unit)
    checked against the lengths of its columns: a header whose pixdim says one size and whose affine another
    (nibabel reads a zero pixdim as 1) would give every distance in mm wrong.

    Raises:
        SparError: fewer than three zooms, one ≤ 0, nan or inf, disagreeing with the affine by more than 1 %, or
            outside ``SPACING_RANGE_MM`` once in mm; the message names ``path``.
    """
    try:
        zooms = tuple(float(z) for z in header.get_zooms()[:3])
        unit = str(header.get_xyzt_units()[0]) if hasattr(header, "get_xyzt_units") else "mm"
    except (ValueError, TypeError, KeyError) as err:
        raise SparError(f"{path}: unreadable voxel sizes or units in the header ({err})") from None
    if len(zooms) != 3 or not all(math.isfinite(z) and z > 0 for z in zooms):
        raise SparError(f"{path}: voxel sizes {zooms} in the header; expected three positive spacings in mm")
    if affine is not None:
        lengths = np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)
        if not np.allclose(lengths, zooms, rtol=1e-2):
            raise SparError(f"{path}: the header's voxel sizes (pixdim) {tuple(round(z, 6) for z in zooms)} disagree "
                            f"with its affine's {tuple(round(float(v), 6) for v in lengths)}; expected one geometry "
                            "(rewrite the file, e.g. with nibabel or 3D Slicer)")
    mm = tuple(z * UNIT_MM.get(unit, 1.0) for z in zooms)
    low, high = SPACING_RANGE_MM
    if not all(low <= z <= high for z in mm):
        shown = ", ".join(f"{z:.6g}" for z in mm)
        raise SparError(f"{path}: voxel sizes ({shown}) mm (the header's unit: {unit}); expected each between "
                        f"{low:g} and {high:g} mm: fix the header's pixdim or xyzt_units")
    return mm  # type: ignore[return-value]


def check_3d(array: np.ndarray, what: str) -> np.ndarray:
    """``array`` as an ndarray, refused unless it is 3D."""
    array = np.asarray(array)
    if array.ndim != 3:
        raise SparError(f"{what}: expected a 3D volume, got shape {array.shape}")
    return array


def squeeze_to_3d(data: np.ndarray, path: str | Path) -> np.ndarray:
    """Drop trailing singleton dimensions (X×Y×Z×1, as some tools write); anything else must be a 3D volume."""
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3 or data.size == 0:
        raise SparError(f"{path}: {data.ndim}D data of shape {dims(data.shape)}; expected a single-channel 3D volume")
    return data


def check_same_grid(shape: Sequence[int], spacing: Sequence[float], ref_shape: Sequence[int],
                    ref_spacing: Sequence[float], *, what: str, ref: str, ref_file: str | Path | None = None) -> None:
    """Refuse two volumes on different voxel grids: another shape, or voxel sizes apart by more than 0.1 %.

    ``what`` names the volume checked (its file first, e.g. ``"P.nii.gz: label"``), ``ref`` and ``ref_file``
    the one it must match (``"image"``, its path).
    """
    where = f" ({ref_file})" if ref_file is not None else ""
    if tuple(shape) != tuple(ref_shape):
        raise SparError(f"{what} shape {dims(shape)} differs from {ref} shape {dims(ref_shape)}{where}; "
                        "expected the same voxel grid")
    if not np.allclose(spacing, ref_spacing, rtol=1e-3, atol=1e-4):
        raise SparError(f"{what} voxel size {tuple(spacing)} mm differs from {ref} voxel size {tuple(ref_spacing)} "
                        f"mm{where}; expected the same voxel grid")


def check_same_affine(affine: np.ndarray, ref_affine: np.ndarray, *, what: str,
                      ref_file: str | Path | None = None) -> None:
    """Refuse a label whose voxel-to-world affine is not its image's (nnU-Net's integrity check): the same
    axis directions (cosines within 1e-3) and origin (within 1 % of the smallest voxel). Same shape and spacing
    with a flipped or shifted affine would pair each image with a mirrored or displaced mask."""
    a, b = np.asarray(affine, dtype=float), np.asarray(ref_affine, dtype=float)
    where = f" ({ref_file})" if ref_file is not None else ""
    size_a, size_b = np.linalg.norm(a[:3, :3], axis=0), np.linalg.norm(b[:3, :3], axis=0)
    if np.any(size_a == 0) or np.any(size_b == 0):
        raise SparError(f"{what}: an affine with a zero-length axis{where}; expected a valid voxel-to-world matrix")
    if not np.allclose(a[:3, :3] / size_a, b[:3, :3] / size_b, atol=1e-3):
        raise SparError(f"{what} axis directions {np.round(a[:3, :3] / size_a, 3).tolist()} differ from the image's "
                        f"{np.round(b[:3, :3] / size_b, 3).tolist()}{where}; expected the same orientation "
                        "(a flipped or rotated mask)")
    tol = 0.01 * float(min(size_a.min(), size_b.min()))
    if not np.allclose(a[:3, 3], b[:3, 3], atol=tol):
        raise SparError(f"{what} origin {np.round(a[:3, 3], 3).tolist()} mm differs from the image's "
                        f"{np.round(b[:3, 3], 3).tolist()} mm{where}; expected the same position in space")


LABEL_MAX = int(np.iinfo(np.int16).max)  # the largest label value spar reads: it holds labels as uint8 or int16


def label_dtype(top: int) -> type[np.integer]:
    """The smallest type for label values up to ``top``: uint8, int16 (up to :data:`LABEL_MAX`), else int32."""
    return np.uint8 if top <= 255 else np.int16 if top <= LABEL_MAX else np.int32


def integer_labels(data: np.ndarray, path: str | Path, allowed: Collection[int] | None = None,
                   where: str = 'dataset.json "labels"') -> np.ndarray:
    """A label volume as uint8 (or int16 for values above 255), its values checked.

    Float data is accepted when every value is a whole number (many tools write float32 masks).

    Args:
        data: the voxel array as read.
        path: the file, for messages.
        allowed: the label values the volume may hold (default: any value ≥ 0).
        where: what declares ``allowed``, for messages.

    Raises:
        SparError: NaN/inf or fractional values, a non-numeric type, or values outside ``allowed`` (or negative).
    """
    if data.dtype.kind == "f":
        if not np.isfinite(data).all():
            raise SparError(f"{path}: label data has NaN/inf values; expected integer label values")
        fractional = data[data != np.round(data)]
        if fractional.size:
            raise SparError(f"{path}: label data has {fractional.size} non-integer values (e.g. "
                            f"{fractional.flat[0]:g}); expected integer label values")
    elif data.dtype.kind not in "biu":
        raise SparError(f"{path}: voxel type {data.dtype}; expected integer label values")
    low = data.min() if data.size else 0
    high = data.max() if data.size else 0
    if high > LABEL_MAX:  # read as it is, never after a cast that would wrap it (2**40 + 1 to 1)
        value = f"{high:g}" if data.dtype.kind == "f" else str(int(high))
        raise SparError(f"{path}: label value {value} is beyond "
                        f"{LABEL_MAX}, the largest label value spar reads; expected the labels' values")
    if allowed is None:
        if low < 0:
            raise SparError(f"{path}: negative label value {low:g}; expected labels ≥ 0")
        return data.astype(label_dtype(int(high)), copy=False)
    allowed = set(int(v) for v in allowed)
    top = max(allowed)
    if low >= 0 and high <= top:
        label = data.astype(label_dtype(top), copy=False)
        bad = [v for v in np.flatnonzero(np.bincount(label.ravel(), minlength=top + 1)) if v not in allowed]
    else:
        label, bad = data, [v for v in np.unique(data) if v not in allowed]
    if bad:
        shown = ", ".join(f"{v:g}" for v in bad[:10]) + (", ..." if len(bad) > 10 else "")
        raise SparError(f"{path}: label values [{shown}] are not in {where} (expected values {sorted(allowed)})")
    return label
