"""Synthetic exams of a row of structures (as the lumbar vertebrae): a small dim body before the row (as T12),
five equal bright bodies labelled 1..5, then a wedge after it (as the sacrum), at any height in the field of view;
and a dataset folder of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import nibabel as nib
import numpy as np

from spar_core.data.nifti import Volume

GAP = 10  # voxels between the centres of consecutive bodies
ROW = (1, 2, 3, 4, 5)
STARTS = (18, 22, 26, 30, 34, 24)  # where each exam of the dataset places its first member


def row_exam(start: int, case: str = "x", length: int = 96, seed: int = 0) -> Volume:
    """One exam (row along axis 0, slices along axis 2, 2 mm voxels); ``start``: where the first member's centre
    lies. Faint noise everywhere."""
    rng = np.random.default_rng(seed)
    image = rng.uniform(0.0, 0.05, (length, 40, 8)).astype(np.float32)
    label = np.zeros(image.shape, dtype=np.uint8)
    before = start - GAP
    if 0 <= before < length:
        image[max(0, before - 2):before + 2, 16:22] = 0.5
    for i, value in enumerate(ROW):
        c = start + i * GAP
        image[c - 3:c + 3, 14:26] = 0.8
        label[c - 3:c + 3, 14:26] = value
    after = start + 5 * GAP
    for r in range(after - 3, min(length, after + 5)):  # a wedge widening toward the feet
        if r >= 0:
            image[r, 14:14 + 6 + (r - after + 3)] = 1.0
    return Volume(case, image, label, (2.0, 2.0, 2.0), np.eye(4), None, 2)


def write_row_dataset(root: Path, starts: Sequence[int] = STARTS) -> Path:
    """A dataset folder (nnU-Net layout) of one row exam per entry of ``starts``, cases row0, row1, …"""
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    training = []
    for i, start in enumerate(starts):
        exam = row_exam(start, f"row{i}", seed=i)
        nib.save(nib.Nifti1Image(exam.image * 200, affine), root / "imagesTr" / f"row{i}.nii.gz")
        nib.save(nib.Nifti1Image(exam.label, affine), root / "labelsTr" / f"row{i}.nii.gz")
        training.append({"image": f"./imagesTr/row{i}.nii.gz", "label": f"./labelsTr/row{i}.nii.gz"})
    labels = {"background": 0, **{f"L{v}": v for v in ROW}}
    (root / "dataset.json").write_text(json.dumps({"name": "rows", "labels": labels, "training": training,
                                                   "slice_axis": 2}))
    return root
