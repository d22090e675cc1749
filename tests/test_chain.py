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


def sized_row(heights: list[int], labels: list[int], gap: int = 2) -> np.ndarray:
    """Bodies of the given ``heights`` (voxels along axis 0), ``gap`` apart, labelled ``labels``."""
    vol = np.zeros((sum(heights) + gap * (len(heights) + 1), 10, 10), dtype=np.uint8)
    start = gap
    for h, value in zip(heights, labels):
        vol[start:start + h, 2:8, 2:8] = value
        start += h + gap
    return vol


SIZES = [4, 9, 6]  # L1, L2, L3: a row whose bodies differ in size, as vertebrae do (L3, L4 largest)


def training_chain(prior: str = "volume") -> Chain:
    truths = [sized_row(SIZES, [1, 2, 3]), sized_row([s + 1 for s in SIZES], [1, 2, 3])]
    both = find_chain(truths, [1, 2, 3], spacings=[(1.0, 1.0, 1.0)] * 2)
    assert both.positions is not None and both.volumes is not None  # the training labels record both priors
    return both.with_prior(prior)


def test_relative_volumes_undo_a_shift_the_network_makes_in_every_slice() -> None:
    chain = training_chain()
    assert chain.positions is None and chain.volumes is not None  # what the row looks like, not where it sits
    assert chain.volumes[1] > chain.volumes[2] > chain.volumes[0] and min(chain.volume_sd) >= 0.08
    # the exam shows a smaller body above L1 (a T12); the network calls it L1 and every body its upper neighbour
    heights = [3, *SIZES]
    truth = sized_row(heights, [0, 1, 2, 3])
    pred = sized_row(heights, [1, 2, 3, 3])
    voted = relabel_chain(pred, chain.with_prior("none"), "ordered")
    assert np.array_equal(voted, sized_row(heights, [1, 2, 3, 0]))  # votes alone keep the shift
    assert np.array_equal(relabel_chain(pred, chain, "ordered", (1.0, 1.0, 1.0)), truth)
    assert np.array_equal(relabel_chain(pred, chain, "ordered"), truth)  # no spacing: the prior is whole
    # ... wherever the field of view puts the row: the same exam 20 voxels further down
    moved = np.pad(pred, ((20, 0), (0, 0), (0, 0)))
    assert np.array_equal(relabel_chain(moved, chain, "ordered", (1.0, 1.0, 1.0)),
                          np.pad(truth, ((20, 0), (0, 0), (0, 0))))
    # bodies eight times the training exams' volume (another anatomy, or a mis-scaled header): the prior fades
    assert np.array_equal(relabel_chain(pred, chain, "ordered", (2.0, 2.0, 2.0)), voted)
    assert Chain.from_dict(chain.as_dict()) == Chain.from_dict(json_round_trip(chain.as_dict()))


def test_a_body_the_field_of_view_cuts_says_nothing_of_its_size() -> None:
    sizes, labels = [5, 7, 9, 9, 6], [1, 2, 3, 4, 5]  # a lumbar row: L3 and L4 the largest
    chain = find_chain([sized_row(sizes, labels), sized_row([s + 1 for s in sizes], labels)], labels,
                       spacings=[(1.0, 1.0, 1.0)] * 2).with_prior("volume")
    right = sized_row(sizes, labels)
    last = np.flatnonzero((right == 5).any(axis=(1, 2)))
    cut = right[: last[0] + 3]  # the field of view ends three rows into L5 (of six): half of it left
    # the network labels every body right; were the cut L5's volume taken at its word, it would look far too
    # small and the row be counted one level off
    assert np.array_equal(relabel_chain(cut, chain, "ordered", (1.0, 1.0, 1.0)), cut)
    whole = sized_row(sizes, labels)
    whole[last[0] + 3:] = 0  # the same half body inside the field of view: a real, small body
    assert not np.array_equal(relabel_chain(whole, chain, "ordered", (1.0, 1.0, 1.0)), whole)


def json_round_trip(data: dict) -> dict:
    import json

    return json.loads(json.dumps(data))


