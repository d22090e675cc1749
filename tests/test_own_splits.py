"""A model for deployment (``--folds all``) and a published split (``--splits``, nnU-Net's splits_final.json),
end to end on the phantoms with the tiny preset."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel
import pandas as pd
import pytest

from spar_core.cli import main
from spar_core.data.dataset import load_dataset
from spar_core.data.splits import Split, read_splits_file, straddling
from spar_core.errors import SparError
from spar_core.layout.run_folder import RunFolder


def test_folds_all_trains_on_every_exam_and_predicts(ankle_small: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "final"
    assert main(["crossval", "--dataset", str(ankle_small), "--methods", "baseline", "--folds", "all",
                 "--preset", "tiny", "--out", str(run), "--device", "cpu"]) == 0
    cases = sorted(c.case_id for c in load_dataset(ankle_small).cases)
    split = json.loads(RunFolder(run).split_path(0).read_text())
    assert split == {"fold": 0, "train": cases, "test": []}
    config = RunFolder(run).read_config()
    assert config["folds"] == "all" and config["n_folds"] == 1 and config["status"] == "complete"
    image = next((ankle_small / "imagesTr").glob("*.nii.gz"))
    assert main(["predict", "--run", str(run), "--method", "baseline", "--image", str(image),
                 "--out", str(tmp_path / "p.nii.gz")]) == 0
    assert nibabel.load(tmp_path / "p.nii.gz").shape == nibabel.load(image).shape
    capsys.readouterr()
    assert main(["report", str(run)]) == 2  # nothing was tested: one line, not a traceback
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_a_published_split_is_reproduced(ankle_small: Path, tmp_path: Path, capsys) -> None:
    cases = sorted(c.case_id for c in load_dataset(ankle_small).cases)
    folds = [{"train": cases[2:], "val": cases[:2]}, {"train": cases[:2] + cases[3:], "val": cases[2:3]}]
    path = tmp_path / "splits_final.json"
    path.write_text(json.dumps(folds))
    run = tmp_path / "run"
    assert main(["crossval", "--dataset", str(ankle_small), "--methods", "baseline", "--splits", str(path),
                 "--preset", "tiny", "--out", str(run), "--device", "cpu"]) == 0
    for k, fold in enumerate(folds):
        split = json.loads(RunFolder(run).split_path(k).read_text())
        assert split["train"] == sorted(fold["train"]) and split["test"] == sorted(fold["val"])
    metrics = pd.read_csv(RunFolder(run).metrics_csv)
    assert sorted(metrics["case"].unique()) == cases[:3]
    assert RunFolder(run).read_config()["folds"].startswith("splits:splits_final.json:")
    # the fourth exam is tested by no fold: legitimate in a published split, said, recorded and named in the report
    assert f"1 of 4 labelled exams are tested by no fold and appear in no table: {cases[3]}" in capsys.readouterr().err
    assert RunFolder(run).read_config()["untested_exams"] == [cases[3]]
    assert main(["report", str(run), "--bootstrap", "50"]) == 0
    assert f"which no table holds: {cases[3]}" in (run / "report" / "report.md").read_text()
    # an edited file is another experiment: the run refuses to continue under it
    path.write_text(json.dumps(folds[:1]))
    capsys.readouterr()
    assert main(["crossval", "--dataset", str(ankle_small), "--methods", "baseline", "--splits", str(path),
                 "--preset", "tiny", "--out", str(run), "--device", "cpu"]) == 2
    assert "folds" in capsys.readouterr().err


@pytest.mark.parametrize("content, expected", [
    ("{", "not valid JSON"),
    ('{"train": []}', "expected a list"),
    ('[{"train": ["ankle_000"]}]', "fold 0 is not"),
    ('[{"train": ["nobody"], "val": ["ankle_000"]}]', "not in the dataset"),
    ('[{"train": ["ankle_000"], "val": ["ankle_000"]}]', "on both sides"),
    ('[{"train": [], "val": ["ankle_000"]}]', "empty or repeated"),
    ('[{"train": ["ankle_000", "ankle_001"], "val": []}]', "fold 0 has an empty val list"),
    ('[{"train": ["ankle_001"], "val": ["ankle_000"]}, {"train": ["ankle_001"], "val": ["ankle_000"]}]',
     "'ankle_000' is in the val lists of folds 0 and 1"),
])
def test_bad_splits_files(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(content)
    with pytest.raises(SparError, match=expected):
        read_splits_file(path, ["ankle_000", "ankle_001"])


def test_twins_straddling_a_file_split_are_named() -> None:
    splits = [Split(0, ("a", "b"), ("c",)), Split(1, ("a", "c"), ("b",))]
    assert straddling(splits, {"a": "a", "c": "a"}) == ["fold 0: a in training with a twin in test"]


def test_an_exam_tested_twice_is_one_line_before_any_work(ankle_small: Path, tmp_path: Path, capsys) -> None:
    cases = sorted(c.case_id for c in load_dataset(ankle_small).cases)
    folds = [{"train": cases[2:], "val": cases[:2]}, {"train": cases[1:], "val": cases[:1]}]
    path = tmp_path / "splits_final.json"
    path.write_text(json.dumps(folds))
    assert main(["crossval", "--dataset", str(ankle_small), "--methods", "baseline", "--splits", str(path),
                 "--preset", "tiny", "--out", str(tmp_path / "run"), "--device", "cpu"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"'{cases[0]}' is in the val lists of folds 0 and 1" in lines[0]
    assert not (tmp_path / "run").exists()
