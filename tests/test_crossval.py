"""Cross-validation: a complete metrics table, resumable units, shards that cover the grid exactly once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel
import numpy as np
import pandas as pd
import pytest

from spar_core.cli import main
from spar_core.methods import parse_methods
from spar_core.pipeline.crossval import grid
from spar_core.pipeline.shard import Shard
from spar_core.pipeline.workers import run_workers
from spar_core.errors import SparError
from spar_core.training.regularizers import REGULARIZERS
from spar_core.runs.lock import LOCK_FILE, holder
from spar_core.layout.run_folder import RunFolder
from spar_core.data.splits import k_fold
from spar_core.data.nifti import case_id_of, image_file


@pytest.fixture(scope="module")
def tiny_crossval(ankle_small: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cv") / "run"
    code = main(["crossval", "--dataset", str(ankle_small), "--methods", "all", "--folds", "2", "--preset", "tiny",
                 "--out", str(out), "--device", "cpu"])
    assert code == 0
    return out


def test_metrics_table_is_complete(tiny_crossval: Path, ankle_small: Path) -> None:
    frame = pd.read_csv(RunFolder(tiny_crossval).metrics_csv)
    cases = {case_id_of(p) for p in (ankle_small / "imagesTr").glob("*.nii.gz")}
    structures = 3  # calcaneus, talus, tibia
    assert set(frame["case"]) == cases  # every exam is tested once over the folds
    assert len(frame) == len(cases) * structures * len(REGULARIZERS) * 2  # with and without post-processing
    assert not frame.duplicated(["case", "method", "label", "postprocessed"]).any()
    assert frame["dice"].between(0, 1).all()
    for method in REGULARIZERS:
        for fold in (0, 1):
            assert (tiny_crossval / "folds" / str(fold) / method / "pred").is_dir()


def test_predictions_keep_the_source_geometry(tiny_crossval: Path, ankle_small: Path) -> None:
    pred = next((tiny_crossval / "folds" / "0" / "spar" / "pred").glob("*.nii.gz"))
    src = nibabel.load(ankle_small / "imagesTr" / image_file(case_id_of(pred)))
    out = nibabel.load(pred)
    assert out.shape == src.shape
    np.testing.assert_allclose(out.affine, src.affine)
    assert out.get_data_dtype() == np.uint8


def test_report_is_written(tiny_crossval: Path, capsys) -> None:
    assert main(["report", str(tiny_crossval)]) == 0
    printed = capsys.readouterr().out
    for display in ("Base. UNet", "Adv. Reg.", "Sh. Reg.", "SPAR"):
        assert display in printed
    assert (tiny_crossval / "report" / "table1.tex").is_file()


def test_finished_units_are_skipped(tiny_crossval: Path, ankle_small: Path) -> None:
    stamps = {p: p.stat().st_mtime_ns for p in tiny_crossval.glob("folds/*/*/model.pt")}
    assert main(["crossval", "--dataset", str(ankle_small), "--methods", "all", "--folds", "2", "--preset",
                 "tiny", "--out", str(tiny_crossval), "--device", "cpu"]) == 0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_run_records_its_preset_and_refuses_a_changed_one(tiny_crossval: Path, ankle_small: Path,
                                                           tmp_path: Path, capsys) -> None:
    recorded = RunFolder(tiny_crossval).read_config()["preset_settings"]
    assert recorded["train"]["batch_size"] == 8 and recorded["unet"]["num_classes"] == 4  # ankle: 3 bones + bg
    changed = tmp_path / "run"
    shutil.copytree(tiny_crossval, changed)
    config = RunFolder(changed).read_config()
    config["preset_settings"]["train"]["lr"] = 0.5  # as if the preset's definition had changed since
    RunFolder(changed).write_config(config)
    stamps = {p: p.stat().st_mtime_ns for p in changed.glob("folds/*/*/model.pt")}
    assert main(["crossval", "--dataset", str(ankle_small), "--methods", "all", "--folds", "2", "--preset",
                 "tiny", "--out", str(changed), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "changed since this run began (train.lr)" in err[0]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13])
def test_shards_cover_the_grid_exactly_once(n: int) -> None:
    splits = k_fold([f"c{i}" for i in range(10)], 5)
    units = grid(splits, list(REGULARIZERS))
    taken = [u for i in range(n) for u in Shard(i, n).take(units)]
    assert sorted(taken) == sorted(units) and len(taken) == len(units)


@pytest.mark.parametrize("text", ["2/2", "a/b", "1", "-1/3", "0/0"])
def test_bad_shard_is_rejected(text: str) -> None:
    with pytest.raises(SparError, match="--shard"):
        Shard.parse(text)


def test_methods_are_validated() -> None:
    assert parse_methods("all") == list(REGULARIZERS)
    assert parse_methods("spar, baseline") == ["spar", "baseline"]
    with pytest.raises(SparError, match="--methods"):
        parse_methods("spar,unet++")


def test_cli_bad_inputs_give_one_line(ankle_small: Path, tmp_path: Path, capsys) -> None:
    cases = [
        ["crossval", "--dataset", str(ankle_small), "--methods", "magic", "--out", str(tmp_path / "r")],
        ["predict", "--run", str(tmp_path / "missing"), "--method", "spar", "--image",
         str(next((ankle_small / "imagesTr").glob("*.nii.gz"))), "--out", str(tmp_path / "p.nii.gz")],
    ]
    for argv in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err


def test_predict_on_an_unlabeled_exam(tiny_crossval: Path, ankle_small: Path, tmp_path: Path, capsys) -> None:
    image = next((ankle_small / "imagesTr").glob("*.nii.gz"))
    out = tmp_path / "pred.nii.gz"
    assert main(["predict", "--run", str(tiny_crossval), "--method", "spar", "--image", str(image),
                 "--out", str(out)]) == 0
    assert nibabel.load(out).shape == nibabel.load(image).shape
    # An image of the wrong dimensionality: one clear line.
    flat = tmp_path / "flat.nii.gz"
    nibabel.save(nibabel.Nifti1Image(np.zeros((8, 8), np.float32), np.eye(4)), flat)
    capsys.readouterr()
    assert main(["predict", "--run", str(tiny_crossval), "--method", "spar", "--image", str(flat),
                 "--out", str(tmp_path / "x.nii.gz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "flat.nii.gz" in err[0]
    # A method the run did not train.
    assert main(["predict", "--run", str(tiny_crossval), "--method", "nope", "--image", str(image),
                 "--out", str(tmp_path / "y.nii.gz")]) == 2


def test_sigterm_stops_a_run_cleanly(ankle_small: Path, tmp_path: Path) -> None:
    """A scheduler's or the app's cancel (SIGTERM): one line, exit 143, run.json says "stopped", and no
    temporary file is left behind."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "spar_core", "crossval", "--dataset", str(ankle_small), "--methods", "all",
           "--folds", "2", "--preset", "tiny", "--out", str(out), "--device", "cpu"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while not (out / "folds" / "0" / "shape_ae.pt").is_file():  # well inside the run
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be stopped"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    lines = [line for line in err.splitlines() if "spar crossval:" in line]
    assert lines == ["spar crossval: stopped (SIGTERM)"]
    assert RunFolder(out).read_config()["status"] == "stopped"
    # the run folder's lock file stays (empty: no job holds it), as lock files do; nothing else hidden does
    assert (out / LOCK_FILE).read_text() == "" and holder(out) is None
    assert not [p for p in out.rglob(".*") if p.name != LOCK_FILE], "a temporary file was left behind"


