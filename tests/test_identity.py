"""Structure identity: a prediction sitting on another structure's truth is shifted, and only then."""

from __future__ import annotations

import numpy as np
import pytest

from spar_core.scoring.identity import overlap_matrix, shifted_structures

LEVELS = {"background": 0, "L1": 1, "L2": 2, "L3": 3}


def column(labels: list[int]) -> np.ndarray:
    """A 1×1×N volume from a list of labels: one voxel per entry, along z."""
    return np.asarray(labels, dtype=np.uint8).reshape(1, 1, -1)


TRUTH = [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 0, 0, 0, 0]
CASES = [
    ("perfect", TRUTH, {"L1": "", "L2": "", "L3": ""}),
    ("all one level down", [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3], {"L1": "L2", "L2": "L3", "L3": ""}),
    ("half on the neighbour is not more", [1, 1, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 0, 0],
     {"L1": "", "L2": "", "L3": ""}),
    ("mostly on the neighbour", [0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 0, 0, 0], {"L1": "L2", "L2": "L3", "L3": ""}),
    ("missing is not shifted", [0, 0, 0, 0, 2, 2, 2, 2, 3, 3, 3, 3, 0, 0, 0, 0], {"L1": "", "L2": "", "L3": ""}),
    ("a tie is not more", [2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 0, 0, 0, 0], {"L1": "", "L2": "", "L3": ""}),
    ("one structure grown over another", [2, 2, 2, 2, 2, 2, 0, 0, 3, 3, 3, 3, 0, 0, 0, 0],
     {"L1": "", "L2": "L1", "L3": ""}),
]


@pytest.mark.parametrize("pred, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_shifted_structures(pred: list[int], expected: dict[str, str]) -> None:
    assert shifted_structures(column(pred), column(TRUTH), LEVELS) == expected


def test_overlap_matrix_counts_pairs() -> None:
    m = overlap_matrix(column([0, 1, 1, 2]), column([1, 1, 2, 2]), 2)
    assert m.tolist() == [[0, 0, 0], [0, 1, 1], [0, 0, 1]]  # background predictions are not counted
