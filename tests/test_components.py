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