def test_workers_share_the_grid_then_merge(ankle_small: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    argv = ["crossval", "--dataset", str(ankle_small), "--methods", "baseline,shape", "--folds", "2", "--preset",
            "tiny", "--out", str(out), "--device", "cpu", "--workers", "2"]
    assert main(argv) == 0
    run = RunFolder(out)
    assert run.read_config()["status"] == "complete"
    for fold in (0, 1):
        for method in ("baseline", "shape"):
            assert run.unit_metrics_path(fold, method).is_file()
    frame = pd.read_csv(run.metrics_csv)
    assert set(frame["method"]) == {"baseline", "shape"} and not frame.duplicated(
        ["case", "method", "label", "postprocessed"]).any()
    assert {f"{LOCK_FILE}-shard-{i}-of-2" for i in (0, 1)} <= {p.name for p in out.glob(".*")}  # a shard each
    assert "grid complete" in capsys.readouterr().out
    with pytest.raises(SparError, match=r"worker [01] of 2 stopped with exit status 2"):  # the first to fail
        run_workers(["crossval", "--dataset", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r2")], 2)
    assert main(["crossval", "--dataset", str(ankle_small), "--out", str(out), "--workers", "2",
                 "--shard", "0/2"]) == 2
    assert "not beside --shard" in capsys.readouterr().err
