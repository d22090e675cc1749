"""DICOM image series on disk: found in a folder tree, grouped, checked as a 3D stack, and read as NIfTI.

Headers are read with pydicom (pixels not touched) and grouped by SeriesInstanceUID, whatever the file names
or the nesting. A series is a volume only when its slices share one orientation, one in-plane grid and one
pixel spacing, and when their positions, projected on the slice normal, step by one constant spacing with
no gap, no duplicate and no in-plane drift (gantry tilt): each fault is one line naming the series and what
was found. The voxels and the affine are then computed by highdicom (``get_volume_from_series``: slices
sorted along the normal, rescale slope and intercept applied, the affine from ImagePositionPatient,
ImageOrientationPatient and PixelSpacing), and written in the NIfTI convention that ITK-SNAP, 3D Slicer and
dcm2niix use: RAS world coordinates, voxel axes (column, row, slice).
"""

from __future__ import annotations

import os
import stat
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import nibabel
import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder

from spar_core.data.checks import SPACING_RANGE_MM
from spar_core.data.nifti import check_voxel_count
from spar_core.errors import SparError

# Slice positions closer than this fraction of the slice step are the same position (a duplicated slice).
SAME_POSITION = 0.01
# Steps may differ by this fraction of the median step (scanners round positions to 0.01 mm or so).
STEP_TOLERANCE = 0.01
# The stacking direction may leave the slice normal by this cosine before the stack counts as tilted.
TILT_COSINE = 1e-3
ORIENTATION_TOLERANCE = 1e-4
_DICOMDIR = "1.2.840.10008.1.3.10"
# Files larger than this are not DICOM slices of an MR series (a video, an archive): passed over unread.
MAX_FILE_BYTES = 2 * 2**30
MAX_PIXELS_PER_SIDE = 65535  # Rows and Columns are unsigned 16-bit values
MAX_FRAMES = 100_000
# DICOM patient coordinates are LPS; NIfTI's are RAS.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
# pixel-data codecs and the packages that bring them (pydicom names the plugin; this names the pip package)
DECODER_PACKAGES = {"gdcm": "python-gdcm", "pylibjpeg": "pylibjpeg with pylibjpeg-libjpeg / pylibjpeg-openjpeg",
                    "pillow": "pillow", "pyjpegls": "pyjpegls"}


@dataclass(frozen=True)
class SliceHeader:
    """What the grouping and the geometry checks need from one image file."""

    path: Path
    sop_uid: str
    position: tuple[float, float, float]  # ImagePositionPatient, mm (LPS)
    orientation: tuple[float, ...]  # ImageOrientationPatient: row direction, column direction
    pixel_spacing: tuple[float, float]  # between rows, between columns (mm)
    rows: int
    columns: int
    frames: int
    transfer_syntax: str


@dataclass(frozen=True)
class Series:
    """One image series: its identity and its slice headers, in the order found (not sorted)."""

    uid: str
    patient_id: str
    study_uid: str
    study_date: str
    number: int | None
    description: str
    modality: str
    slices: tuple[SliceHeader, ...]

    @property
    def label(self) -> str:
        """How a line names the series: number, description and size, enough to tell it from its neighbours."""
        number = "?" if self.number is None else str(self.number)
        desc = f" {self.description!r}" if self.description else ""
        return f"series {number}{desc} of patient {self.patient_id!r} ({len(self.slices)} files, UID {self.uid})"


@dataclass(frozen=True)
class Segmentation:
    """A DICOM SEG file and the image series it refers to."""

    path: Path
    referenced_series: tuple[str, ...]


def _text(ds: pydicom.Dataset, keyword: str) -> str:
    try:
        return str(ds.get(keyword, "") or "").strip()
    except (TypeError, ValueError, AttributeError):  # a value pydicom cannot convert is no text either
        return ""


def _floats(ds: pydicom.Dataset, keyword: str, n: int, path: Path,
            bounds: tuple[float, float] | None = None) -> tuple[float, ...]:
    """``n`` finite numbers of a header field (within ``bounds`` when given); one error naming the file and the field
    otherwise."""
    raw = None
    try:
        raw = ds.get(keyword)
        values = tuple(float(v) for v in raw)
    except (TypeError, ValueError, OverflowError, AttributeError):
        values = ()
    if len(values) != n or not np.all(np.isfinite(values)):
        raise SparError(f"{path}: {keyword} is {raw!r}; expected {n} finite numbers (an image with patient geometry)")
    if bounds is not None and not all(bounds[0] <= v <= bounds[1] for v in values):
        raise SparError(f"{path}: {keyword} is {values}; expected each between {bounds[0]:g} and {bounds[1]:g}")
    return values


