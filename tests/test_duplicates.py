"""Identical exams under several case ids are found, and every split keeps them on one side."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from spar_core.data.dataset import load_dataset
from spar_core.data.duplicates import identical_exams, twin_groups
from spar_core.pipeline.crossval import dataset_splits


@pytest.fixture()
def with_twins(ankle_small: Path, tmp_path: Path) -> Path:
    """ankle_small plus a copy of ankle_000 (renamed, other header) and a near-copy of ankle_001 (one voxel)."""
    root = tmp_path / "ds"
    shutil.copytree(ankle_small, root)
    meta = json.loads((root / "dataset.json").read_text())
    for folder in ("imagesTr", "labelsTr"):
        img = nib.load(root / folder / "ankle_000.nii.gz")
        moved = nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine * 2, img.header)  # another header
        nib.save(moved, root / folder / "copy_of_000.nii.gz")
        near = nib.load(root / folder / "ankle_001.nii.gz")
        data = np.asanyarray(near.dataobj).copy()
        if folder == "labelsTr":
            data.flat[0] = 1 - data.flat[0]
        nib.save(nib.Nifti1Image(data, near.affine, near.header), root / folder / "near_001.nii.gz")
    meta["training"] += [{"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"}
                         for c in ("copy_of_000", "near_001")]
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


def test_identical_voxels_are_found_whatever_the_header(with_twins: Path) -> None:
    twins = identical_exams(load_dataset(with_twins))
    assert twins == [("ankle_000", "copy_of_000")]  # near_001 differs in one label voxel: not a twin
    assert twin_groups(twins) == {"ankle_000": "ankle_000", "copy_of_000": "ankle_000"}


@pytest.mark.parametrize("scheme", ["2", "3", "holdout", "loo"])
def test_every_split_keeps_twins_together(with_twins: Path, scheme: str) -> None:
    splits, twins = dataset_splits(load_dataset(with_twins), scheme, seed=0)
    assert twins == [("ankle_000", "copy_of_000")]
    for split in splits:
        sides = {"ankle_000" in split.test, "copy_of_000" in split.test}
        assert len(sides) == 1, (scheme, split)
    if scheme == "loo":
        assert len(splits) == 5  # 6 cases, 5 patients


def test_the_spine_copy_holds_two_pairs(spine_dir: Path) -> None:
    assert identical_exams(load_dataset(spine_dir)) == [("spine_018", "spine_019"), ("spine_032", "spine_033")]
