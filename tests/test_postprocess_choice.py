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
from spar_core.scoring.metrics import evaluate_labels
from spar_core.postprocessing.chain import Chain
from spar_core.postprocessing.choice import choose_postprocess, exam_scores
from spar_core.postprocessing.decision import Decision, LabelFacts, StepTest, combine_decisions, postprocess_config
from spar_core.postprocessing.settings import PostprocessSettings
from spar_core.postprocessing.folds import read_decision, read_label_facts, run_postprocess_config
from spar_core.postprocessing.steps import postprocess
from spar_core.layout.run_folder import RunFolder

CLOSING = PostprocessSettings(closing_mm=2.0)


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
    decision = choose_postprocess(exams, [1, 2], CLOSING)
    # label 1 loses its island; label 2 would lose its second side: left alone; closing changes nothing: off
    assert decision.largest == (1,) and decision.closing is False and decision.chain is False
    assert decision.n_exams == 8 and decision.dice == pytest.approx(1.0) and decision.mssd == 0.0
    assert decision.dice_raw < decision.dice and decision.mssd_raw > 10
    assert [t.step for t in decision.tests] == ["closing", "largest_1", "largest_2"]
    cfg = postprocess_config(CLOSING, None, decision)
    pred, truth, spacing = exams[0]
    assert np.array_equal(postprocess(pred, spacing, cfg), truth)
    # the paper's setting deletes the other side of label 2
    paper = postprocess(pred, spacing, postprocess_config(PostprocessSettings("largest", 2.0)))
    assert evaluate_labels(paper, truth, spacing, {"b": 2})[0]["dice"] < 0.7
    # unless the training labels say label 2 has two parts
    both = postprocess(pred, spacing, postprocess_config(PostprocessSettings("largest", 2.0), LabelFacts(parts=((2, 2),))))
    assert np.array_equal(both, truth)
    assert np.array_equal(postprocess(pred, spacing, postprocess_config(PostprocessSettings("none"))), pred)
    # raw scores handed in (the folds of a run share them) decide the same
    raw = exam_scores(exams, [1, 2], None)
    assert choose_postprocess(exams, [1, 2], CLOSING, raw=raw) == decision
    with pytest.raises(SparError, match="raw scores"):
        choose_postprocess(exams, [1, 2], CLOSING, raw=raw[:3])


def test_records_round_trip_through_json() -> None:
    chain = Chain((1, 2, 3), 0, True, (4.5, 12.5, 20.5), 1.6)
    facts = LabelFacts(chain, ((2, 2),))
    assert LabelFacts.from_json(json.loads(json.dumps(facts.to_json()))) == facts
    decision = Decision(True, False, (1, 3), n_exams=7, dice_raw=0.8, mssd_raw=12.0, dice=0.85, mssd=6.5,
                        tests=(StepTest("chain", 0.01, 0.2), StepTest("largest_1", 0.03, 0.5)))
    assert Decision.from_json(json.loads(json.dumps(decision.to_json()))) == decision
    assert decision.kept("chain") and decision.kept("largest_3") and not decision.kept("closing")
    assert Decision.from_json(Decision.undecided_json("no exam")) is None
    settings = PostprocessSettings("largest", 1.5, 2, False, "volume")
    assert PostprocessSettings.from_json(settings.to_json()) == settings
    # a run that recorded no mode began before auto existed: it applied the paper's steps; no prior: the position
    # (its label facts hold one prior, which it keeps)
    assert PostprocessSettings.from_json({"closing_mm": 2.0}).mode == "largest"
    assert PostprocessSettings.from_json({}).chain_prior == "position"


def test_the_settings_choose_the_prior_that_orders_a_row() -> None:
    both = Chain((1, 2, 3), 0, True, (4.5, 12.5, 20.5), 1.6, (0.0, 0.1, -0.1), (0.08, 0.08, 0.08), (3.4, 0.1))
    facts = LabelFacts(both)
    # the default orders by the level model (the level flag), the positions kept for rows its crops cannot explain
    by_level = postprocess_config(PostprocessSettings("largest"), facts).chain
    assert by_level.level and by_level.positions == both.positions and by_level.volumes is None
    by_position = postprocess_config(PostprocessSettings("largest", chain_prior="position"), facts).chain
    assert by_position == both.with_prior("position") and by_position.volumes is None and not by_position.level
    by_volume = postprocess_config(PostprocessSettings("largest", chain_prior="volume"), facts).chain
    assert by_volume.positions is None and by_volume.volumes == (0.0, 0.1, -0.1)
    assert postprocess_config(PostprocessSettings("largest", chain=False), facts).chain is None
    assert postprocess_config(PostprocessSettings("largest", chain_prior="none"), facts).chain == Chain((1, 2, 3), 0)