def _int(ds: pydicom.Dataset, keyword: str, path: Path, default: int | None, low: int, high: int) -> int | None:
    """A whole-number header field, checked (``default`` when absent or empty); one error naming the file and the
    field otherwise."""
    try:
        raw = ds.get(keyword)
    except (TypeError, ValueError, OverflowError) as err:
        raise SparError(f"{path}: {keyword} cannot be read ({err}); expected a whole number") from None
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError, OverflowError):
        raise SparError(f"{path}: {keyword} is {raw!r}; expected a whole number") from None
    if not (np.isfinite(value) and value == int(value) and low <= value <= high):
        raise SparError(f"{path}: {keyword} is {raw!r}; expected a whole number from {low} to {high}")
    return int(value)


def _slice_header(ds: pydicom.Dataset, path: Path) -> SliceHeader:
    frames = _int(ds, "NumberOfFrames", path, 1, 1, MAX_FRAMES)
    rows = _int(ds, "Rows", path, None, 1, MAX_PIXELS_PER_SIDE)
    columns = _int(ds, "Columns", path, None, 1, MAX_PIXELS_PER_SIDE)
    if rows is None or columns is None:
        raise SparError(f"{path}: no {'Rows' if rows is None else 'Columns'}; expected an image's size in pixels")
    syntax = str(getattr(ds, "file_meta", {}).get("TransferSyntaxUID", ""))
    if frames > 1:  # an enhanced (multi-frame) image: its per-frame geometry is read by highdicom
        return SliceHeader(path=path, sop_uid=_text(ds, "SOPInstanceUID"), position=(0.0, 0.0, 0.0), orientation=(),
                           pixel_spacing=(0.0, 0.0), rows=rows, columns=columns, frames=frames,
                           transfer_syntax=syntax)
    orientation = _floats(ds, "ImageOrientationPatient", 6, path, (-1.0 - 1e-3, 1.0 + 1e-3))
    if min(np.linalg.norm(orientation[:3]), np.linalg.norm(orientation[3:])) < 0.5:
        raise SparError(f"{path}: ImageOrientationPatient is {orientation}; expected two unit direction vectors")
    return SliceHeader(path=path, sop_uid=_text(ds, "SOPInstanceUID"),
                       position=_floats(ds, "ImagePositionPatient", 3, path, (-1e6, 1e6)),  # type: ignore[arg-type]
                       orientation=orientation,
                       pixel_spacing=_floats(ds, "PixelSpacing", 2, path, SPACING_RANGE_MM),  # type: ignore
                       rows=rows, columns=columns, frames=frames, transfer_syntax=syntax)


def _files(root: Path) -> Iterable[Path]:
    """The regular files under ``root`` up to ``MAX_FILE_BYTES`` (a named pipe, a socket or a device, which a read
    would wait on forever, is passed over, as are hidden files and folders)."""
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            try:
                info = path.stat()
            except OSError:
                continue  # a dangling link
            if stat.S_ISREG(info.st_mode) and info.st_size <= MAX_FILE_BYTES:
                yield path


def scan_folder(root: str | Path, progress: Callable[[int], None] | None = None, *, need_images: bool = True
                ) -> tuple[list[Series], list[Segmentation]]:
    """Every image series and DICOM SEG under ``root`` (nested folders, any file names; other files skipped).

    ``progress(files_seen)`` is called every 100 files.
    Raises:
        SparError: ``root`` is not a folder, or holds no DICOM image when ``need_images``; an image without
            patient geometry.
    """
    root = Path(root)
    if not root.is_dir():
        raise SparError(f"{root}: no such folder; expected a folder of DICOM files")
    slices: dict[str, list[SliceHeader]] = defaultdict(list)
    identity: dict[str, tuple] = {}
    segs: list[Segmentation] = []
    for seen, path in enumerate(_files(root), start=1):
        if progress is not None and seen % 100 == 0:
            progress(seen)
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, defer_size="64 KB")
        except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, AttributeError, KeyError):
            continue  # not a DICOM file (a README, a NIfTI, a thumbnail)
        if str(getattr(ds, "file_meta", {}).get("MediaStorageSOPClassUID", "")) == _DICOMDIR:
            continue
        modality = _text(ds, "Modality")
        if modality == "SEG":
            refs = tuple(_text(item, "SeriesInstanceUID") for item in ds.get("ReferencedSeriesSequence", []))
            segs.append(Segmentation(path, refs))
            continue
        if "Rows" not in ds and "ImagePositionPatient" not in ds and "NumberOfFrames" not in ds:
            continue  # no image: a structured report, a presentation state, ... (pixels are not read here)
        uid = _text(ds, "SeriesInstanceUID")
        if not uid:
            raise SparError(f"{path}: no SeriesInstanceUID; expected a DICOM image of a series")
        slices[uid].append(_slice_header(ds, path))
        identity.setdefault(uid, (_text(ds, "PatientID"), _text(ds, "StudyInstanceUID"), _text(ds, "StudyDate"),
                                  _int(ds, "SeriesNumber", path, None, -2**31, 2**31 - 1),
                                  _text(ds, "SeriesDescription"), modality))
    if not slices and need_images:
        raise SparError(f"{root}: no DICOM image found (files of any name, in nested folders, are read)")
    series = [Series(uid, *identity[uid], tuple(headers)) for uid, headers in slices.items()]
    series.sort(key=lambda s: (s.patient_id, s.study_date, s.study_uid, s.number or 0, s.uid))
    return series, segs


