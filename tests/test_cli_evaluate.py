"""``spar evaluate``: CSV rows for a crafted pair; mismatched or missing files fail with one line, exit 2."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import spar_core.cli as cli

SPACING = (0.5, 0.5, 2.0)
VOXEL_ML = 0.5 * 0.5 * 2.0 / 1000


def save(path: Path, data: np.ndarray, spacing=SPACING) -> Path:
    img = nib.Nifti1Image(data, np.diag([*spacing, 1.0]), dtype=data.dtype)
    img.header.set_zooms(spacing)
    nib.save(img, path)
    return path


def crafted_pair(tmp_path: Path) -> tuple[Path, Path]:
    """Truth: label 1 a 4×4×2 block, label 2 a 2×2×2 block. Prediction: label 1 one layer thicker along x,
    label 2 missed, and a stray label 3 voxel."""
    truth = np.zeros((12, 10, 6), dtype=np.uint8)
    truth[2:6, 2:6, 1:3] = 1
    truth[8:10, 6:8, 2:4] = 2
    pred = np.zeros_like(truth)
    pred[2:7, 2:6, 1:3] = 1
    pred[0, 0, 0] = 3
    return save(tmp_path / "pred.nii.gz", pred), save(tmp_path / "truth.nii.gz", truth)


def read_csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_rows_for_a_crafted_pair(tmp_path: Path, capsys) -> None:
    pred, truth = crafted_pair(tmp_path)
    assert cli.main(["evaluate", "--pred", str(pred), "--truth", str(truth)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "structure,label,dice,ravd_pct,assd_mm,mssd_mm,true_ml,pred_ml,shifted_to"
    rows = read_csv(out)
    assert [r["structure"] for r in rows] == ["label_1", "label_2", "label_3"]
    one, two, three = rows
    assert float(one["dice"]) == pytest.approx(2 * 32 / (32 + 40), rel=1e-6)
    assert float(one["ravd_pct"]) == pytest.approx(25.0)
    assert float(one["mssd_mm"]) == pytest.approx(0.5)  # one 0.5 mm layer along x
    assert float(one["true_ml"]) == pytest.approx(32 * VOXEL_ML)
    assert float(one["pred_ml"]) == pytest.approx(40 * VOXEL_ML)
    assert float(two["dice"]) == 0.0 and float(two["ravd_pct"]) == 100.0 and math.isnan(float(two["assd_mm"]))
    assert float(three["dice"]) == 0.0 and math.isnan(float(three["ravd_pct"])) and float(three["true_ml"]) == 0.0


def test_a_structure_on_its_neighbour_is_reported_shifted(tmp_path: Path, capsys) -> None:
    truth = np.zeros((12, 10, 6), dtype=np.uint8)
    truth[0:4, 2:6, 1:3], truth[4:8, 2:6, 1:3] = 1, 2
    pred = np.zeros_like(truth)
    pred[4:8, 2:6, 1:3], pred[8:12, 2:6, 1:3] = 1, 2  # both one level down: 1 on the true 2, 2 below it
    paths = save(tmp_path / "p.nii.gz", pred), save(tmp_path / "t.nii.gz", truth)
    assert cli.main(["evaluate", "--pred", str(paths[0]), "--truth", str(paths[1])]) == 0
    rows = read_csv(capsys.readouterr().out)
    assert [(r["structure"], r["shifted_to"], float(r["dice"])) for r in rows] == [("label_1", "label_2", 0.0),
                                                                                  ("label_2", "", 0.0)]


def test_names_from_dataset_json(tmp_path: Path, capsys) -> None:
    pred, truth = crafted_pair(tmp_path)
    labels = tmp_path / "dataset.json"
    labels.write_text(json.dumps({"labels": {"background": 0, "talus": 1, "tibia": 2, "fibula": 4}}))
    assert cli.main(["evaluate", "--pred", str(pred), "--truth", str(truth), "--labels", str(labels)]) == 0
    rows = read_csv(capsys.readouterr().out)
    # Declared names in label order (fibula, absent from both, is scored as correctly absent); the undeclared
    # value 3 is still reported.
    assert [(r["structure"], r["label"]) for r in rows] == [("talus", "1"), ("tibia", "2"), ("label_3", "3"),
                                                             ("fibula", "4")]
    assert float(rows[3]["dice"]) == 1.0


def test_postprocess_flag_removes_the_island(tmp_path: Path, capsys) -> None:
    pred, truth = crafted_pair(tmp_path)
    data = np.asarray(nib.load(pred).dataobj).copy()
    data[10, 0, 5] = 1  # an island of label 1
    save(pred, data)
    assert cli.main(["evaluate", "--pred", str(pred), "--truth", str(truth)]) == 0
    raw = read_csv(capsys.readouterr().out)[0]
    assert cli.main(["evaluate", "--pred", str(pred), "--truth", str(truth), "--postprocess"]) == 0
    post = read_csv(capsys.readouterr().out)[0]
    assert float(post["pred_ml"]) == pytest.approx(40 * VOXEL_ML)
    assert float(raw["pred_ml"]) == pytest.approx(41 * VOXEL_ML)
    assert float(post["mssd_mm"]) < float(raw["mssd_mm"])


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err
    assert captured.out == ""
    assert lines[0].startswith("spar evaluate: error: ")
    return lines[0]


def test_mismatched_shapes_exit_2_with_one_line(tmp_path: Path, capsys) -> None:
    pred, truth = crafted_pair(tmp_path)
    save(pred, np.zeros((12, 10, 5), dtype=np.uint8))
    assert cli.main(["evaluate", "--pred", str(pred), "--truth", str(truth)]) == 2
    line = one_error_line(capsys)
    assert str(pred) in line and str(truth) in line and "12×10×5" in line and "12×10×6" in line


def test_mismatched_spacing_exit_2_with_one_line(tmp_path: Path, capsys) -> None:
    pred, truth = crafted_pair(tmp_path)
    save(pred, np.asarray(nib.load(pred).dataobj), spacing=(0.5, 0.5, 2.5))
    assert cli.main(["evaluate", "--pred", str(pred), "--truth", str(truth)]) == 2
    line = one_error_line(capsys)
    assert str(pred) in line and str(truth) in line


def test_missing_file_exit_2_naming_it(tmp_path: Path, capsys) -> None:
    _, truth = crafted_pair(tmp_path)
    missing = tmp_path / "nope.nii.gz"
    assert cli.main(["evaluate", "--pred", str(missing), "--truth", str(truth)]) == 2
    assert str(missing) in one_error_line(capsys)


def test_bad_labels_file_exit_2(tmp_path: Path, capsys) -> None:
    pred, truth = crafted_pair(tmp_path)
    labels = tmp_path / "dataset.json"
    labels.write_text("{not json")
    assert cli.main(["evaluate", "--pred", str(pred), "--truth", str(truth), "--labels", str(labels)]) == 2
    assert str(labels) in one_error_line(capsys)


@pytest.mark.parametrize("value", [2**40, 2**40 + 1])
@pytest.mark.parametrize("which", ["pred", "truth"])
def test_label_values_past_what_spar_reads_are_refused_not_wrapped(tmp_path: Path, capsys, value: int,
                                                                   which: str) -> None:
    """A corrupt export writes 2**40 + 1 where the truth has 1: cast to int32 it would wrap to 1 and score a Dice
    of 1.000 with exit 0; read as it is, it is refused in one line naming the file and the value."""
    pred, truth = crafted_pair(tmp_path)
    broken = nib.load(pred if which == "pred" else truth).get_fdata().astype(np.int64)
    broken[broken == 1] = value
    save(pred if which == "pred" else truth, broken)
    assert cli.main(["evaluate", "--pred", str(pred), "--truth", str(truth)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and f"{which}.nii.gz" in lines[0] and str(value) in lines[0]


def test_a_label_value_of_the_largest_kind_spar_reads_is_scored(tmp_path: Path, capsys) -> None:
    pred, truth = crafted_pair(tmp_path)
    for path in (pred, truth):
        data = nib.load(path).get_fdata().astype(np.int32)
        data[data == 2] = 32767
        save(path, data)
    assert cli.main(["evaluate", "--pred", str(pred), "--truth", str(truth)]) == 0
    assert "label_32767" in capsys.readouterr().out
