"""Post-processing decided from cross-validated predictions (``--postprocess auto``): a step kept only where
it raises the Dice of out-of-fold predictions; ``largest`` and ``none`` as before."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spar_core.cli import main
from spar_core.errors import SparError
from spar_core.postprocessing.steps import PostprocessConfig, postprocess
from spar_core.evaluation.metrics import evaluate_labels
from spar_core.postprocessing.decision import choose_postprocess, config_for, exam_scores
from spar_core.runs.run_folder import RunFolder


def exam(seed: int) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """Truth: a cube (label 1) and a left and right block both labelled 2. Prediction: the truth plus a
    stray island of label 1 far away."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((40, 30, 20), np.uint8)
    o = rng.integers(0, 3)
    truth[5 + o:15 + o, 5:15, 5:15] = 1
    truth[25:30, 2:8, 5:10] = 2
    truth[25:30, 20:26, 5:10] = 2
    pred = truth.copy()
    pred[34:38, 24:28, 14:18] = 1
    return pred, truth, (1.0, 1.0, 1.0)


def test_the_component_step_is_kept_only_where_it_helps() -> None:
    exams = [exam(s) for s in range(8)]  # a one-sided Wilcoxon test needs 5 or more exams to reach p < 0.05
    decision = choose_postprocess(exams, [1, 2], PostprocessConfig(closing_mm=2.0))
    # label 1 loses its island; label 2 would lose its second side: left alone; closing changes nothing: off
    assert decision["largest"] == [1] and decision["closing"] is False and decision["chain"] is False
    assert decision["n_exams"] == 8 and decision["dice"] == pytest.approx(1.0) and decision["mssd"] == 0.0
    assert decision["dice_raw"] < decision["dice"] and decision["mssd_raw"] > 10
    cfg = config_for("auto", PostprocessConfig(closing_mm=2.0), decision)
    pred, truth, spacing = exams[0]
    assert np.array_equal(postprocess(pred, spacing, cfg), truth)
    # the paper's setting deletes the other side of label 2
    paper = postprocess(pred, spacing, config_for("largest", PostprocessConfig(closing_mm=2.0)))
    assert evaluate_labels(paper, truth, spacing, {"b": 2})[0]["dice"] < 0.7
    assert np.array_equal(postprocess(pred, spacing, config_for("none", PostprocessConfig())), pred)
    # raw scores handed in (the folds of a run share them) decide the same
    raw = exam_scores(exams, [1, 2], None)
    assert choose_postprocess(exams, [1, 2], PostprocessConfig(closing_mm=2.0), raw=raw) == decision
    with pytest.raises(SparError, match="raw scores"):
        choose_postprocess(exams, [1, 2], PostprocessConfig(closing_mm=2.0), raw=raw[:3])


def test_ill_inputs() -> None:
    with pytest.raises(SparError, match="out-of-fold"):
        choose_postprocess([], [1], PostprocessConfig())
    with pytest.raises(SparError, match="--postprocess"):
        config_for("smallest", PostprocessConfig())


def test_each_fold_decides_on_the_other_folds_exams(two_fold_run: Path) -> None:
    run = RunFolder(two_fold_run)
    assert run.read_config()["postprocess"]["mode"] == "auto" and run.read_config()["status"] == "complete"
    metrics = pd.read_csv(run.metrics_csv)
    for fold in run.folds():
        split = run.read_split(fold)
        decision = run.method_folder(fold, "baseline").read_postprocess()
        assert decision["n_exams"] == len(split.train)  # every training exam, predicted by the other fold
        assert set(decision) >= {"chain", "closing", "largest", "dice_raw", "dice"}
        # each step kept passed its test on the deciding exams
        for step, test in decision["tests"].items():
            kept = decision[step] if step in ("chain", "closing") else int(step.split("_")[1]) in decision["largest"]
            assert not kept or test["p_dice_up"] < 0.05 or test["p_mssd_down"] < 0.05, (step, test)
        rows = metrics[(metrics["fold"] == fold)]
        assert sorted(rows[rows["postprocessed"]]["case"].unique()) == sorted(split.test)
        assert sorted(rows[~rows["postprocessed"]]["case"].unique()) == sorted(split.test)
        for case in split.test:
            assert run.prediction_path(fold, "baseline", case).is_file()


def test_a_run_keeps_its_mode(two_fold_run: Path, ankle_small: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["crossval", "--dataset", str(ankle_small), "--methods", "baseline,spar", "--folds", "2",
                 "--preset", "tiny", "--out", str(two_fold_run), "--device", "cpu", "--postprocess", "none"]) == 2
    assert "--postprocess auto" in capsys.readouterr().err


def test_none_scores_the_raw_predictions(ankle_small: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["crossval", "--dataset", str(ankle_small), "--methods", "baseline", "--folds", "holdout",
                 "--preset", "tiny", "--out", str(out), "--device", "cpu", "--postprocess", "none"]) == 0
    metrics = pd.read_csv(RunFolder(out).metrics_csv)
    raw = metrics[~metrics["postprocessed"]].set_index(["case", "label"])["dice"].sort_index()
    post = metrics[metrics["postprocessed"]].set_index(["case", "label"])["dice"].sort_index()
    assert np.allclose(raw.to_numpy(), post.to_numpy())
    assert json.loads((out / "run.json").read_text())["postprocess"]["mode"] == "none"