@dataclass(frozen=True)
class StackGeometry:
    """A checked series: its slices sorted along the normal, with the step between them; or one multi-frame
    file (``multiframe``), whose frames highdicom sorts and checks when it reads them."""

    slices: tuple[SliceHeader, ...]
    step: float  # mm between consecutive slices (0 for a multi-frame file: known once read)
    multiframe: bool = False

    @property
    def n_slices(self) -> int:
        return sum(h.frames for h in self.slices)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(columns, rows, slices): the written volume's shape."""
        return self.slices[0].columns, self.slices[0].rows, self.n_slices


def check_stack(series: Series) -> StackGeometry:
    """Check that ``series`` is one regular 3D stack, and sort it along the slice normal.

    Raises:
        SparError: one line naming the series for fewer than 2 slices, several orientations, grids or pixel
            spacings, a duplicated slice, missing slices, a non-uniform spacing, a tilted (sheared) stack.
    """
    name = series.label
    headers = series.slices
    if any(h.frames > 1 for h in headers):
        if len(headers) > 1:
            raise SparError(f"{name}: {len(headers)} files of which some are multi-frame images; expected one "
                            "multi-frame file or single-frame slices (a 4D series? export one volume)")
        return StackGeometry(headers, 0.0, multiframe=True)
    if len(headers) < 2:
        raise SparError(f"{name}: a single slice; expected a 3D stack of slices")
    orientation = np.asarray(headers[0].orientation)
    if any(np.abs(np.asarray(h.orientation) - orientation).max() > ORIENTATION_TOLERANCE for h in headers):
        n = len({tuple(np.round(h.orientation, 3)) for h in headers})
        raise SparError(f"{name}: slices in {n} orientations (a localizer or a multi-plane series); "
                        "expected one orientation")
    grids = {(h.rows, h.columns) for h in headers}
    if len(grids) > 1:
        raise SparError(f"{name}: slices of {len(grids)} sizes {sorted(grids)[:3]}; expected one rows × columns")
    spacings = {h.pixel_spacing for h in headers}
    if len(spacings) > 1:
        raise SparError(f"{name}: slices with {len(spacings)} pixel spacings; expected one")
    row_dir, col_dir = orientation[:3], orientation[3:]
    normal = np.cross(row_dir, col_dir)
    if not np.isclose(np.linalg.norm(normal), 1.0, atol=1e-3):
        raise SparError(f"{name}: ImageOrientationPatient {tuple(orientation)} is not two orthogonal unit vectors")
    positions = np.asarray([h.position for h in headers])
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    headers = tuple(headers[i] for i in order)
    positions, along = positions[order], along[order]
    steps = np.diff(along)
    median = float(np.median(steps))
    if median <= 0:
        raise SparError(f"{name}: most slices share one position along the slice normal; expected a stack")
    same = np.flatnonzero(steps < SAME_POSITION * median)
    if same.size:
        a, b = headers[same[0]], headers[same[0] + 1]
        raise SparError(f"{name}: {same.size} duplicated slice(s), e.g. {a.path.name} and {b.path.name} at "
                        f"{along[same[0]]:.2f} mm along the normal; expected one slice per position")
    extent = positions[-1] - positions[0]
    cosine = float(abs(extent @ normal) / np.linalg.norm(extent))
    if 1.0 - cosine > TILT_COSINE:
        angle = float(np.degrees(np.arccos(min(cosine, 1.0))))
        raise SparError(f"{name}: slices stacked {angle:.1f}° off their normal (gantry tilt or a sheared stack); "
                        "expected slices stacked along their normal (resample it in the scanner or with dcm2niix)")
    if steps.max() - steps.min() > STEP_TOLERANCE * median:
        gaps = np.round(steps / steps.min())
        if np.all(np.abs(steps / steps.min() - gaps) < 0.05) and gaps.max() > 1:
            missing = int((gaps - 1).sum())
            where = float(along[int(np.argmax(gaps))])
            raise SparError(f"{name}: {missing} missing slice(s), the first gap after {where:.2f} mm along the normal "
                            f"(step {steps.min():.3g} mm); expected a complete stack")
        raise SparError(f"{name}: non-uniform slice spacing, steps from {steps.min():.3g} to {steps.max():.3g} mm; "
                        "expected one spacing")
    return StackGeometry(headers, float(steps.mean()))


