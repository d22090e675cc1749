"""DICOM MR series with known geometry, written in code with pydicom (and DICOM SEG with highdicom), for the
import tests: files under random names, in shuffled order, with InstanceNumber running against the position."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

SAGITTAL = ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0))  # rows run anterior -> posterior, columns head -> feet


@dataclass
class WrittenSeries:
    """What was written: the files, and for each the slice pixels (rows, columns) and their LPS geometry."""

    uid: str
    paths: list[Path]
    pixels: list[np.ndarray]  # stored values, per file
    positions: list[np.ndarray]  # ImagePositionPatient per file
    row_dir: np.ndarray
    col_dir: np.ndarray
    spacing: tuple[float, float]  # PixelSpacing: between rows, between columns
    slope: float
    intercept: float

    def lps(self, f: int, row: int, col: int) -> np.ndarray:
        """The patient (LPS) position of pixel (row, col) of file f."""
        return self.positions[f] + col * self.spacing[1] * self.row_dir + row * self.spacing[0] * self.col_dir


def oblique(angle_deg: float = 20.0) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """A sagittal orientation rotated about the left-right axis."""
    a = np.radians(angle_deg)
    row = (0.0, np.cos(a), np.sin(a))
    col = (0.0, np.sin(a), -np.cos(a))
    return row, col


def write_series(folder: Path, n_slices: int = 6, rows: int = 8, columns: int = 10, *,
                 orientation: Sequence[Sequence[float]] = SAGITTAL, origin: Sequence[float] = (12.5, -30.0, 40.0),
                 spacing: tuple[float, float] = (0.8, 0.7), step: float = 3.0, patient: str = "P001",
                 study_uid: str | None = None, description: str = "T1 sag", number: int = 3,
                 slope: float = 2.0, intercept: float = -5.0, positions: Sequence[float] | None = None,
                 shear: Sequence[float] = (0.0, 0.0, 0.0), seed: int = 0,
                 transfer_syntax: str = ExplicitVRLittleEndian) -> WrittenSeries:
    """Write one MR series into ``folder`` (nested under a per-series subfolder) and return its geometry.

    ``positions`` (mm along the normal, one per slice) replaces the regular ``k * step``; ``shear`` adds
    ``k * shear`` to each position (a tilted stack).
    """
    rng = np.random.default_rng(seed)
    row_dir, col_dir = (np.asarray(v, dtype=float) for v in orientation)
    normal = np.cross(row_dir, col_dir)
    study_uid = study_uid or generate_uid()
    series_uid, frame = generate_uid(), generate_uid()
    along = np.arange(n_slices) * step if positions is None else np.asarray(positions, dtype=float)
    sub = folder / f"s{rng.integers(1e6)}" / "deeper"
    sub.mkdir(parents=True, exist_ok=True)
    out = WrittenSeries(series_uid, [], [], [], row_dir, col_dir, spacing, slope, intercept)
    for k in rng.permutation(len(along)):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = transfer_syntax
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = MRImageStorage, meta.MediaStorageSOPInstanceUID, "MR"
        ds.PatientID, ds.PatientName = patient, f"{patient}^"
        ds.PatientBirthDate, ds.PatientSex = "", "O"
        ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime, ds.StudyID = study_uid, "20240101", "120000", "1"
        ds.AccessionNumber, ds.ReferringPhysicianName = "", ""
        ds.SeriesInstanceUID, ds.SeriesNumber, ds.SeriesDescription = series_uid, number, description
        ds.FrameOfReferenceUID = frame
        ds.InstanceNumber = int(len(along) - k)  # against the position: sorting by it would flip the stack
        ds.ImageOrientationPatient = [*row_dir, *col_dir]
        position = np.asarray(origin, dtype=float) + along[k] * normal + k * np.asarray(shear, dtype=float)
        ds.ImagePositionPatient = [float(v) for v in position]
        ds.PixelSpacing = list(spacing)
        ds.SliceThickness = step
        ds.Rows, ds.Columns = rows, columns
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        pixels = rng.integers(0, 1000, size=(rows, columns)).astype(np.uint16)
        # a compressed syntax gets its bytes encapsulated, not encoded: enough for a header-level refusal
        ds.PixelData = pixels.tobytes() if not meta.TransferSyntaxUID.is_compressed else encapsulate([pixels.tobytes()])
        path = sub / f"{rng.integers(1e9):09d}"  # no extension, random order
        ds.save_as(path, enforce_file_format=True)
        out.paths.append(path)
        out.pixels.append(pixels)
        out.positions.append(position)
    return out


def write_seg(series: WrittenSeries, masks: Sequence[np.ndarray], names: Sequence[str], path: Path) -> Path:
    """A DICOM SEG over ``series``: ``masks[f]`` (rows, columns, values 0..len(names)) for file f."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    sources = [pydicom.dcmread(p) for p in series.paths]
    descriptions = [hd.seg.SegmentDescription(segment_number=i, segment_label=name,
                                              segmented_property_category=codes.SCT.Tissue,
                                              segmented_property_type=codes.SCT.Bone,
                                              algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
                    for i, name in enumerate(names, start=1)]
    seg = hd.seg.Segmentation(source_images=sources, pixel_array=np.stack(masks).astype(np.uint8),
                              segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
                              segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=100,
                              sop_instance_uid=hd.UID(), instance_number=1, manufacturer="spar tests",
                              manufacturer_model_name="tests", software_versions="0", device_serial_number="0")
    path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(path)
    return path


def write_enhanced(series: WrittenSeries, path: Path) -> Path:
    """The series as one multi-frame (Legacy Converted Enhanced MR) file, as newer scanners export."""
    import highdicom as hd

    sources = [pydicom.dcmread(p) for p in series.paths]
    image = hd.legacy.LegacyConvertedEnhancedMRImage(sources, series_instance_uid=hd.UID(), series_number=9,
                                                     sop_instance_uid=hd.UID(), instance_number=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save_as(path)
    return path
