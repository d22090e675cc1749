"""NIfTI volumes: read with their data in memory and checked (voxel limit, finite affine, intensities, integer
labels, voxel sizes), and written atomically, over a source header or with a fresh one."""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Sequence

import nibabel
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.spatialimages import HeaderDataError

from spar_core.data.checks import header_spacing, integer_labels, squeeze_to_3d
from spar_core.errors import SparError
from spar_core.paths import NIFTI_SUFFIX, atomic_path

NIFTI_SUFFIXES = (NIFTI_SUFFIX, ".nii")
CHANNEL_SUFFIX = "_0000"  # nnU-Net v2 names an image's first channel <case>_0000.nii.gz
MAX_VOXELS_ENV = "SPAR_MAX_VOXELS"
DEFAULT_MAX_VOXELS = 2**28
_READ_ERRORS = (OSError, EOFError, zlib.error, ValueError, ImageFileError, HeaderDataError, MemoryError)
# The largest volume read, in voxels: 2**28 (a 1024 × 1024 × 256 exam, 1 GiB as float32). SPAR_MAX_VOXELS raises it.


@dataclass
class Volume:
    """One exam in memory, on its native voxel grid; ``label`` is None for unlabeled exams."""

    case_id: str
    image: np.ndarray  # (X, Y, Z) float32
    label: np.ndarray | None  # (X, Y, Z) uint8, or int16 when a label value exceeds 255
    spacing: tuple[float, float, float]  # mm, from the header zooms
    affine: np.ndarray  # (4, 4) float64, voxel -> world (mm)
    header: nibabel.Nifti1Header  # the source header, so predictions can be written over the image
    slice_axis: int


def _one_line(err: BaseException) -> str:
    return " ".join(f"{type(err).__name__}: {err}".split())


def case_id_of(path: str | Path) -> str:
    """``spine_001`` for ``.../spine_001.nii.gz``, and for nnU-Net v2's ``.../spine_001_0000.nii.gz`` (the image's
    first channel: spar reads one channel) as well."""
    name = Path(path).name
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)].removesuffix(CHANNEL_SUFFIX)
    return Path(name).stem.removesuffix(CHANNEL_SUFFIX)


def image_file(case_id: str) -> str:
    """The file name spar writes a case's image under (nnU-Net v2's first channel: ``<case>_0000.nii.gz``)."""
    return f"{case_id}{CHANNEL_SUFFIX}{NIFTI_SUFFIX}"


def label_file(case_id: str) -> str:
    """The file name spar writes a case's label under (``<case>.nii.gz``)."""
    return f"{case_id}{NIFTI_SUFFIX}"


def read_nifti(path: str | Path) -> nibabel.Nifti1Image:
    """Load a NIfTI file with its data fully read into memory, so truncation shows here, not mid-training.

    The returned image holds the (scaled) voxel array; reading it again costs nothing.
    Raises:
        SparError: file missing, not NIfTI, unreadable, truncated or corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise SparError(f"{path}: file not found; expected a NIfTI image (.nii or .nii.gz)")
    try:
        img = nibabel.load(path, mmap=False)
        if not isinstance(img, nibabel.Nifti1Image):  # Nifti2Image is a subclass
            raise SparError(f"{path}: is a {type(img).__name__}; expected a NIfTI image (.nii or .nii.gz)")
        _check_header(img, path)  # before a voxel is read
        data = np.asanyarray(img.dataobj)
    except _READ_ERRORS as err:
        raise SparError(f"{path}: unreadable or truncated NIfTI file ({_one_line(err)})") from None
    return type(img)(data, img.affine, img.header)


def write_nifti(array: np.ndarray, affine: np.ndarray, path: str | Path,
                header: nibabel.Nifti1Header | None = None) -> Path:
    """Write ``array`` atomically as NIfTI (gzip-compressed for a ``.gz`` name) with its own dtype.

    Without ``header``: qform = sform = ``affine`` (scanner space, mm). With ``header`` (the source image's):
    its fields are kept, so that a prediction or a map opens over its image in ITK-SNAP or 3D Slicer. The gzip
    stream has no name or time stamp, so the same array gives the same bytes.
    """
    array = np.asarray(array)
    if header is None:
        img = nibabel.Nifti1Image(array, affine)
        img.set_qform(affine, code=1)
        img.set_sform(affine, code=1)
        img.header.set_xyzt_units("mm", "sec")
    else:
        img = nibabel.Nifti1Image(array, affine, header.copy())
        img.header.set_slope_inter(1, 0)
    img.set_data_dtype(array.dtype)
    data = img.to_bytes()
    if str(path).endswith(".gz"):
        data = gzip.compress(data, compresslevel=1, mtime=0)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_label_volume(labels: np.ndarray, source: Volume, path: str | Path) -> Path:
    """Write ``labels`` as NIfTI (uint8) with ``source``'s affine and header, atomically."""
    return write_nifti(np.asarray(labels, dtype=np.uint8), source.affine, path, source.header)


def write_map_volume(values: np.ndarray, source: Volume, path: str | Path) -> Path:
    """Write a per-voxel map (an uncertainty, float32) as NIfTI with ``source``'s affine and header, atomically."""
    return write_nifti(np.asarray(values, dtype=np.float32), source.affine, path, source.header)


def max_voxels() -> int:
    """The voxel limit of one volume: ``SPAR_MAX_VOXELS`` when set (a positive integer), else 2**28."""
    raw = os.environ.get(MAX_VOXELS_ENV)
    if raw is None:
        return DEFAULT_MAX_VOXELS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise SparError(f"{MAX_VOXELS_ENV}={raw!r}: expected a positive number of voxels")
    return value


def check_voxel_count(shape: Sequence[int], what: str) -> None:
    """Refuse a volume of more than :func:`max_voxels` voxels, before any voxel is read.

    ``what`` names it first in the message (``"x.nii.gz: the header declares"``, ``"series 3 ..."``).
    """
    shape = tuple(int(n) for n in shape)
    count = int(np.prod(shape, dtype=np.float64)) if shape else 0
    limit = max_voxels()
    if count > limit:
        raise SparError(f"{what} {' × '.join(map(str, shape))} = {count:,} voxels; expected at most {limit:,} "
                        f"(set {MAX_VOXELS_ENV} to allow larger volumes)")


def _check_header(img: nibabel.Nifti1Image, path: Path) -> None:
    """What the header alone tells: the volume fits the voxel limit, and its affine is finite."""
    check_voxel_count(img.header.get_data_shape(), f"{path}: the header declares")
    if not np.isfinite(np.asarray(img.affine, dtype=np.float64)).all():
        raise SparError(f"{path}: the affine holds NaN or infinite values; expected a finite voxel-to-world matrix")


def _image_array(img: nibabel.Nifti1Image, path: Path) -> np.ndarray:
    data = squeeze_to_3d(np.asanyarray(img.dataobj), path)
    if data.dtype.kind not in "biuf":
        raise SparError(f"{path}: voxel type {data.dtype}; expected real-valued intensities")
    image = data.astype(np.float32)
    if data.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(image)))
        if bad:
            raise SparError(f"{path}: {bad} NaN/inf voxels; expected finite image intensities")
    return image