def check_decodable(series: Series) -> None:
    """Raises SparError naming the series and the package to install when its pixel data cannot be decoded."""
    for syntax in sorted({pydicom.uid.UID(h.transfer_syntax) for h in series.slices if h.transfer_syntax}):
        try:
            decoder = get_decoder(syntax)
        except NotImplementedError:
            raise SparError(f"{series.label}: transfer syntax {syntax} is not an image encoding pydicom knows") from None
        if decoder.is_native or decoder.is_available:
            continue
        plugins = ", or ".join(DECODER_PACKAGES.get(m.split(" ")[0], m) for m in decoder.missing_dependencies)
        raise SparError(f"{series.label}: pixel data compressed as {syntax.name}, which no installed package "
                        f"decodes; install {plugins or 'a pydicom pixel-data plugin'}")


def read_series(geometry: StackGeometry) -> nibabel.Nifti1Image:
    """The checked stack as a NIfTI image: float32 voxels after rescale, RAS affine, axes (column, row, slice).

    Raises:
        SparError: more than the voxel limit (checked before any pixel is read), unreadable pixel data.
    """
    import highdicom  # imported here: it costs a second at start-up, and only import needs it

    first = geometry.slices[0]
    check_voxel_count(geometry.shape, f"{first.path.parent}: a series of")
    if geometry.multiframe:
        try:
            volume = highdicom.imread(first.path).get_volume(dtype=np.float32)
        except (ValueError, RuntimeError, NotImplementedError, AttributeError, KeyError, OSError) as err:
            raise SparError(f"{first.path}: cannot read this multi-frame image as one regular volume "
                            f"({' '.join(str(err).split())})") from None
        return _as_nifti(volume, first.path)
    datasets = []
    for header in geometry.slices:
        try:
            datasets.append(pydicom.dcmread(header.path))
        except (InvalidDicomError, OSError, EOFError, ValueError) as err:
            raise SparError(f"{header.path}: unreadable DICOM file ({type(err).__name__}: {err})") from None
    try:
        volume = highdicom.get_volume_from_series(datasets, dtype=np.float32, rtol=STEP_TOLERANCE)
    except (ValueError, RuntimeError, NotImplementedError, AttributeError, KeyError) as err:
        raise SparError(f"{first.path.parent}: cannot assemble the series ({' '.join(str(err).split())})") from None
    return _as_nifti(volume, first.path.parent)


def _as_nifti(volume, where: Path) -> nibabel.Nifti1Image:
    """A highdicom Volume as NIfTI: its axes are (slice, row, column) in LPS; NIfTI viewers expect (column,
    row, slice) in RAS."""
    if volume.array.ndim != 3:
        raise SparError(f"{where}: a volume of {volume.array.ndim} dimensions (colour or several channels); "
                        "expected one grey-level 3D volume")
    array = np.ascontiguousarray(volume.array.transpose(2, 1, 0))
    affine = LPS_TO_RAS @ volume.affine[:, [2, 1, 0, 3]]
    if not np.all(np.isfinite(array)):
        raise SparError(f"{where}: the series holds non-finite pixel values after rescale")
    image = nibabel.Nifti1Image(array, affine)
    image.header.set_xyzt_units("mm", "sec")
    return image


def sorted_instance_uids(geometry: StackGeometry, image_affine: np.ndarray) -> list[str]:
    """SOPInstanceUIDs in the order of the written image's slice axis (the third voxel axis).

    The written volume may run along the normal or against it (highdicom keeps the stack right-handed); the
    first voxel slice is the one whose position the affine's origin gives.

    Raises:
        SparError: a multi-frame image (its frames share one SOPInstanceUID).
    """
    if geometry.multiframe:
        raise SparError(f"{geometry.slices[0].path}: a multi-frame image; masks by SOPInstanceUID or DICOM SEG are "
                        "read for single-frame series only: give its mask as NIfTI or as <k>.npy slices")
    uids = [h.sop_uid for h in geometry.slices]
    origin_lps = (LPS_TO_RAS @ image_affine[:, 3])[:3]
    first = np.asarray(geometry.slices[0].position)
    last = np.asarray(geometry.slices[-1].position)
    return uids if np.linalg.norm(origin_lps - first) <= np.linalg.norm(origin_lps - last) else uids[::-1]