def test_a_row_placed_elsewhere_keeps_its_labels_by_volume_and_is_pushed_a_level_by_position() -> None:
    chain = training_chain()
    # the network labels every body right, in a field of view that holds the row one level lower
    pred = np.pad(sized_row(SIZES, [1, 2, 3]), ((15, 0), (0, 0), (0, 0)))
    assert np.array_equal(relabel_chain(pred, chain, "ordered", (1.0, 1.0, 1.0)), pred)
    # the position prior of the same training labels (the default) pushes this exam a level: the price of its
    # strength where every exam places the row alike
    placed = training_chain("position")
    assert placed.volumes is None and placed.offset_sd > 0
    assert not np.array_equal(relabel_chain(pred, placed, "ordered", (1.0, 1.0, 1.0)), pred)
    assert np.array_equal(relabel_chain(sized_row(SIZES, [1, 2, 3]), placed, "ordered", (1.0, 1.0, 1.0)),
                          sized_row(SIZES, [1, 2, 3]))
    # with both priors, the position applies; a record holding one keeps it whatever is asked
    both = find_chain([sized_row(SIZES, [1, 2, 3]), sized_row([s + 1 for s in SIZES], [1, 2, 3])], [1, 2, 3],
                      spacings=[(1.0, 1.0, 1.0)] * 2)
    assert np.array_equal(relabel_chain(pred, both, "ordered", (1.0, 1.0, 1.0)),
                          relabel_chain(pred, placed, "ordered", (1.0, 1.0, 1.0)))
    assert chain.with_prior("position") == chain and placed.with_prior("volume") == placed
    with pytest.raises(SparError, match="chain prior 'size'"):
        both.with_prior("size")
    # an earlier record placed the row from the first voxel: it still loads, and still pushes this exam a level
    old = Chain.from_dict({"labels": [1, 2, 3], "axis": 0, "ascending": True, "positions_mm": [4.0, 12.5, 22.0],
                           "offset_sd_mm": 1.5})
    assert old.positions == (4.0, 12.5, 22.0) and old.volumes is None
    assert not np.array_equal(relabel_chain(pred, old, "ordered", (1.0, 1.0, 1.0)), pred)
    partial = sized_row(SIZES, [0, 2, 3])  # an exam without L1 does not enter the volumes
    found = find_chain([sized_row(SIZES, [1, 2, 3]), partial], [1, 2, 3], spacings=[(1.0,) * 3] * 2)
    assert found.volumes is None and found.positions is not None  # one whole row: no spread, no volumes
    with pytest.raises(SparError, match="positions"):
        Chain((1, 2, 3), 0, True, (1.0, 2.0), 1.0)
    with pytest.raises(SparError, match="both or neither"):
        Chain((1, 2, 3), 0, True, (1.0, 2.0, 3.0))
    with pytest.raises(SparError, match="all three or none"):
        Chain((1, 2, 3), 0, volumes=(0.0, 0.1, -0.1))
    with pytest.raises(SparError, match="positive spread"):
        Chain((1, 2, 3), 0, volumes=(0.0, 0.1, -0.1), volume_sd=(0.1, 0.0, 0.1), body_ml=(0.0, 0.1))


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
    from spar_core.layout.run_folder import RunFolder

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
    assert fold_label_facts(load_dataset(root), split, run).chain.with_prior("none") == Chain((1, 2, 3), 0)
    recorded = json.loads(run.label_facts_path(0).read_text())
    assert recorded["parts"] == {} and recorded["chain"]["volumes_log"] == [0.0, 0.0, 0.0]  # equal bodies
    assert recorded["chain"]["volume_sd_log"] == [0.08, 0.08, 0.08] and len(recorded["chain"]["body_ml_log"]) == 2
    disorder = row_of_bodies([3, 1, 2])  # would form no chain: the fold's chain is read back, not found again
    nib.save(nib.Nifti1Image(disorder, np.eye(4)), root / "labelsTr" / "r0.nii.gz")
    assert fold_label_facts(load_dataset(root), split, run).chain.volumes == (0.0, 0.0, 0.0)
