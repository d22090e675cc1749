"""Identical exams under several case ids are found, and every split keeps them on one side."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from spar_core import cli
from spar_core.data.dataset import load_dataset
from spar_core.data.nifti import image_file, label_file
from spar_core.data.duplicates import find_twins
from spar_core.pipeline.experiment import dataset_splits


@pytest.fixture()
def with_twins(ankle_small: Path, tmp_path: Path) -> Path:
    """ankle_small plus a copy of ankle_000 (renamed, other header) and a near-copy of ankle_001 (one voxel)."""
    root = tmp_path / "ds"
    shutil.copytree(ankle_small, root)
    meta = json.loads((root / "dataset.json").read_text())
    for folder, name in (("imagesTr", image_file), ("labelsTr", label_file)):
        img = nib.load(root / folder / name("ankle_000"))
        moved = nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine * 2, img.header)  # another header
        nib.save(moved, root / folder / "copy_of_000.nii.gz")
        near = nib.load(root / folder / name("ankle_001"))
        data = np.asanyarray(near.dataobj).copy()
        if folder == "labelsTr":
            data.flat[0] = 1 - data.flat[0]
        nib.save(nib.Nifti1Image(data, near.affine, near.header), root / folder / "near_001.nii.gz")
    meta["training"] += [{"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"}
                         for c in ("copy_of_000", "near_001")]
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


def test_identical_voxels_are_found_whatever_the_header(with_twins: Path) -> None:
    twins = find_twins(load_dataset(with_twins))
    assert twins.identical == (("ankle_000", "copy_of_000"),)  # near_001 differs in one label voxel: not identical
    assert twins.similar == (("ankle_001", "near_001", 1.0),)  # ... but its image is the same: a near twin
    assert twins.groups() == {"ankle_000": "ankle_000", "copy_of_000": "ankle_000",
                              "ankle_001": "ankle_001", "near_001": "ankle_001"}


@pytest.mark.parametrize("scheme", ["2", "3", "holdout", "loo"])
def test_every_split_keeps_twins_together(with_twins: Path, scheme: str) -> None:
    splits, twins = dataset_splits(load_dataset(with_twins), scheme, seed=0)
    assert twins.identical == (("ankle_000", "copy_of_000"),)
    for split in splits:
        for a, b in (("ankle_000", "copy_of_000"), ("ankle_001", "near_001")):
            assert len({a in split.test, b in split.test}) == 1, (scheme, split)
    if scheme == "loo":
        assert len(splits) == 4  # 6 cases, 4 patients


def test_the_spine_copy_holds_two_pairs(spine_dir: Path) -> None:
    twins = find_twins(load_dataset(spine_dir))
    assert twins.identical == (("spine_018", "spine_019"), ("spine_032", "spine_033"))
    assert twins.similar == ()  # distinct subjects' fingerprints correlate at 0.92 at most


def test_a_noisy_rescaled_cropped_copy_is_a_near_twin(ankle_small: Path, tmp_path: Path, capsys) -> None:
    root = tmp_path / "ds"
    shutil.copytree(ankle_small, root)
    meta = json.loads((root / "dataset.json").read_text())
    rng = np.random.default_rng(0)
    for folder, name in (("imagesTr", image_file), ("labelsTr", label_file)):
        img = nib.load(root / folder / name("ankle_002"))
        data = np.asanyarray(img.dataobj)[1:, :, :-1]  # cropped by a voxel on two axes
        if folder == "imagesTr":
            data = data * 1.3 + rng.normal(0, 0.02 * float(data.std()), data.shape)  # rescaled, noisy
        nib.save(nib.Nifti1Image(data.astype(np.float32 if folder == "imagesTr" else np.uint8), img.affine),
                 root / folder / "resaved_002.nii.gz")
    meta["training"].append({"image": "./imagesTr/resaved_002.nii.gz", "label": "./labelsTr/resaved_002.nii.gz"})
    (root / "dataset.json").write_text(json.dumps(meta))
    twins = find_twins(load_dataset(root))
    assert twins.identical == ()
    assert [(a, b) for a, b, _ in twins.similar] == [("ankle_002", "resaved_002")]
    assert cli.main(["check", str(root)]) == 0
    out = capsys.readouterr().out
    assert "Twins:      1 (splits keep each group in one fold)" in out
    assert "near-identical images (fingerprint correlation" in out and "ankle_002 ~ resaved_002" in out
