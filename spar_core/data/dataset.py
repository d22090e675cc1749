"""Datasets on disk: the Medical Segmentation Decathlon and nnU-Net v2 raw layouts, read and validated.

A dataset folder holds ``dataset.json``, ``imagesTr/`` and ``labelsTr/``. ``dataset.json`` has ``labels`` (name ->
integer, values 0..C-1) and either a ``training`` list of ``{"image", "label"}`` paths relative to the folder
(Decathlon) or, as nnU-Net v2 writes it, ``file_ending`` with the images found as ``imagesTr/<case>_0000<ending>``
and their labels as ``labelsTr/<case><ending>``; an optional ``slice_axis``. Case ids never carry the channel
suffix. Volumes stay on their native grid (no reorientation, no resampling) so predictions can be written back
over the image with its own affine. Every problem raises :class:`SparError` naming the file and what was
expected. The volumes themselves are read by :mod:`spar_core.data.nifti`.
"""

from __future__ import annotations

import json

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spar_core.data.checks import check_same_affine, check_same_grid
from spar_core.data.nifti import (CHANNEL_SUFFIX, NIFTI_SUFFIXES, Volume, case_id_of, read_image,
                                  read_labels_affine)
from spar_core.errors import SparError, note
from spar_core.paths import DATASET_JSON, read_json_object



@dataclass(frozen=True)
class Case:
    """One exam listed in ``dataset.json``; ``case_id`` is the image file name without ``.nii.gz``/``.nii``."""

    case_id: str
    image_path: Path
    label_path: Path | None


@dataclass(frozen=True)
class Dataset:
    """A parsed, validated ``dataset.json``; ``meta`` keeps the whole file for callers needing extra keys."""

    root: Path
    name: str
    labels: dict[str, int]  # includes background 0, in label-value order
    cases: tuple[Case, ...]
    slice_axis: int | None  # None: decided per volume (axis of largest spacing)
    meta: dict = field(repr=False)

    @property
    def structures(self) -> dict[str, int]:
        """The labels to segment (background left out)."""
        return {name: value for name, value in self.labels.items() if value != 0}

    def case(self, case_id: str) -> Case:
        for case in self.cases:
            if case.case_id == case_id:
                return case
        raise SparError(f"{self.root}: no case {case_id!r} in dataset.json (it lists {len(self.cases)} cases)")


# ---------------------------------------------------------------------------------------------- dataset.json


def _parse_labels(raw: Any, where: Path) -> dict[str, int]:
    """``{"background": 0, "L1": 1}``, or the nnU-Net v1 form ``{"0": "background", "1": "L1"}`` inverted."""
    if not isinstance(raw, dict) or not raw:
        raise SparError(f'{where}: "labels" must be a non-empty object mapping label name to integer value')
    if all(isinstance(v, str) for v in raw.values()):
        if not all(isinstance(k, str) and k.strip().isdigit() for k in raw):
            raise SparError(f'{where}: "labels" mixes forms; expected name -> integer (or v1 integer -> name)')
        pairs = [(name, int(key)) for key, name in raw.items()]
    else:
        pairs = list(raw.items())
    labels: dict[str, int] = {}
    for name, value in pairs:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= np.iinfo(np.int16).max:
            raise SparError(f'{where}: label "{name}" has value {value!r}; expected an integer in 0..32767')
        if name in labels:
            raise SparError(f'{where}: label name "{name}" appears twice in "labels"')
        labels[name] = value
    values = Counter(labels.values())
    shared = sorted(v for v, n in values.items() if n > 1)
    if shared:
        raise SparError(f'{where}: several labels share the value(s) {shared}; expected one name per value')
    if 0 not in values:
        raise SparError(f'{where}: "labels" has no background; expected a label with value 0 (e.g. "background": 0)')
    return dict(sorted(labels.items(), key=lambda item: item[1]))


