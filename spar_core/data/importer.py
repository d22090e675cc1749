"""``spar import``: DICOM series (and their masks) into a dataset folder in the Decathlon / nnU-Net layout.

Everything that can be checked from headers is checked before a file is written (series choice, stack
geometry, decodable pixel data, voxel limits, where each mask comes from); the dataset is then written into
a hidden folder beside the target and renamed into place at the end, so a failure leaves nothing behind.

Case ids are ``case_001``, ``case_002``, ... in order of PatientID, study date and series number (or, with
``naming="patient"``, the PatientID made file-safe, ``_2``, ``_3`` appended for a patient's later studies);
``import.json`` in the dataset records each case's patient, study and series, and where its mask came from.
"""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from spar_core.data.checks import label_dtype
from spar_core.paths import DATASET_JSON, IMPORT_RECORD
from spar_core.data.nifti import check_voxel_count, image_file, label_file, write_nifti
from spar_core.data.dicom_series import (Segmentation, Series, StackGeometry, check_decodable, check_stack,
                                         read_series, scan_folder, sorted_instance_uids)
from spar_core.data.masks import find_mask_file, nifti_mask, seg_mask, slice_arrays_mask
from spar_core.errors import SparError
from spar_core.paths import write_json
from spar_core.data.nnunet_raw import v2_keys

NAMINGS = ("number", "patient")


@dataclass(frozen=True)
class PlannedCase:
    """One exam to write: its series, checked geometry, and the mask source (a SEG, a file, a folder, or None)."""

    case_id: str
    series: Series
    geometry: StackGeometry
    mask: Path | None
    mask_kind: str | None  # "seg", "nifti", "slices"
    segment_names: dict[str, int] | None = None  # a SEG's segment label -> segment number


@dataclass(frozen=True)
class ImportPlan:
    """What :func:`write_dataset` will write; every check that headers allow has passed."""

    source: Path
    cases: tuple[PlannedCase, ...]
    labels: dict[str, int]  # from the command line, else from the SEGs' segment names
    transpose: bool = False
    skipped: tuple[str, ...] = field(default=())  # series left out by the choice, as lines

    def summary(self) -> str:
        """One line per case: id, patient, series and mask source."""
        lines = []
        for case in self.cases:
            g = case.geometry.slices[0]
            mask = "no mask" if case.mask is None else f"{case.mask_kind} mask {case.mask.name}"
            lines.append(f"{case.case_id}: {case.series.label}, {g.columns} × {g.rows} × {case.geometry.n_slices} "
                         f"voxels, {mask}")
        return "\n".join(lines)


def parse_labels(text: str) -> dict[str, int]:
    """``"1=femur,2=tibia"`` -> ``{"background": 0, "femur": 1, "tibia": 2}``.

    Raises:
        SparError: a pair that is not VALUE=NAME with VALUE in 1..32767, a value or name given twice.
    """
    labels = {"background": 0}
    for pair in (p.strip() for p in text.split(",") if p.strip()):
        value, sep, name = pair.partition("=")
        if not sep or not value.strip().isdigit() or not name.strip() or not 1 <= int(value) <= 32767:
            raise SparError(f"--labels: {pair!r} is not VALUE=NAME; expected e.g. 1=femur,2=tibia (values 1..32767)")
        if name.strip() in labels or int(value) in labels.values():
            raise SparError(f"--labels: {pair!r} repeats a name or a value; expected each once")
        labels[name.strip()] = int(value)
    if len(labels) == 1:
        raise SparError("--labels: no VALUE=NAME pair; expected e.g. 1=femur,2=tibia")
    return labels