def test_a_majority_of_folds_decides_an_ensemble() -> None:
    made = [Decision(True, False, (1, 2)), Decision(True, True, (1,)), None, Decision(False, False, (1, 2))]
    assert combine_decisions(made) == Decision(True, False, (1, 2), folds=3)
    assert combine_decisions([None, None]) is None


def test_ill_inputs() -> None:
    with pytest.raises(SparError, match="out-of-fold"):
        choose_postprocess([], [1], PostprocessSettings())
    with pytest.raises(SparError, match="--postprocess"):
        PostprocessSettings("smallest")
    with pytest.raises(SparError, match="closing radius"):
        PostprocessSettings(closing_mm=-1)
    with pytest.raises(SparError, match="--chain-prior 'first_voxel'"):
        PostprocessSettings(chain_prior="first_voxel")
    with pytest.raises(SparError, match="largest"):
        Decision.from_json({"chain": True}, "d.json")
    with pytest.raises(SparError, match="parts"):
        LabelFacts.from_json({"chain": None, "parts": {"two": "x"}}, "f.json")


def test_runs_of_earlier_versions_still_load(tmp_path: Path) -> None:
    """Before the two files had names of their own, both levels held a postprocess.json."""
    run = RunFolder(tmp_path / "old")
    run.write_config({"postprocess": {"mode": "auto", "largest_component": True, "closing_mm": 2.0,
                                      "connectivity": 3, "chain": True}})
    (run.fold_dir(0) / "baseline").mkdir(parents=True)
    (run.fold_dir(0) / "postprocess.json").write_text(json.dumps(
        {"chain": {"labels": [1, 2, 3], "axis": 2, "ascending": False}, "parts": {"4": 2}}))
    (run.fold_dir(0) / "baseline" / "postprocess.json").write_text(json.dumps(
        {"chain": True, "closing": False, "largest": [1, 2], "dice_raw": 0.8, "mssd_raw": 9.0, "dice": 0.82,
         "mssd": 7.0, "n_exams": 12, "tests": {"chain": {"p_dice_up": 0.01, "p_mssd_down": 0.3}}}))
    (run.fold_dir(1) / "baseline").mkdir(parents=True)
    (run.fold_dir(1) / "baseline" / "postprocess.json").write_text(json.dumps(
        {"fallback": "largest", "why": "no out-of-fold prediction of a training exam"}))
    assert read_label_facts(run, 0) == LabelFacts(Chain((1, 2, 3), 2, False), ((4, 2),))
    assert read_decision(run, 0, "baseline").largest == (1, 2)
    assert read_decision(run, 1, "baseline") is None
    cfg = run_postprocess_config(run, [0], "baseline")
    assert cfg.chain == Chain((1, 2, 3), 2, False) and cfg.closing_mm == 0.0 and cfg.largest_for == (1, 2)
    assert cfg.parts == ((4, 2),)
    (run.fold_dir(0) / "postprocess.json").write_text('{"chain": ')
    with pytest.raises(SparError, match="postprocess.json: unreadable"):
        read_label_facts(run, 0)


def test_each_fold_decides_on_the_other_folds_exams(two_fold_run: Path) -> None:
    run = RunFolder(two_fold_run)
    assert run.read_config()["postprocess"]["mode"] == "auto" and run.read_config()["status"] == "complete"
    metrics = pd.read_csv(run.metrics_csv)
    for fold in run.folds():
        split = run.read_split(fold)
        decision = read_decision(run, fold, "baseline")
        assert run.method_folder(fold, "baseline").decision.is_file()
        assert decision.n_exams == len(split.train)  # every training exam, predicted by the other fold
        assert 0 <= decision.dice_raw <= 1 and 0 <= decision.dice <= 1
        # each step kept passed its test on the deciding exams
        for test in decision.tests:
            assert not decision.kept(test.step) or test.p_dice_up < 0.05 or test.p_mssd_down < 0.05, test
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
    assert main(["crossval", "--dataset", str(ankle_small), "--methods", "baseline,spar", "--folds", "2",
                 "--preset", "tiny", "--out", str(two_fold_run), "--device", "cpu", "--chain-prior", "volume"]) == 2
    assert "--chain-prior level" in capsys.readouterr().err  # the default, recorded


def test_none_scores_the_raw_predictions(ankle_small: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["crossval", "--dataset", str(ankle_small), "--methods", "baseline", "--folds", "holdout",
                 "--preset", "tiny", "--out", str(out), "--device", "cpu", "--postprocess", "none"]) == 0
    metrics = pd.read_csv(RunFolder(out).metrics_csv)
    raw = metrics[~metrics["postprocessed"]].set_index(["case", "label"])["dice"].sort_index()
    post = metrics[metrics["postprocessed"]].set_index(["case", "label"])["dice"].sort_index()
    assert np.allclose(raw.to_numpy(), post.to_numpy())
    assert json.loads((out / "run.json").read_text())["postprocess"]["mode"] == "none"