def _parse_cases(raw: Any, root: Path, where: Path) -> tuple[Case, ...]:
    if not isinstance(raw, list) or not raw:
        raise SparError(f'{where}: "training" must be a non-empty list of {{"image": ..., "label": ...}} entries')
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(raw):
        image = entry.get("image") if isinstance(entry, dict) else None
        if not isinstance(image, str) or not image:
            raise SparError(
                f'{where}: "training" entry {i} has no "image" path; expected {{"image": "./imagesTr/x.nii.gz", ...}}'
            )
        label = entry.get("label")
        if label is not None and not isinstance(label, str):
            raise SparError(f'{where}: "training" entry {i} has a "label" that is not a path string: {label!r}')
        # the case is named after its label where it has one (nnU-Net v2: image x_0000, label x)
        case = Case(case_id_of(label if label is not None else image), root / image,
                    None if label is None else root / label)
        if case.case_id in seen:
            first = seen[case.case_id]
            raise SparError(f'{where}: case id "{case.case_id}" appears in "training" entries {first} and {i}')
        seen[case.case_id] = i
        for path in (case.image_path, case.label_path):
            if path is not None and not path.resolve().is_relative_to(root.resolve()):
                raise SparError(f'{where}: "training" entry {i} points outside the dataset folder ({path}); '
                                "expected a path relative to the folder, inside it")
            if path is not None and not path.is_file():
                raise SparError(f'{path}: file not found (listed in {where}, "training" entry {i})')
        cases.append(case)
    return tuple(cases)


def _list_cases(meta: dict, root: Path, where: Path) -> tuple[Case, ...]:
    """The cases of an nnU-Net v2 raw dataset, which lists none: ``imagesTr/<case>_0000<file_ending>``, labelled
    by ``labelsTr/<case><file_ending>`` when it exists."""
    ending = meta.get("file_ending")
    if not isinstance(ending, str) or ending not in NIFTI_SUFFIXES:
        raise SparError(f'{where}: "file_ending" is {ending!r}; expected one of {", ".join(NIFTI_SUFFIXES)} '
                        "(spar reads NIfTI)")
    images = sorted((root / "imagesTr").glob(f"*{CHANNEL_SUFFIX}{ending}"))
    if not images:
        raise SparError(f"{root / 'imagesTr'}: no <case>{CHANNEL_SUFFIX}{ending} image; expected nnU-Net v2's raw layout")
    cases = []
    for image in images:
        case_id = image.name[: -len(CHANNEL_SUFFIX + ending)]
        label = root / "labelsTr" / f"{case_id}{ending}"
        cases.append(Case(case_id, image, label if label.is_file() else None))
    declared = meta.get("numTraining")
    if isinstance(declared, int) and declared != len(cases):
        raise SparError(f'{where}: "numTraining" is {declared}, but imagesTr holds {len(cases)} case(s)')
    return tuple(cases)


def _check_regions(raw: Any, where: Path) -> None:
    """nnU-Net's region-based labels (a label that is a list of values) are refused: spar trains one class per
    label value."""
    if isinstance(raw, dict) and any(isinstance(v, (list, tuple)) for v in raw.values()):
        raise SparError(f'{where}: "labels" holds regions (a label made of several values); spar segments one '
                        "class per value: expected name -> integer")


def _note_channels(meta: dict, where: Path) -> None:
    """Say once that spar reads the first channel of a dataset with several (``channel_names``/``modality``)."""
    channels = meta.get("channel_names") or meta.get("modality")
    if isinstance(channels, dict) and len(channels) > 1:
        names = ", ".join(f"{k}: {v}" for k, v in channels.items())
        note(f"{where}: {len(channels)} channels ({names}); spar segments from the first ({CHANNEL_SUFFIX}) only")


def read_labels(path: str | Path) -> dict[str, int]:
    """The ``labels`` of a dataset.json (name -> value, background included), validated as :func:`load_dataset`
    does; the listed images are not looked at.

    Raises:
        SparError: missing or unreadable file, not JSON, no or ill-formed ``labels``.
    """
    where = Path(path)
    if not where.is_file():
        raise SparError(f"{where}: file not found; expected a dataset.json with \"labels\"")
    meta = read_json_object(where, 'a dataset description (a JSON object with "labels")')
    if "labels" not in meta:
        raise SparError(f'{where}: no "labels" key; expected "labels" (name -> integer)')
    return _parse_labels(meta["labels"], where)


