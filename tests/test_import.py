"""spar import: DICOM series with known geometry written in code, imported, and checked voxel by voxel against
the DICOM's own pixel positions; every bad input one line, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel
import numpy as np
import pytest
from pydicom.uid import JPEGLosslessSV1

from dicom_support import SAGITTAL, WrittenSeries, oblique, write_enhanced, write_seg, write_series
from spar_core import cli
from spar_core.data.dataset import load_dataset, load_volume
from spar_core.data.nifti import write_nifti
from spar_core.data.importer import parse_labels, plan_import, write_dataset
from spar_core.data.integrity import check_dataset
from spar_core.errors import SparError

RAS_FROM_LPS = np.array([-1.0, -1.0, 1.0])


def assert_round_trip(image: nibabel.Nifti1Image, series: WrittenSeries) -> None:
    """Every DICOM pixel lands, through the written affine, on a voxel holding its rescaled value."""
    inverse = np.linalg.inv(image.affine)
    data = np.asanyarray(image.dataobj)
    for f, pixels in enumerate(series.pixels):
        for row, col in [(0, 0), (0, pixels.shape[1] - 1), (pixels.shape[0] - 1, 0), (3, 4)]:
            ras = series.lps(f, row, col) * RAS_FROM_LPS
            ijk = inverse[:3, :3] @ ras + inverse[:3, 3]
            assert np.allclose(ijk, np.round(ijk), atol=1e-3)
            i, j, k = np.round(ijk).astype(int)
            assert data[i, j, k] == pytest.approx(pixels[row, col] * series.slope + series.intercept)


def run_cli(*argv: str) -> int:
    return cli.main(["import", *map(str, argv)])


@pytest.mark.parametrize("orientation", [SAGITTAL, oblique(25.0)], ids=["sagittal", "oblique"])
def test_series_written_with_dicom_geometry(tmp_path: Path, orientation) -> None:
    series = write_series(tmp_path / "dicom", orientation=orientation)
    out = write_dataset(plan_import(tmp_path / "dicom"), tmp_path / "ds")
    image = nibabel.load(out / "imagesTr" / "case_001_0000.nii.gz")
    assert image.shape == (10, 8, 6)  # (columns, rows, slices), as dcm2niix and ITK-SNAP store them
    assert np.allclose(image.header.get_zooms(), (0.7, 0.8, 3.0))
    assert_round_trip(image, series)
    assert check_dataset(out).n_cases == 1


def test_patients_with_seg_and_nifti_masks(tmp_path: Path, capsys) -> None:
    a = write_series(tmp_path / "dicom", patient="B-patient", seed=1)
    write_series(tmp_path / "dicom", patient="A-patient", seed=2, orientation=oblique(10.0))
    masks = [np.zeros(p.shape, np.uint8) for p in a.pixels]
    masks[0][2:5, 3:7] = 1
    masks[3][1:3, 1:3] = 2
    write_seg(a, masks, ["femur", "tibia"], tmp_path / "dicom" / "seg" / "mask.dcm")
    # B's mask: a NIfTI drawn on its imported image, named after the PatientID
    probe = write_dataset(plan_import(tmp_path / "dicom", description="nothing|T1"), tmp_path / "probe")
    b_image = nibabel.load(probe / "imagesTr" / "case_001_0000.nii.gz")  # A-patient sorts first
    b_mask = np.zeros(b_image.shape, np.uint8)
    b_mask[2:6, 1:4, 1:3] = 2
    (tmp_path / "masks").mkdir()
    write_nifti(b_mask, b_image.affine, tmp_path / "masks" / "A-patient.nii.gz")

    code = run_cli(tmp_path / "dicom", "--out", tmp_path / "ds", "--masks", tmp_path / "masks",
                   "--labels", "1=femur,2=tibia")
    assert code == 0, capsys.readouterr().err
    dataset = load_dataset(tmp_path / "ds")
    assert dataset.labels == {"background": 0, "femur": 1, "tibia": 2}
    assert [c.case_id for c in dataset.cases] == ["case_001", "case_002"]
    record = json.loads((tmp_path / "ds" / "import.json").read_text())["cases"]
    assert [r["patient_id"] for r in record] == ["A-patient", "B-patient"]
    assert [r["mask_kind"] for r in record] == ["nifti", "seg"]
    vol_b = load_volume(dataset, "case_001")
    assert np.array_equal(vol_b.label, b_mask)
    vol_a = load_volume(dataset, "case_002")
    assert_round_trip(nibabel.load(dataset.case("case_002").image_path), a)
    # each SEG pixel sits where its source pixel sits
    inverse = np.linalg.inv(vol_a.affine)
    for f, mask in enumerate(masks):
        for row, col in [(3, 4), (1, 1), (0, 0)]:
            ijk = np.round(inverse[:3, :3] @ (a.lps(f, row, col) * RAS_FROM_LPS) + inverse[:3, 3]).astype(int)
            assert vol_a.label[tuple(ijk)] == mask[row, col]
    b_count = int(b_mask.astype(bool).sum())
    background = vol_a.label.size + vol_b.label.size - 12 - 4 - b_count
    assert check_dataset(tmp_path / "ds").voxel_counts == {"background": background, "femur": 12, "tibia": 4 + b_count}
    # import.json's patients hand-edited: a case that is not the dataset's, or a patient that is not text, is one
    # line (the grouping it says would not be applied)
    original = (tmp_path / "ds" / "import.json").read_text()
    for case, patient, said in (("case_009", "A-patient", 'case "case_009" is not in the dataset'),
                                ("case_001", 7, "case 'case_001' has the patient 7")):
        edited = json.loads(original)
        edited["cases"][0].update(case=case, patient_id=patient)
        (tmp_path / "ds" / "import.json").write_text(json.dumps(edited))
        capsys.readouterr()
        assert cli.main(["check", str(tmp_path / "ds")]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "import.json" in lines[0] and said in lines[0]


def test_slice_arrays_by_index_and_uid(tmp_path: Path) -> None:
    series = write_series(tmp_path / "dicom")
    probe = write_dataset(plan_import(tmp_path / "dicom"), tmp_path / "probe")
    image = nibabel.load(probe / "imagesTr" / "case_001_0000.nii.gz")
    folder = tmp_path / "masks" / "case_001"
    folder.mkdir(parents=True)
    first = np.zeros((8, 10), np.uint8)
    first[1:4, 2:9] = 1
    np.save(folder / "0.npy", first.T)  # columns × rows: needs --transpose
    import pydicom
    uid_of = {str(pydicom.dcmread(p).SOPInstanceUID): f for f, p in enumerate(series.paths)}
    last_uid = plan_import(tmp_path / "dicom").cases[0].geometry.slices
    other = np.zeros((8, 10), np.uint8)
    other[5, 5] = 1
    some_uid = last_uid[2].sop_uid
    np.save(folder / f"{some_uid}.npy", other.T)
    plan = plan_import(tmp_path / "dicom", masks=tmp_path / "masks", labels=parse_labels("1=bone"), transpose=True)
    out = write_dataset(plan, tmp_path / "ds")
    label = load_volume(load_dataset(out), "case_001").label
    assert np.array_equal(label[:, :, 0], first.T)
    assert label.sum() == first.sum() + 1
    # the UID-named slice lands where that DICOM file's pixel is
    f = uid_of[some_uid]
    inverse = np.linalg.inv(image.affine)
    ijk = np.round(inverse[:3, :3] @ (series.lps(f, 5, 5) * RAS_FROM_LPS) + inverse[:3, 3]).astype(int)
    assert label[tuple(ijk)] == 1
    with pytest.raises(SparError, match=r"--transpose"):
        write_dataset(plan_import(tmp_path / "dicom", masks=tmp_path / "masks", labels=parse_labels("1=bone")),
                      tmp_path / "ds2")
    assert not (tmp_path / "ds2").exists()


def test_nifti_mask_with_permuted_axes_is_moved_back(tmp_path: Path) -> None:
    write_series(tmp_path / "dicom")
    probe = write_dataset(plan_import(tmp_path / "dicom"), tmp_path / "probe")
    image = nibabel.load(probe / "imagesTr" / "case_001_0000.nii.gz")
    mask = np.zeros(image.shape, np.uint8)
    mask[1:3, 2:7, 4] = 1
    stored = nibabel.Nifti1Image(mask, image.affine).as_reoriented([[2, -1], [0, 1], [1, 1]])
    (tmp_path / "masks").mkdir()
    write_nifti(np.asanyarray(stored.dataobj), stored.affine, tmp_path / "masks" / "case_001.nii.gz")
    out = write_dataset(plan_import(tmp_path / "dicom", masks=tmp_path / "masks", labels={"background": 0, "b": 1}),
                        tmp_path / "ds")
    assert np.array_equal(load_volume(load_dataset(out), "case_001").label, mask)


def _one_line_error(capsys, *argv) -> str:
    code = run_cli(*argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Traceback" not in err, err
    return err


def test_mixed_series_needs_a_choice(tmp_path: Path, capsys) -> None:
    first = write_series(tmp_path / "dicom", description="T1 sag", number=3)
    import pydicom
    study = str(pydicom.dcmread(first.paths[0]).StudyInstanceUID)
    write_series(tmp_path / "dicom", description="T2 sag", number=4, study_uid=study, seed=5)
    err = _one_line_error(capsys, tmp_path / "dicom", "--out", tmp_path / "ds")
    assert "several series" in err and "--series-description" in err
    assert not (tmp_path / "ds").exists()
    assert run_cli(tmp_path / "dicom", "--out", tmp_path / "ds", "--series-description", "^t2") == 0
    record = json.loads((tmp_path / "ds" / "import.json").read_text())
    assert [c["series_description"] for c in record["cases"]] == ["T2 sag"]
    assert run_cli(tmp_path / "dicom", "--out", tmp_path / "all", "--all-series") == 0
    assert len(load_dataset(tmp_path / "all").cases) == 2


@pytest.mark.parametrize("kwargs, expected", [
    ({"positions": [0, 3, 6, 12, 15, 18]}, "1 missing slice"),
    ({"positions": [0, 3, 3, 6, 9, 12]}, "duplicated slice"),
    ({"positions": [0, 3, 6, 9.5, 12.5, 15]}, "non-uniform slice spacing"),
    ({"shear": (0.0, 0.6, 0.0)}, "gantry tilt"),
    ({"n_slices": 1}, "single slice"),
    ({"transfer_syntax": JPEGLosslessSV1}, "pylibjpeg"),
], ids=["missing", "duplicated", "non-uniform", "tilt", "single", "compressed"])
def test_bad_series_one_line(tmp_path: Path, capsys, kwargs, expected) -> None:
    n = len(kwargs["positions"]) if "positions" in kwargs else kwargs.pop("n_slices", 6)
    write_series(tmp_path / "dicom", n_slices=n, **kwargs)
    err = _one_line_error(capsys, tmp_path / "dicom", "--out", tmp_path / "ds")
    assert expected in err and "series 3 'T1 sag' of patient 'P001'" in err
    assert not (tmp_path / "ds").exists() and not list(tmp_path.glob(".ds*"))


def test_mask_on_another_grid_one_line(tmp_path: Path, capsys) -> None:
    write_series(tmp_path / "dicom")
    (tmp_path / "masks").mkdir()
    shifted = np.diag([0.7, 0.8, 3.0, 1.0])
    write_nifti(np.zeros((10, 8, 6), np.uint8), shifted, tmp_path / "masks" / "case_001.nii.gz")
    err = _one_line_error(capsys, tmp_path / "dicom", "--out", tmp_path / "ds", "--masks", tmp_path / "masks",
                          "--labels", "1=bone")
    assert "case_001.nii.gz: mask" in err and "expected the same" in err
    assert not (tmp_path / "ds").exists()
    write_nifti(np.zeros((10, 8, 5), np.uint8), shifted, tmp_path / "masks" / "case_001.nii.gz")
    assert "shape" in _one_line_error(capsys, tmp_path / "dicom", "--out", tmp_path / "ds", "--masks",
                                      tmp_path / "masks", "--labels", "1=bone")


def test_other_bad_inputs_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not dicom")
    assert "no DICOM image" in _one_line_error(capsys, tmp_path / "empty", "--out", tmp_path / "ds")
    write_series(tmp_path / "dicom")
    (tmp_path / "masks").mkdir()
    write_nifti(np.zeros((10, 8, 6), np.uint8), np.eye(4), tmp_path / "masks" / "case_001.nii.gz")
    assert "--labels" in _one_line_error(capsys, tmp_path / "dicom", "--out", tmp_path / "ds", "--masks",
                                         tmp_path / "masks")
    assert "VALUE=NAME" in _one_line_error(capsys, tmp_path / "dicom", "--out", tmp_path / "ds", "--labels", "bone")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    assert "not empty" in _one_line_error(capsys, tmp_path / "dicom", "--out", tmp_path / "taken")
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"
    assert "SPAR_MAX_VOXELS" in _one_line_error_env(capsys, tmp_path)


def _one_line_error_env(capsys, tmp_path: Path) -> str:
    mp = pytest.MonkeyPatch()
    mp.setenv("SPAR_MAX_VOXELS", "100")
    try:
        return _one_line_error(capsys, tmp_path / "dicom", "--out", tmp_path / "ds")
    finally:
        mp.undo()


def test_list_writes_nothing(tmp_path: Path, capsys) -> None:
    write_series(tmp_path / "dicom", patient="X 1")
    assert run_cli(tmp_path / "dicom", "--list", "--case-ids", "patient") == 0
    out = capsys.readouterr().out
    assert out.startswith("X_1: series 3 'T1 sag' of patient 'X 1'") and "10 × 8 × 6 voxels, no mask" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dicom"]


def test_a_multi_frame_image_imports_like_its_slices(tmp_path: Path) -> None:
    series = write_series(tmp_path / "slices", orientation=oblique(15.0))
    write_enhanced(series, tmp_path / "enhanced" / "mr.dcm")
    plan = plan_import(tmp_path / "enhanced")
    assert plan.cases[0].geometry.multiframe and plan.cases[0].geometry.n_slices == 6
    image = nibabel.load(write_dataset(plan, tmp_path / "ds") / "imagesTr" / "case_001_0000.nii.gz")
    assert image.shape == (10, 8, 6)
    assert_round_trip(image, series)


@pytest.mark.parametrize("value", [2**40, 2**40 + 1])
def test_a_mask_value_past_what_spar_reads_is_refused_not_wrapped(tmp_path: Path, capsys, value: int) -> None:
    write_series(tmp_path / "dicom")
    probe = write_dataset(plan_import(tmp_path / "dicom"), tmp_path / "probe")
    image = nibabel.load(probe / "imagesTr" / "case_001_0000.nii.gz")
    mask = np.zeros(image.shape, np.int64)
    mask[1:3, 2:7, 4] = value  # 2**40 + 1 would wrap to 1 on a cast to int32
    (tmp_path / "masks").mkdir()
    nibabel.save(nibabel.Nifti1Image(mask, image.affine, dtype=np.int64), tmp_path / "masks" / "case_001.nii.gz")
    err = _one_line_error(capsys, tmp_path / "dicom", "--out", tmp_path / "ds", "--masks", tmp_path / "masks",
                          "--labels", "1=bone")
    assert "case_001.nii.gz" in err and str(value) in err
    assert not (tmp_path / "ds").exists()
