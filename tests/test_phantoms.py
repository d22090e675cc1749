"""spar_core.data.phantoms: deterministic, anatomically sane synthetic pediatric exams in the nnU-Net layout."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

import spar_core.cli as cli
from spar_core.errors import SparError
from spar_core.data.phantoms import Exam, Tissue, generate_cohort, plan_cohort, simulate_exam
from spar_core.data.phantoms import ankle, shoulder

MODULES = {"ankle": ankle, "shoulder": shoulder}


@pytest.fixture(scope="module")
def exams() -> dict[str, list[Exam]]:
    """The first three exams of each default cohort (seed 0), in memory."""
    return {a: [simulate_exam(p) for p in plan_cohort(a, 3, seed=0)] for a in MODULES}


def young(anatomy: str, age: float) -> Exam:
    """Subject 0 of ``anatomy`` made a healthy, clean exam at ``age`` years."""
    plan = plan_cohort(anatomy, 1)[0]
    scale = 0.55 + 0.45 * (age - 4) / 13
    return simulate_exam(dataclasses.replace(plan, age_years=age, scale=scale, pathology=None, degraded=None))


def in_plane_contacts(label: np.ndarray, a: int, b: int) -> int:
    """Pairs of in-plane 4-neighbour voxels labelled ``a`` and ``b``."""
    A, B = label == a, label == b
    return int((A[1:] & B[:-1]).sum() + (A[:-1] & B[1:]).sum() + (A[:, 1:] & B[:, :-1]).sum()
               + (A[:, :-1] & B[:, 1:]).sum())


@pytest.mark.parametrize("anatomy", list(MODULES))
def test_default_cohort_plan_has_pathologies_outliers_and_anisotropic_grids(anatomy: str) -> None:
    mod = MODULES[anatomy]
    plans = plan_cohort(anatomy)
    assert len(plans) == mod.DEFAULT_SUBJECTS
    assert sorted(p.pathology for p in plans if p.pathology) == sorted(mod.PATHOLOGIES)
    assert sorted(p.degraded for p in plans if p.degraded) == ["low_snr", "motion"]
    assert not any(p.pathology and p.degraded for p in plans)
    assert all(p.snr <= 5 for p in plans if p.degraded == "low_snr")
    assert all(12 <= p.snr <= 40 for p in plans if p.degraded != "low_snr")
    for p in plans:
        sx, sy, sz = p.spacing
        assert 4 <= p.age_years <= 17 and p.sex in ("F", "M")
        assert 0.45 <= sx == sy <= 0.6 and 2.0 <= sz <= 3.0 and sz >= 3 * sx
        assert 160 <= p.shape[0] == p.shape[1] <= 224 and 25 <= p.shape[2] <= 45


@pytest.mark.parametrize("anatomy", list(MODULES))
def test_subject_depends_on_seed_and_index_only(anatomy: str) -> None:
    assert plan_cohort(anatomy, 3, seed=0) == plan_cohort(anatomy, 4, seed=0)[:3]
    assert plan_cohort(anatomy, 3, seed=0) != plan_cohort(anatomy, 3, seed=1)
    assert plan_cohort(anatomy, 1)[0] == plan_cohort(anatomy)[0]


def test_same_subject_same_arrays_whatever_the_cohort_size(exams) -> None:
    again = simulate_exam(plan_cohort("ankle", 4, seed=0)[2])
    assert np.array_equal(again.image, exams["ankle"][2].image)
    assert np.array_equal(again.label, exams["ankle"][2].label)
    other = simulate_exam(plan_cohort("ankle", 3, seed=1)[2])
    assert other.image.shape != again.image.shape or not np.array_equal(other.image, again.image)


@pytest.mark.parametrize("anatomy", list(MODULES))
def test_every_bone_present_with_declared_labels_and_mr_intensities(exams, anatomy: str) -> None:
    labels = MODULES[anatomy].LABELS
    for exam in exams[anatomy]:
        assert exam.image.dtype == np.int16 and exam.label.dtype == np.uint8
        assert exam.image.shape == exam.label.shape == exam.tissue.shape == exam.plan.shape
        assert set(np.unique(exam.label)) <= set(labels.values())
        counts = np.bincount(exam.label.ravel(), minlength=len(labels))
        assert all(counts[v] > 500 for name, v in labels.items() if name != "background"), counts
        assert exam.image.min() >= 0 and 500 < np.percentile(exam.image, 99) < 1500
        np.testing.assert_allclose(np.diag(exam.affine)[:3], exam.plan.spacing)


def test_talus_and_calcaneus_are_close_neighbours_that_never_touch_in_plane(exams) -> None:
    for exam in exams["ankle"]:
        assert exam.plan.pathology != "talocalcaneal_coalition"  # the one exam where they are fused
        to_calcaneus = ndimage.distance_transform_edt(exam.label != 1, sampling=exam.plan.spacing)
        gap = float(to_calcaneus[exam.label == 2].min())
        assert 0 < gap < 3.0, gap  # mm: a thin subtalar joint
        assert in_plane_contacts(exam.label, 1, 2) == 0
        assert in_plane_contacts(exam.label, 2, 3) == 0


def test_glenohumeral_joint_is_thin(exams) -> None:
    for exam in exams["shoulder"]:
        to_humerus = ndimage.distance_transform_edt(exam.label != 1, sampling=exam.plan.spacing)
        assert 0 < float(to_humerus[exam.label == 2].min()) < 3.5
        assert in_plane_contacts(exam.label, 1, 2) == 0


@pytest.mark.parametrize("anatomy, bone", [("ankle", 3), ("shoulder", 1)])
def test_growth_plate_splits_the_bone_of_a_child_not_of_an_adult(anatomy: str, bone: int) -> None:
    child = young(anatomy, 6.0)
    plate = (child.tissue == Tissue.PHYSIS) & (child.label == bone)
    assert plate.sum() > 300
    # The plate splits the bone's appearance, not its label: the label stays one piece.
    assert ndimage.label(child.label == bone)[1] == 1
    adult = young(anatomy, 17.0)
    assert ((adult.tissue == Tissue.PHYSIS) & (adult.label == bone)).sum() == 0


def test_motion_exam_has_ghosts_in_the_air() -> None:
    plan = plan_cohort("shoulder", 1)[0]
    clean = simulate_exam(dataclasses.replace(plan, degraded=None, snr=30.0))
    moved = simulate_exam(dataclasses.replace(plan, degraded="motion", snr=30.0))
    air = ndimage.binary_erosion(clean.tissue == Tissue.AIR, iterations=8)
    assert moved.image[air].mean() > 2 * clean.image[air].mean()


@pytest.mark.parametrize(
    "kwargs, word",
    [({"anatomy": "knee"}, "anatomy"), ({"anatomy": "ankle", "subjects": 0}, "subjects"),
     ({"anatomy": "ankle", "subjects": -3}, "subjects")],
)
def test_bad_arguments_raise_spar_error_naming_them(kwargs: dict, word: str) -> None:
    with pytest.raises(SparError, match=word):
        plan_cohort(**kwargs)


def test_generate_cohort_writes_identical_nnunet_datasets(tmp_path: Path) -> None:
    first = generate_cohort("ankle", tmp_path / "a", subjects=2, seed=3)
    second = generate_cohort("ankle", tmp_path / "b", subjects=2, seed=3, workers=1)
    meta = json.loads((first / "dataset.json").read_text())
    assert meta["labels"] == {"background": 0, "calcaneus": 1, "talus": 2, "tibia": 3}
    assert meta["slice_axis"] == 2 and meta["numTraining"] == 2 and meta["file_ending"] == ".nii.gz"
    # nnU-Net v2 raw form: the image named after its first channel, the label after the case
    assert meta["training"][1] == {"image": "./imagesTr/ankle_001_0000.nii.gz", "label": "./labelsTr/ankle_001.nii.gz"}
    assert [s["case"] for s in meta["subjects"]] == ["ankle_000", "ankle_001"]
    assert set(meta["subjects"][0]) >= {"case", "age_years", "sex", "pathology", "degraded", "spacing", "snr"}
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) == 5  # dataset.json + 2 images + 2 labels, no temporary leftovers
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
    plan = plan_cohort("ankle", 2, seed=3)[1]
    img = nib.load(first / "imagesTr" / "ankle_001_0000.nii.gz")
    lab = nib.load(first / "labelsTr" / "ankle_001.nii.gz")
    assert img.get_data_dtype() == np.int16 and lab.get_data_dtype() == np.uint8
    assert int(img.header["qform_code"]) == int(img.header["sform_code"]) == 1
    np.testing.assert_allclose(img.header.get_zooms(), plan.spacing, rtol=1e-6)
    exam = simulate_exam(plan)
    assert np.array_equal(np.asanyarray(img.dataobj), exam.image)
    assert np.array_equal(np.asanyarray(lab.dataobj), exam.label)


def test_cli_writes_a_dataset(tmp_path: Path, capsys) -> None:
    out = tmp_path / "shoulders"
    assert cli.main(["phantoms", "--anatomy", "shoulder", "--out", str(out), "--subjects", "1", "--seed", "2"]) == 0
    assert "wrote 1 shoulder exams" in capsys.readouterr().out
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["labels"] == {"background": 0, "humerus": 1, "scapula": 2}
    assert (out / "imagesTr" / "shoulder_000_0000.nii.gz").is_file() and (out / "labelsTr" / "shoulder_000.nii.gz").is_file()


def test_cli_bad_subjects_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    assert cli.main(["phantoms", "--anatomy", "ankle", "--out", str(tmp_path / "x"), "--subjects", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("spar phantoms: error: subjects")
    assert not (tmp_path / "x").exists()