def choose_series(series: Sequence[Series], description: str | None = None, number: int | None = None,
                  all_series: bool = False) -> tuple[list[Series], list[Series]]:
    """The series to import (and those left out): filtered by a SeriesDescription pattern (a case-insensitive
    regular expression) and a SeriesNumber; then one per study unless ``all_series``.

    Raises:
        SparError: an invalid pattern; nothing left; a study left with several series (listed) and no choice.
    """
    try:
        pattern = None if description is None else re.compile(description, re.IGNORECASE)
    except re.error as err:
        raise SparError(f"--series-description: {description!r} is not a regular expression ({err})") from None
    chosen = [s for s in series if (pattern is None or pattern.search(s.description))
              and (number is None or s.number == number)]
    left = [s for s in series if s not in chosen]
    if not chosen:
        found = "; ".join(s.label for s in series[:5])
        raise SparError(f"no series matches the choice (description {description!r}, number {number}); found {found}")
    if not all_series:
        by_study: dict[tuple[str, str], list[Series]] = defaultdict(list)
        for s in chosen:
            by_study[(s.patient_id, s.study_uid)].append(s)
        mixed = [group for group in by_study.values() if len(group) > 1]
        if mixed:
            listed = "; ".join(s.label for s in mixed[0][:4])
            raise SparError(f"{len(mixed)} stud(ies) hold several series, e.g. {listed}: choose one with "
                            "--series-description REGEX or --series-number N, or import each with --all-series")
    return chosen, left


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "patient"


def case_ids(series: Sequence[Series], naming: str = "number") -> list[str]:
    """The case id of each series (in the given order, which :func:`scan_folder` sorts by patient and date)."""
    if naming not in NAMINGS:
        raise SparError(f"--case-ids: {naming!r}; expected one of {', '.join(NAMINGS)}")
    if naming == "number":
        return [f"case_{i:03d}" for i in range(1, len(series) + 1)]
    ids, seen = [], defaultdict(int)
    for s in series:
        base = _safe(s.patient_id)
        seen[base] += 1
        ids.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return ids


def _seg_for(series: Series, segs: Sequence[Segmentation]) -> Path | None:
    found = [seg.path for seg in segs if series.uid in seg.referenced_series]
    if len(found) > 1:
        raise SparError(f"{series.label}: {len(found)} DICOM SEG files refer to it ({found[0]}, {found[1]}); "
                        "expected at most one")
    return found[0] if found else None


def plan_import(source: str | Path, *, masks: str | Path | None = None, labels: dict[str, int] | None = None,
                description: str | None = None, number: int | None = None, all_series: bool = False,
                naming: str = "number", transpose: bool = False,
                progress: Callable[[int], None] | None = None) -> ImportPlan:
    """Find, choose and check the series under ``source`` and the mask of each, reading headers only.

    Raises:
        SparError: any problem found, in one line naming the series or file (see :func:`check_stack`,
            :func:`check_decodable`, :func:`choose_series`); masks without ``labels`` that name their values.
    """
    source = Path(source)
    series, segs = scan_folder(source, progress)
    mask_root = None if masks is None else Path(masks)
    if mask_root is not None:
        if not mask_root.is_dir():
            raise SparError(f"{mask_root}: no such folder; expected a folder of masks (--masks)")
        segs = segs + scan_folder(mask_root, need_images=False)[1]
    chosen, left = choose_series(series, description, number, all_series)
    planned = []
    for case_id, s in zip(case_ids(chosen, naming), chosen):
        geometry = check_stack(s)
        check_decodable(s)
        check_voxel_count(geometry.shape, f"{s.label}: a series of")
        mask, kind = _seg_for(s, segs), "seg"
        if mask is None and mask_root is not None:
            mask = find_mask_file(mask_root, [case_id, _safe(s.patient_id)])
            kind = None if mask is None else "slices" if mask.is_dir() else "nifti"
        if mask is not None and kind != "seg" and labels is None:
            raise SparError(f"{mask}: a mask without label names; give them with --labels, e.g. 1=femur,2=tibia")
        names = segment_names(mask) if kind == "seg" and mask is not None else None
        planned.append(PlannedCase(case_id, s, geometry, mask, kind if mask is not None else None, names))
    unified = _unify_labels([c.segment_names for c in planned if c.segment_names], labels)
    return ImportPlan(source, tuple(planned), unified, transpose, tuple(s.label for s in left))


def segment_names(path: Path) -> dict[str, int]:
    """A DICOM SEG's segment labels -> segment numbers, from its header.

    Raises:
        SparError: unreadable file, no segments, a segment without a label, a label given twice.
    """
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        items = [(str(item.SegmentLabel).strip(), int(item.SegmentNumber)) for item in ds.SegmentSequence]
    except (InvalidDicomError, OSError, EOFError, ValueError, AttributeError, TypeError) as err:
        raise SparError(f"{path}: cannot read the DICOM SEG's segments ({type(err).__name__}: {err})") from None
    names = dict(items)
    if not items or len(names) < len(items) or "" in names:
        raise SparError(f"{path}: segments {items}; expected one or more segments with distinct labels")
    return names


