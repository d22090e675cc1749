"""Structures of several parts (a label holding the left and the right bone): counted from the training labels,
and both sides kept by the post-processing that otherwise keeps the largest component only."""

from __future__ import annotations

import numpy as np

from spar_core.postprocessing.components import parts, structure_parts
from spar_core.scoring.metrics import evaluate_labels
from spar_core.postprocessing.steps import PostprocessConfig, postprocess


def bilateral(shift: int = 0) -> np.ndarray:
    """Label 1: a left and a right femur (two boxes); label 2: one pelvis between them; one stray voxel of 2."""
    vol = np.zeros((30, 20, 10), dtype=np.uint8)
    vol[2:10, 5:15, 2:8] = 1
    vol[20 + shift:28 + shift, 5:15, 2:8] = 1
    vol[12:18, 5:15, 2:8] = 2
    vol[0, 0, 0] = 2
    return vol


def test_parts_are_counted_without_stray_islands() -> None:
    assert parts(bilateral() == 1) == 2
    assert parts(bilateral() == 2) == 1  # the stray voxel is an island, not a part
    assert parts(np.zeros((4, 4, 4), bool)) == 0
    assert structure_parts([bilateral(), bilateral(1), bilateral()], [1, 2]) == {1: 2}


def test_postprocessing_keeps_both_sides_of_a_bilateral_structure() -> None:
    truth = bilateral()
    pred = truth.copy()
    pred[0, 19, 9] = 1  # a false-positive island of label 1
    plain = postprocess(pred, (1, 1, 1), PostprocessConfig(closing_mm=0))
    both = postprocess(pred, (1, 1, 1), PostprocessConfig(closing_mm=0, parts=((1, 2),)))
    assert np.count_nonzero(plain == 1) == 8 * 10 * 6  # one side deleted
    assert np.count_nonzero(both == 1) == 2 * 8 * 10 * 6 and both[0, 19, 9] == 0  # both sides, no island
    dice = {r["label"]: r["dice"] for r in evaluate_labels(both, truth, (1, 1, 1), {"femur": 1, "pelvis": 2})}
    assert dice[1] == 1.0


def test_spar_evaluate_post_processes_as_the_run_does_and_keeps_both_sides(tmp_path, capsys) -> None:
    """``spar evaluate --postprocess --run RUN`` applies the run's label facts (a label of two parts kept whole);
    without a run, ``largest`` keeps one component per structure, as its help says, and ``auto`` needs a run."""
    import csv
    import io

    import nibabel

    from spar_core.cli import main
    from spar_core.data.splits import Split
    from spar_core.layout.run_folder import RunFolder
    from spar_core.paths import write_json
    from spar_core.postprocessing.decision import LabelFacts

    truth = bilateral()
    pred = truth.copy()
    pred[0, 19, 9] = 1  # a false-positive island of label 1
    for name, volume in (("truth", truth), ("pred", pred)):
        nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), tmp_path / f"{name}.nii.gz")
    run = RunFolder(tmp_path / "run")
    run.write_config({"kind": "crossval", "labels": {"background": 0, "femur": 1, "pelvis": 2},
                      "postprocess": {"mode": "largest", "closing_mm": 0.0}})
    run.write_split(Split(fold=0, train=["a", "b"], test=["c"]))
    write_json(run.label_facts_path(0), LabelFacts(parts=((1, 2),)).to_json())
    run.model_path(0, "baseline").parent.mkdir(parents=True)
    run.model_path(0, "baseline").write_bytes(b"")  # a trained method's folder (its weights are not read)

    def femur_dice(*extra: str) -> float:
        assert main(["evaluate", "--pred", str(tmp_path / "pred.nii.gz"), "--truth", str(tmp_path / "truth.nii.gz"),
                     *extra]) == 0
        rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
        return float(next(r["dice"] for r in rows if r["label"] == "1"))

    assert femur_dice("--postprocess", "--run", str(run.root)) == 1.0  # both sides, the island gone
    assert femur_dice("--postprocess", "--closing-mm", "0") < 0.7  # no run: one side kept
    assert femur_dice() < 1.0  # no post-processing: the island counts
    assert main(["evaluate", "--pred", str(tmp_path / "pred.nii.gz"), "--truth", str(tmp_path / "truth.nii.gz"),
                 "--postprocess", "auto"]) == 2
    assert "--run" in capsys.readouterr().err
