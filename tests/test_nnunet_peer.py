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

from spar_core.layout.run_folder import RunFolder

ROOT = Path(__file__).resolve().parents[1]


def test_the_peer_bench_trains_nnunet_on_the_runs_folds_and_scores_its_test_exams(two_fold_run: Path,
                                                                                  tmp_path: Path) -> None:
    pytest.importorskip("nnunetv2.training.nnUNetTrainer.nnUNetTrainer", reason="nnU-Net's training stack")
    work = tmp_path / "peer"
    cmd = [sys.executable, str(ROOT / "bench" / "nnunet_peer.py"), str(two_fold_run), "--work", str(work),
           "--folds", "0", "--budget-s", "0.001", "--iterations", "2", "--val-iterations", "1", "--batch-size", "2",
           "--no-mirroring", "--processes", "0", "--device", "cpu", "--moved", "fov_shift", "--severities", "2",
           "--triage"]
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
    assert (table["train_s"] > 0).all() and table.loc[2, "predict_s"] > 0
    timing = json.loads((work / "timing.json").read_text())
    trained = timing["folds"]["0"]
    assert trained["seconds"] > 0 and trained["epochs"] == 1 and trained["batch_size"] == 2  # the budget: 1 epoch
    assert timing["total_s"] >= timing["prepare_s"] > 0 and timing["plan"]["patch_size"]
    assert "nnU-Net (2d)" in (work / "table.md").read_text()
    # quiet: nnU-Net's own prints in the log, a progress line per step on the console
    assert "epoch 1/1" in done.stdout and "predicted" in done.stdout and "Yayy" not in done.stdout
    assert (work / "nnunet.log").read_text().count("=====") >= 4
    # the moved test exams: both signs, nnU-Net's rows in the study's identity form
    moved = pd.read_csv(work / "moved_metrics.csv", dtype={"case": str})
    assert set(moved["severity"]) == {2, -2} and set(moved["case"]) == test and len(moved) == 2 * len(test) * 3
    identity = pd.read_csv(work / "identity.csv")
    assert set(identity["method"]) == {"nnunet"} and set(identity["severity"]) == {2, -2}
    assert (identity["exams"] == len(test)).all()
    # spar's triage of nnU-Net's predictions, the hold-out and the moved ones ranked together
    triage = pd.read_csv(two_fold_run / "triage" / "predictions" / "nnunet.csv")
    assert len(triage) == 3 * len(test) and sorted(triage["rank"]) == list(range(1, 3 * len(test) + 1))
    assert triage["recon_error"].notna().all() and triage["entropy"].isna().all()
    assert {c.split("/")[0] for c in triage["case"]} == {"clean", "fov_shift_2", "fov_shift_-2"}
    # started again: everything is there, nothing is trained or predicted again
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0 and "predicted" not in again.stdout and "epoch" not in again.stdout
    assert json.loads((work / "timing.json").read_text())["folds"]["0"] == trained
    # a step that fails: one line naming it, the details in the log
    (work / "predictions" / "fold_0" / f"{sorted(test)[0]}.nii.gz").unlink()
    for checkpoint in work.glob("nnUNet_results/*/*/fold_0/checkpoint_final.pth"):
        checkpoint.unlink()
    broken = subprocess.run([*cmd[:-9], "--device", "cuda:7"], capture_output=True, text=True, env=env,
                            timeout=300)
    assert broken.returncode == 2 and "Traceback" not in broken.stderr
    assert broken.stderr.startswith("nnunet_peer: error: step 'train fold 0' failed") and \
        len(broken.stderr.strip().splitlines()) == 1


def test_the_peer_bench_refuses_a_folder_that_is_not_a_finished_run(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "nnunet_peer.py"), str(tmp_path), "--work",
                           str(tmp_path / "w")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("nnunet_peer: error: ") and len(done.stderr.strip().splitlines()) == 1
