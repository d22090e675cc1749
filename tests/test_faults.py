"""The fault corpus (tests/fault_corpus.py): every fault behind the front door gets one line and exit status 2, or
is read right, or is mended and said so; never a traceback, never a hang."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import fault_corpus as corpus
from dicom_support import write_series


@pytest.fixture(scope="module")
def finished_run(two_fold_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """two_fold_run (baseline and spar, two folds, --postprocess auto) copied and triaged, so that every file a run
    holds is there."""
    from spar_core.cli import main

    run = tmp_path_factory.mktemp("faults") / "run"
    shutil.copytree(two_fold_run, run)
    assert main(["triage", str(run), "--method", "baseline", "--fold", "0"]) == 0
    return run


def _ids(cases: list[corpus.Case]) -> list[str]:
    return [f"{c.kind}: {c.name}" for c in cases]


def _check(outcome: corpus.Outcome) -> None:
    assert outcome.handled, outcome.problem


RUN_CASES = corpus.run_folder_cases(Path("RUN"), Path("DATASET"))  # the table only, for the ids


@pytest.mark.parametrize("index", range(len(RUN_CASES)), ids=_ids(RUN_CASES))
def test_run_folder_files(index: int, finished_run: Path, ankle_small: Path, tmp_path: Path) -> None:
    _check(corpus.run_case(corpus.run_folder_cases(finished_run, ankle_small)[index], tmp_path))


LEVEL_CASES = corpus.run_folder_cases(Path("RUN"), Path("DATASET"), corpus.LEVEL_FILES)


@pytest.mark.parametrize("index", range(len(LEVEL_CASES)), ids=_ids(LEVEL_CASES))
def test_level_model_files(index: int, row_run: tuple[Path, Path], tmp_path: Path) -> None:
    dataset, run = row_run
    _check(corpus.run_case(corpus.run_folder_cases(run, dataset, corpus.LEVEL_FILES)[index], tmp_path))


INPUT_CASES = corpus.input_cases(Path("DATASET"))


@pytest.mark.parametrize("index", range(len(INPUT_CASES)), ids=_ids(INPUT_CASES))
def test_what_a_user_hands_in(index: int, ankle_small: Path, tmp_path: Path) -> None:
    _check(corpus.run_case(corpus.input_cases(ankle_small)[index], tmp_path))


NIFTI_CASES = corpus.nifti_cases(Path("DATASET"))


@pytest.mark.parametrize("index", range(len(NIFTI_CASES)), ids=_ids(NIFTI_CASES))
def test_nifti_header_fields(index: int, ankle_small: Path, tmp_path: Path) -> None:
    _check(corpus.run_case(corpus.nifti_cases(ankle_small)[index], tmp_path))


DICOM_CASES = corpus.dicom_cases(write_series)


@pytest.mark.parametrize("case", DICOM_CASES, ids=_ids(DICOM_CASES))
def test_dicom_header_fields(case: corpus.Case, tmp_path: Path) -> None:
    _check(corpus.run_case(case, tmp_path))


OUTPUT_CASES = corpus.output_cases(Path("DATASET"), Path("RUN"))


@pytest.mark.parametrize("index", range(len(OUTPUT_CASES)), ids=_ids(OUTPUT_CASES))
def test_output_paths(index: int, finished_run: Path, ankle_small: Path, tmp_path: Path) -> None:
    _check(corpus.run_output_case(corpus.output_cases(ankle_small, finished_run)[index], tmp_path))


def _relabel(ankle_small: Path, root: Path, labels: dict[str, int], old_to_new: dict[int, int]) -> Path:
    import json

    import nibabel
    import numpy as np

    shutil.copytree(ankle_small, root)
    meta = json.loads((root / "dataset.json").read_text())
    meta["labels"] = labels
    (root / "dataset.json").write_text(json.dumps(meta))
    for path in (root / "labelsTr").glob("*.nii.gz"):
        img = nibabel.load(path)
        data = np.asanyarray(img.dataobj).copy()
        for old, new in old_to_new.items():
            data[np.asanyarray(img.dataobj) == old] = new
        nibabel.save(nibabel.Nifti1Image(data, img.affine, img.header), path)
    return root


def test_what_check_accepts_trains_and_what_training_cannot_use_check_refuses(ankle_small: Path, tmp_path: Path,
                                                                                 capsys) -> None:
    import json

    from spar_core.cli import main

    gapped = _relabel(ankle_small, tmp_path / "gapped", {"background": 0, "calcaneus": 1, "talus": 2, "tibia": 5},
                      {3: 5})
    for argv in (["check", str(gapped)], ["crossval", "--dataset", str(gapped), "--methods", "baseline", "--folds",
                                          "holdout", "--preset", "tiny", "--out", str(tmp_path / "r1"),
                                          "--device", "cpu"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "expected consecutive values 0..3" in err
    unlabelled = tmp_path / "unlabelled"
    shutil.copytree(ankle_small, unlabelled)
    meta = json.loads((unlabelled / "dataset.json").read_text())
    del meta["training"][0]["label"]  # an exam to predict, not to train on
    (unlabelled / "dataset.json").write_text(json.dumps(meta))
    assert main(["check", str(unlabelled)]) == 0
    out = tmp_path / "r2"
    assert main(["crossval", "--dataset", str(unlabelled), "--methods", "baseline", "--folds", "holdout",
                 "--preset", "tiny", "--out", str(out), "--device", "cpu"]) == 0
    split = json.loads((out / "folds" / "0" / "split.json").read_text())
    assert "ankle_000" not in split["train"] + split["test"] and len(split["train"] + split["test"]) == 3