def _unify_labels(seg_names: Sequence[dict[str, int]], declared: dict[str, int] | None) -> dict[str, int]:
    """The dataset's labels: the declared ones, else every segment name met, valued as first met."""
    if declared is not None:
        return dict(declared)
    labels = {"background": 0}
    for names in seg_names:
        for name, value in sorted(names.items(), key=lambda item: item[1]):
            if name not in labels:
                labels[name] = value if value not in labels.values() else max(labels.values()) + 1
    return dict(sorted(labels.items(), key=lambda item: item[1]))


def _relabel(mask: np.ndarray, names: dict[str, int], labels: dict[str, int], where: Path) -> np.ndarray:
    """A SEG's segment numbers turned into the dataset's values, by segment name."""
    out = np.zeros(mask.shape, dtype=label_dtype(max(labels.values())))
    for name, value in names.items():
        if name not in labels:
            raise SparError(f"{where}: segment {name!r} is not among the labels {sorted(labels)}; expected the same "
                            "segment names in every SEG (or --labels naming them)")
        out[mask == value] = labels[name]
    return out


def _check_values(mask: np.ndarray, labels: dict[str, int], where: Path) -> np.ndarray:
    extra = sorted(set(np.unique(mask).tolist()) - set(labels.values()))
    if extra:
        raise SparError(f"{where}: mask values {extra[:5]} are not among --labels {labels}; expected only those")
    return mask.astype(label_dtype(max(labels.values())))


def write_dataset(plan: ImportPlan, out: str | Path, name: str | None = None,
                  progress: Callable[[int, int], None] | None = None) -> Path:
    """Write the planned cases as ``out/imagesTr``, ``out/labelsTr``, ``dataset.json`` and ``import.json``.

    ``out`` must not exist (or be an empty folder); the dataset appears there complete or not at all.
    Raises:
        SparError: ``out`` not empty; a mask that does not fit its image (named).
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SparError(f"{out}: exists and is not empty; expected a new folder for the dataset")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.parent / f".{out.name}.importing"
    shutil.rmtree(work, ignore_errors=True)
    try:
        entries, records = [], []
        labels = plan.labels
        for done, case in enumerate(plan.cases, start=1):
            image = read_series(case.geometry)
            image_rel = f"./imagesTr/{image_file(case.case_id)}"
            write_nifti(np.asanyarray(image.dataobj), image.affine, work / image_rel)
            entry = {"image": image_rel}
            if case.mask is not None:
                uids = ([] if case.geometry.multiframe and case.mask_kind != "seg" else
                        sorted_instance_uids(case.geometry, image.affine))
                if case.mask_kind == "seg":
                    mask, names = seg_mask(case.mask, uids, image)
                    mask = _relabel(mask, names, labels, case.mask)
                elif case.mask_kind == "nifti":
                    mask = _check_values(nifti_mask(case.mask, image), labels, case.mask)
                else:
                    mask = _check_values(slice_arrays_mask(case.mask, uids, image, plan.transpose), labels, case.mask)
                entry["label"] = f"./labelsTr/{label_file(case.case_id)}"
                write_nifti(mask, image.affine, work / entry["label"])
            entries.append(entry)
            records.append({"case": case.case_id, "patient_id": case.series.patient_id,
                            "study_uid": case.series.study_uid, "study_date": case.series.study_date,
                            "series_uid": case.series.uid, "series_number": case.series.number,
                            "series_description": case.series.description,
                            "slices": case.geometry.n_slices,
                            "mask": None if case.mask is None else str(case.mask), "mask_kind": case.mask_kind})
            if progress is not None:
                progress(done, len(plan.cases))
        write_json(work / IMPORT_RECORD, {"source": str(plan.source), "cases": records,
                                          "left_out": list(plan.skipped)})
        write_json(work / DATASET_JSON, {
            "name": name or out.name, "description": f"Imported by spar import from {plan.source.name}",
            "tensorImageSize": "3D", **v2_keys(labels, len(entries)), "slice_axis": 2, "training": entries})
        if out.exists():
            out.rmdir()
        work.rename(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out