def load_dataset(root: str | Path) -> Dataset:
    """Parse and validate ``root/dataset.json`` and check that every listed file exists (files are not read).

    ``root`` may also be the ``dataset.json`` file itself.
    Raises:
        SparError: missing folder or file, invalid JSON, missing/ill-formed ``labels`` or ``training``.
    """
    root = Path(root).expanduser().absolute()
    if root.name == DATASET_JSON and root.is_file():
        root = root.parent
    where = root / DATASET_JSON
    if not root.is_dir():
        raise SparError(f"{root}: no such folder; expected a dataset folder holding dataset.json")
    if not where.is_file():
        raise SparError(f"{where}: file not found; expected the dataset description (Decathlon / nnU-Net layout)")
    meta = read_json_object(where, 'a dataset description (a JSON object with "labels")')
    if "labels" not in meta:
        raise SparError(f'{where}: no "labels" key; expected "labels" (name -> integer)')
    if "training" not in meta and "file_ending" not in meta:
        raise SparError(f'{where}: no "training" list and no "file_ending"; expected the Decathlon form ("training": '
                        '[{"image", "label"}]) or nnU-Net v2\'s ("file_ending", images in imagesTr/)')
    _check_regions(meta["labels"], where)
    _note_channels(meta, where)
    slice_axis = meta.get("slice_axis")
    if slice_axis is not None and (isinstance(slice_axis, bool) or slice_axis not in (0, 1, 2)):
        raise SparError(f'{where}: "slice_axis" is {slice_axis!r}; expected 0, 1 or 2')
    labels = _parse_labels(meta["labels"], where)
    if list(labels.values()) != list(range(len(labels))):  # the networks have one output channel per value
        raise SparError(f'{where}: label values {list(labels.values())}; expected consecutive values 0..'
                        f'{len(labels) - 1} (one class per value, as nnU-Net requires): renumber the labels')
    cases = _parse_cases(meta["training"], root, where) if "training" in meta else _list_cases(meta, root, where)
    _check_patients(meta.get("patients"), {c.case_id for c in cases}, where)
    return Dataset(root, str(meta.get("name") or root.name), labels, cases, slice_axis, meta)


def _check_patients(table: object, case_ids: set[str], where: Path) -> None:
    """``"patients"`` (optional): an object of case id -> patient id (text), every case id one of the dataset's.
    A typo in a case id would leave the grouping the user wrote unapplied, and two exams of one patient on both
    sides of a split."""
    if table is None:
        return
    if not isinstance(table, dict):
        raise SparError(f'{where}: "patients" is a {type(table).__name__}; expected an object of case id -> '
                        "patient id")
    unknown = sorted(set(table) - case_ids)
    if unknown:
        raise SparError(f'{where}: "patients" names {len(unknown)} case id(s) not in the dataset: '
                        f'{", ".join(map(repr, unknown[:3]))}{", ..." if len(unknown) > 3 else ""}; expected case '
                        "ids of its images")
    bad = [(case, value) for case, value in table.items() if not isinstance(value, str) or not value.strip()]
    if bad:
        raise SparError(f'{where}: "patients" gives {bad[0][0]!r} the patient {json.dumps(bad[0][1])}'
                        + (f" ({len(bad)} such cases)" if len(bad) > 1 else "") + "; expected a patient id as text")


def load_volume(dataset: Dataset, case: Case | str, *, with_label: bool = True) -> Volume:
    """Read and validate one case (image and, when ``with_label``, its label) on its native grid.

    Raises:
        SparError: unknown case id, unreadable file, not 3D, NaN/inf intensities, label values outside
            ``dataset.labels``, non-integer labels, or image/label grids that differ.
    """
    if isinstance(case, str):
        case = dataset.case(case)
    volume = read_image(case.image_path, case.case_id, dataset.slice_axis)
    if not with_label or case.label_path is None:
        return volume
    path = case.label_path
    volume.label, label_spacing, label_affine = read_labels_affine(path, dataset.labels.values())
    check_same_grid(volume.label.shape, label_spacing, volume.image.shape, volume.spacing,
                    what=f"{path}: label", ref="image", ref_file=case.image_path)
    check_same_affine(label_affine, volume.affine, what=f"{path}: label", ref_file=case.image_path)
    return volume


