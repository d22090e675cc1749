"""nnU-Net beside spar, end to end on two phantom exams (a smoke run: one epoch of two iterations on the CPU):
the run's dataset written as nnU-Net raw data, planned and preprocessed by nnU-Net v2 itself, trained on the run's
fold 0 training exams, its predictions of the fold's test exams scored by spar's metrics beside the run's methods."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from spar_core.runs.run_folder import RunFolder

ROOT = Path(__file__).resolve().parents[1]


def test_the_peer_bench_trains_nnunet_on_the_runs_folds_and_scores_its_test_exams(two_fold_run: Path,
                                                                                  tmp_path: Path) -> None:
    pytest.importorskip("nnunetv2.training.nnUNetTrainer.nnUNetTrainer", reason="nnU-Net's training stack")
    work = tmp_path / "peer"
    cmd = [sys.executable, str(ROOT / "bench" / "nnunet_peer.py"), str(two_fold_run), "--work", str(work),
           "--folds", "0", "--epochs", "1", "--iterations", "2", "--val-iterations", "1", "--batch-size", "2",
           "--no-mirroring", "--processes", "0", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    run = RunFolder(two_fold_run)
    test = set(run.read_split(0).test)
    splits = json.loads((work / "nnUNet_preprocessed" / "Dataset990_spar_phantom_ankle" / "splits_final.json")
                        .read_text())
    assert set(splits[0]["val"]) == test and set(splits[0]["train"]) == set(run.read_split(0).train)
    rows = pd.read_csv(work / "metrics.csv", dtype={"case": str})
    assert set(rows["case"]) == test and set(rows["method"]) == {"nnunet"}
    assert len(rows) == len(test) * 3 and rows["dice"].between(0, 1).all()  # three bones per exam
    table = pd.read_csv(work / "table.csv")
    assert list(table["method"]) == ["baseline", "spar", "nnunet"] and (table["exams"] == len(test)).all()
    timing = json.loads((work / "timing.json").read_text())
    assert timing["folds"]["0"] > 0 and timing["total_s"] >= timing["prepare_s"] > 0
    assert "nnU-Net (2d)" in (work / "table.md").read_text()
    # started again: the predictions are there, nothing is trained
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0 and json.loads((work / "timing.json").read_text())["folds"]["0"] == 0


def test_the_peer_bench_refuses_a_folder_that_is_not_a_finished_run(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "nnunet_peer.py"), str(tmp_path), "--work",
                           str(tmp_path / "w")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("nnunet_peer: error: ") and len(done.stderr.strip().splitlines()) == 1
