"""nnU-Net v2 raw datasets in and out: channel-suffixed images and no training list read as they are, case ids
without the suffix everywhere; spar's own datasets written in that form; every run's folds as splits_final.json;
a patient's exams kept in one fold."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from spar_core.cli import main
from spar_core.data.dataset import load_dataset
from spar_core.data.nifti import image_file, label_file
from spar_core.data.patients import declared_patients
from spar_core.data.splits import merge_groups, read_splits_file
from spar_core.pipeline.experiment import dataset_splits


def as_v2(ankle_small: Path, root: Path, channels: dict[str, str] | None = None) -> Path:
    """ankle_small as nnU-Net v2 writes a raw dataset: imagesTr/<case>_0000.nii.gz, a dataset.json without a
    training list."""
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    meta = json.loads((ankle_small / "dataset.json").read_text())
    for entry in meta["training"]:
        case = Path(entry["label"]).name[: -len(".nii.gz")]
        shutil.copy(ankle_small / entry["image"], root / "imagesTr" / image_file(case))
        shutil.copy(ankle_small / entry["label"], root / "labelsTr" / label_file(case))
        for k in list(channels or {})[1:]:  # further channels beside the first
            shutil.copy(ankle_small / entry["image"], root / "imagesTr" / f"{case}_{int(k):04d}.nii.gz")
    (root / "dataset.json").write_text(json.dumps({"channel_names": channels or {"0": "T1"},
                                                   "labels": meta["labels"], "numTraining": len(meta["training"]),
                                                   "file_ending": ".nii.gz"}))
    return root


def test_a_v2_raw_dataset_checks_cross_validates_and_predicts(ankle_small: Path, tmp_path: Path, capsys) -> None:
    root = as_v2(ankle_small, tmp_path / "Dataset001_Ankle")
    dataset = load_dataset(root)
    assert [c.case_id for c in dataset.cases] == ["ankle_000", "ankle_001", "ankle_002", "ankle_003"]
    assert main(["check", str(root)]) == 0
    run = tmp_path / "run"
    assert main(["crossval", "--dataset", str(root), "--methods", "baseline", "--folds", "2", "--preset", "tiny",
                 "--out", str(run), "--device", "cpu"]) == 0
    splits = json.loads((run / "splits_final.json").read_text())
    assert [sorted(s["train"] + s["val"]) for s in splits] == [[c.case_id for c in dataset.cases]] * 2
    # nnU-Net's splits_final.json names spar's folds: read back, they are the run's folds
    folds = read_splits_file(run / "splits_final.json", [c.case_id for c in dataset.cases])
    recorded = [json.loads((run / "folds" / str(k) / "split.json").read_text()) for k in range(2)]
    assert [(s.train, s.test) for s in folds] == [(tuple(r["train"]), tuple(r["test"])) for r in recorded]
    out = tmp_path / "out"
    assert main(["predict", "--run", str(run), "--method", "baseline", "-i", str(root), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.nii.gz")) == [f"ankle_00{i}.nii.gz" for i in range(4)]
    capsys.readouterr()


def test_several_channels_are_said_and_regions_refused(ankle_small: Path, tmp_path: Path, capsys) -> None:
    root = as_v2(ankle_small, tmp_path / "two", channels={"0": "T1", "1": "T2"})
    assert [c.case_id for c in load_dataset(root).cases] == ["ankle_000", "ankle_001", "ankle_002", "ankle_003"]
    assert main(["check", str(root)]) == 0
    assert "2 channels (0: T1, 1: T2); spar segments from the first (_0000) only" in capsys.readouterr().err
    meta = json.loads((root / "dataset.json").read_text())
    from spar_core.inference.folder import input_exams

    # predict reads each case once, from its first channel
    assert [p.name for p in input_exams(root)] == [f"ankle_00{i}_0000.nii.gz" for i in range(4)]
    meta["labels"]["bones"] = [1, 2, 3]
    (root / "dataset.json").write_text(json.dumps(meta))
    assert main(["check", str(root)]) == 2
    assert "regions" in capsys.readouterr().err


def test_phantoms_are_written_in_the_v2_form(ankle_small: Path) -> None:
    meta = json.loads((ankle_small / "dataset.json").read_text())
    assert {"channel_names", "labels", "numTraining", "file_ending"} <= set(meta)
    assert sorted(p.name for p in (ankle_small / "imagesTr").iterdir())[0] == "ankle_000_0000.nii.gz"
    assert sorted(p.name for p in (ankle_small / "labelsTr").iterdir())[0] == "ankle_000.nii.gz"
    del meta["training"]  # what nnU-Net reads: the files themselves
    copy = ankle_small.parent / "v2_only"
    shutil.copytree(ankle_small, copy, dirs_exist_ok=True)
    (copy / "dataset.json").write_text(json.dumps(meta))
    assert [c.case_id for c in load_dataset(copy).cases] == [c.case_id for c in load_dataset(ankle_small).cases]


def test_a_patients_exams_stay_in_one_fold(ankle_small: Path, tmp_path: Path) -> None:
    root = tmp_path / "ds"
    shutil.copytree(ankle_small, root)
    meta = json.loads((root / "dataset.json").read_text())
    meta["patients"] = {"ankle_000": "P1", "ankle_003": "P1", "ankle_001": "P2"}
    (root / "dataset.json").write_text(json.dumps(meta))
    dataset = load_dataset(root)
    assert declared_patients(dataset) == {"ankle_000": "P1", "ankle_003": "P1", "ankle_001": "P2"}
    for scheme in ("2", "3", "loo", "holdout"):
        splits, _ = dataset_splits(dataset, scheme, seed=0)
        for split in splits:
            assert ("ankle_000" in split.test) == ("ankle_003" in split.test), (scheme, split)
    assert len(dataset_splits(dataset, "loo", seed=0)[0]) == 3  # 4 exams, 3 patients



@pytest.mark.parametrize("patients, expected", [
    ({"ankle_000": "P1", "ankle_0003": "P1"}, r"names 1 case id\(s\) not in the dataset: 'ankle_0003'"),  # a typo
    ({"ankle_000": 5}, "gives 'ankle_000' the patient 5; expected a patient id as text"),
    ({"ankle_000": None}, "gives 'ankle_000' the patient null"),
    ({"ankle_000": ["P1"]}, 'gives \'ankle_000\' the patient \\["P1"\\]'),
    ({"ankle_000": " "}, "expected a patient id as text"),
    (["ankle_000"], '"patients" is a list'),
])
def test_a_patients_table_that_would_not_group_what_it_says_is_one_line(
        ankle_small: Path, tmp_path: Path, capsys, patients: object, expected: str) -> None:
    """spar check, and every command that loads the dataset, refuses it before any work."""
    from spar_core.cli import main

    root = tmp_path / "ds"
    shutil.copytree(ankle_small, root)
    meta = json.loads((root / "dataset.json").read_text())
    meta["patients"] = patients
    (root / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(Exception, match=expected):
        load_dataset(root)
    assert main(["check", str(root)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "dataset.json" in lines[0] and '"patients"' in lines[0]


def test_groups_merge_across_relations() -> None:
    groups = merge_groups({"a": "g", "b": "g"}, {"b": "P", "c": "P"}, {"d": "Q"})
    assert groups["a"] == groups["b"] == groups["c"] == "a" and groups["d"] == "d"


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the refusal on a machine without CUDA")
def test_an_absent_device_is_one_line_before_any_work(tmp_path: Path, capsys) -> None:
    assert main(["crossval", "--dataset", str(tmp_path / "none"), "--out", str(tmp_path / "run"),
                 "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--device cuda: no CUDA GPU here" in err
    assert not (tmp_path / "run").exists()


def _nnunet_check(folder: Path) -> subprocess.CompletedProcess:
    """nnU-Net v2's own integrity check of a raw dataset, in a process of its own (it starts a worker pool; it
    raises, and the process fails, on what it refuses)."""
    pytest.importorskip("nnunetv2", reason="nnunetv2 not installed (pip install --no-deps -r requirements-nnunet.txt)")
    code = ("from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity\n"
            f"verify_dataset_integrity({str(folder)!r}, 1)")
    return subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, timeout=300)


def _nnunet_accepts(folder: Path) -> None:
    done = _nnunet_check(folder)
    assert done.returncode == 0 and "most likely OK" in done.stdout, done.stderr[-2000:]


def test_nnunet_accepts_what_spar_phantoms_writes(ankle_small: Path, tmp_path: Path) -> None:
    _nnunet_accepts(ankle_small)
    old_form = tmp_path / "old_form"  # what spar wrote before: images without the channel suffix
    shutil.copytree(ankle_small, old_form)
    for image in (old_form / "imagesTr").iterdir():
        image.rename(image.with_name(image.name.replace("_0000", "")))
    assert _nnunet_check(old_form).returncode != 0


def test_nnunet_accepts_what_spar_import_writes(tmp_path: Path) -> None:
    import nibabel
    import numpy as np

    from dicom_support import write_series

    for n in range(3):  # three patients' series
        write_series(tmp_path / "dicom", n_slices=6, rows=8, columns=10, patient=f"P00{n + 1}", seed=n)
    assert main(["import", str(tmp_path / "dicom"), "--out", str(tmp_path / "images_only")]) == 0
    masks = tmp_path / "masks"  # a NIfTI mask per case, on the imported image's grid
    masks.mkdir()
    for case in ("case_001", "case_002", "case_003"):
        image = nibabel.load(tmp_path / "images_only" / "imagesTr" / image_file(case))
        mask = np.zeros(image.shape, np.uint8)
        mask[2:5, 2:5, 1:4] = 1
        nibabel.save(nibabel.Nifti1Image(mask, image.affine), masks / f"{case}.nii.gz")
    out = tmp_path / "Dataset002_Imported"
    assert main(["import", str(tmp_path / "dicom"), "--out", str(out), "--masks", str(masks), "--labels",
                 "1=bone"]) == 0
    assert sorted(p.name for p in (out / "imagesTr").iterdir())[0] == "case_001_0000.nii.gz"
    _nnunet_accepts(out)
