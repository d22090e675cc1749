"""Structures in a row: the chain found from training labels, and predicted bodies relabelled in order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spar_core.errors import SparError
from spar_core.postprocessing.chain import Chain, find_chain, relabel_chain
from spar_core.postprocessing.steps import PostprocessConfig, postprocess


def row_of_bodies(labels: list[int], gap: int = 2, height: int = 6) -> np.ndarray:
    """Boxes of ``height`` voxels along axis 0, ``gap`` voxels apart, one per entry of ``labels``."""
    vol = np.zeros((len(labels) * (height + gap) + gap, 10, 10), dtype=np.uint8)
    for i, value in enumerate(labels):
        start = gap + i * (height + gap)
        vol[start:start + height, 2:8, 2:8] = value
    return vol


def test_find_chain_reads_the_order_and_refuses_touching_or_unordered_structures() -> None:
    assert find_chain([row_of_bodies([1, 2, 3]), row_of_bodies([1, 2, 3], gap=3)], [1, 2, 3]) == Chain((1, 2, 3), 0)
    flipped = row_of_bodies([1, 2, 3])[::-1]
    assert find_chain([flipped], [1, 2, 3]) == Chain((1, 2, 3), 0, ascending=False)
    assert find_chain([row_of_bodies([1, 2, 3], gap=0)], [1, 2, 3]) is None  # bones of a joint touch
    assert find_chain([row_of_bodies([1, 2, 3]), row_of_bodies([2, 1, 3])], [1, 2, 3]) is None
    assert find_chain([row_of_bodies([1, 2])], [1, 2]) is None  # fewer than three structures


def test_majority_gives_each_body_one_label() -> None:
    pred = row_of_bodies([1, 2, 3])
    pred[10:12] = np.where(pred[10:12] == 2, 3, pred[10:12])  # a third of body 2 (rows 10-15) called 3
    out = relabel_chain(pred, Chain((1, 2, 3), 0), "majority")
    assert np.array_equal(out, row_of_bodies([1, 2, 3]))
    assert np.count_nonzero(pred != row_of_bodies([1, 2, 3])) > 0  # the input is not modified


def test_ordered_enforces_consecutive_labels_and_drops_bodies_outside_the_chain() -> None:
    truth = row_of_bodies([1, 2, 3, 0])
    pred = row_of_bodies([1, 3, 3, 3])  # body 2 taken for 3 in two thirds of it; a fourth body below the chain
    pred[10:12] = np.where(pred[10:12] == 3, 2, pred[10:12])
    assert np.array_equal(relabel_chain(pred, Chain((1, 2, 3), 0), "majority"), row_of_bodies([1, 3, 3, 3]))
    assert np.array_equal(relabel_chain(pred, Chain((1, 2, 3), 0), "ordered"), truth)


def test_merged_bodies_and_stray_islands_are_left_alone() -> None:
    pred = row_of_bodies([1, 2, 3, 4])
    pred[16:18, 2:8, 2:8] = 2  # bodies 2 and 3 grown together
    pred[18:20] = np.where(pred[18:20] == 3, 2, pred[18:20])
    chain = Chain((1, 2, 3, 4), 0)
    assert np.array_equal(relabel_chain(pred, chain, "ordered"), pred)
    assert np.array_equal(relabel_chain(pred, chain, "majority"), pred)
    island = row_of_bodies([1, 2, 3])
    island[0, 0, 0] = 3  # one voxel: not a body
    assert relabel_chain(island, Chain((1, 2, 3), 0), "majority")[0, 0, 0] == 3


def test_positions_undo_a_shift_the_network_makes_in_every_slice() -> None:
    # the row of the training exams: L1-L3 in the first three places; a test exam shows a fourth body below
    # (a sacrum) and the network calls the bodies -, 1, 2, 3 -> counted one level off by the votes alone
    truths = [row_of_bodies([1, 2, 3, 0]), row_of_bodies([1, 2, 3, 0])]
    truths[1] = np.roll(truths[1], 1, axis=0)  # the row moves a voxel between exams
    chain = find_chain(truths, [1, 2, 3], spacings=[(2.0, 1.0, 1.0)] * 2)
    assert chain.positions == (10.0, 26.0, 42.0) and chain.offset_sd == pytest.approx(3.2)  # floor: 0.2 × 16 mm
    pred = row_of_bodies([1, 2, 3, 3])
    pred[10:16] = np.where(pred[10:16] == 2, 1, pred[10:16])
    pred[18:24] = np.where(pred[18:24] == 3, 2, pred[18:24])  # every body labelled as its lower neighbour
    pred[2:5] = np.where(pred[2:5] == 1, 0, pred[2:5])  # the first body half missed: fewer votes for it
    voted = relabel_chain(pred, chain.without_positions(), "ordered")
    assert np.array_equal(voted[10:16], np.where(pred[10:16] > 0, 1, 0))  # votes alone: the shift kept
    placed = relabel_chain(pred, chain, "ordered", (2.0, 1.0, 1.0))
    assert np.array_equal(placed, np.where(pred > 0, row_of_bodies([1, 2, 3, 0]), 0))
    assert np.array_equal(relabel_chain(pred, chain, "ordered"), voted)  # no spacing: no positions
    far = np.roll(row_of_bodies([1, 2, 3, 0]), -8, axis=0)  # ... but a row a whole level away keeps its votes
    far[-8:] = 0
    assert np.array_equal(relabel_chain(far, Chain((1, 2, 3), 0, True, (11.0, 27.0, 43.0), 8.0), "ordered",
                                        (2.0, 1.0, 1.0)), far)
    assert Chain.from_dict(chain.as_dict()) == chain
    partial = row_of_bodies([0, 2, 3, 0])  # an exam without L1: the others still place the row
    assert find_chain([truths[0], partial], [1, 2, 3], spacings=[(2.0, 1.0, 1.0)] * 2).positions == (9.0, 25.0, 41.0)
    assert find_chain([partial], [1, 2, 3], spacings=[(2.0, 1.0, 1.0)]) == Chain((1, 2, 3), 0)  # L1 nowhere
    with pytest.raises(SparError, match="positions"):
        Chain((1, 2, 3), 0, True, (1.0, 2.0), 1.0)
    with pytest.raises(SparError, match="both or neither"):
        Chain((1, 2, 3), 0, True, (1.0, 2.0, 3.0))


def test_postprocess_relabels_before_keeping_the_largest_component() -> None:
    pred = row_of_bodies([1, 2, 3])
    pred[10:12] = np.where(pred[10:12] == 2, 1, pred[10:12])  # a third of body 2 called 1: not dropped, relabelled
    cfg = PostprocessConfig(closing_mm=0, chain=Chain((1, 2, 3), 0))
    assert np.array_equal(postprocess(pred, (1, 1, 1), cfg), row_of_bodies([1, 2, 3]))
    with pytest.raises(SparError, match="chain mode"):
        relabel_chain(pred, Chain((1, 2, 3), 0), "nearest")


def test_a_fold_finds_its_chain_once_and_records_it(tmp_path: Path) -> None:
    import json

    import nibabel as nib

    from spar_core.data.dataset import load_dataset
    from spar_core.data.splits import Split
    from spar_core.postprocessing.folds import fold_label_facts
    from spar_core.runs.run_folder import RunFolder

    root = tmp_path / "row"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    training = []
    for case in ("r0", "r1", "r2"):
        lab = row_of_bodies([1, 2, 3])
        nib.save(nib.Nifti1Image(lab.astype(np.float32) * 10, np.eye(4)), root / "imagesTr" / f"{case}.nii.gz")
        nib.save(nib.Nifti1Image(lab, np.eye(4)), root / "labelsTr" / f"{case}.nii.gz")
        training.append({"image": f"./imagesTr/{case}.nii.gz", "label": f"./labelsTr/{case}.nii.gz"})
    labels = {"background": 0, "L1": 1, "L2": 2, "L3": 3}
    (root / "dataset.json").write_text(json.dumps({"name": "row", "labels": labels, "training": training}))
    run = RunFolder(tmp_path / "run")
    split = Split(fold=0, train=("r0", "r1"), test=("r2",))
    assert fold_label_facts(load_dataset(root), split, run).chain.without_positions() == Chain((1, 2, 3), 0)
    assert json.loads(run.label_facts_path(0).read_text()) == {
        "chain": {"labels": [1, 2, 3], "axis": 0, "ascending": True, "positions_mm": [4.5, 12.5, 20.5],
                  "offset_sd_mm": 1.6},
        "parts": {}}
    disorder = row_of_bodies([3, 1, 2])  # would form no chain: the fold's chain is read back, not found again
    nib.save(nib.Nifti1Image(disorder, np.eye(4)), root / "labelsTr" / "r0.nii.gz")
    assert fold_label_facts(load_dataset(root), split, run).chain.positions == (4.5, 12.5, 20.5)