def resolve_slice_axis(spacing: Sequence[float], declared: int | None) -> int:
    """The axis 2D slices are taken along: ``declared`` when given, else the axis of largest spacing.

    Thick-slice MR is acquired along its coarsest axis, so slicing there keeps full in-plane resolution.
    Ties (e.g. isotropic data) go to the last axis, the usual slice axis of stored NIfTI volumes.
    """
    if declared is not None:
        if isinstance(declared, bool) or declared not in (0, 1, 2):
            raise SparError(f"slice_axis is {declared!r}; expected 0, 1 or 2")
        return int(declared)
    spacing = np.asarray(spacing, dtype=float)
    if spacing.shape != (3,):
        raise SparError(f"spacing {tuple(spacing)}; expected three voxel sizes in mm")
    return int(np.flatnonzero(spacing >= spacing.max() * (1 - 1e-3))[-1])


def read_image(path: Path, case_id: str, slice_axis: int | None) -> Volume:
    """A validated image volume (``label`` None) with its spacing, affine, header and slice axis."""
    img = read_nifti(path)
    image = _image_array(img, path)
    spacing = header_spacing(img.header, path, img.affine)
    affine = np.asarray(img.affine, dtype=np.float64)
    return Volume(case_id, image, None, spacing, affine, img.header, resolve_slice_axis(spacing, slice_axis))


def read_label_volume(path: str | Path, allowed: Collection[int] | None = None
                      ) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A NIfTI label volume (a truth or a prediction) and its voxel spacing in mm, checked.

    Returns:
        (X, Y, Z) labels as uint8 (int16 above 255), and the header's voxel sizes.

    Raises:
        SparError: missing or unreadable file, not 3D, non-integer or negative values (or values outside
            ``allowed``), bad voxel sizes.
    """
    labels, spacing, _ = read_labels_affine(path, allowed)
    return labels, spacing


def read_labels_affine(path: str | Path, allowed: Collection[int] | None
                 ) -> tuple[np.ndarray, tuple[float, float, float], np.ndarray]:
    """:func:`read_label_volume` with the file's affine (voxel -> world, mm)."""
    img = read_nifti(path)
    data = squeeze_to_3d(np.asanyarray(img.dataobj), path)
    affine = np.asarray(img.affine, float)
    return integer_labels(data, path, allowed), header_spacing(img.header, path, affine), affine


def load_image(path: str | Path, slice_axis: int | None = None) -> Volume:
    """A user's unlabeled exam (the predict path): validated like a dataset image, ``label`` is None."""
    path = Path(path).expanduser().absolute()
    return read_image(path, case_id_of(path), slice_axis)
