"""The level of a row from anatomy: crops around each body, the level model, the evidence and its call, and the
ordering it drives (spar_core.data.level_crops, training.level, postprocessing.levels / level_evidence)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from spar_core.data.corruptions import content_extent, corrupt, corrupt_label
from spar_core.data.level_crops import CropGeometry, anchor_in_view, crops, ends_in_view, inside, row_centres
from spar_core.errors import SparError
from spar_core.postprocessing.chain import Chain, call_row_level, relabel_chain, row_bodies
from spar_core.postprocessing.level_evidence import row_evidence
from spar_core.postprocessing.levels import (LevelCall, LevelEvidence, agrees, combine_evidence, crop_class,
                                            level_call, shift_scores)
from spar_core.training.level import LevelModel, LevelTrainConfig, train_level_model
from row_support import GAP, ROW, row_exam

@pytest.fixture(scope="module")
def level_model() -> LevelModel:
    train = [row_exam(start, f"t{start}", seed=start) for start in (18, 22, 26, 30, 34, 20, 28)]
    return train_level_model(train, ROW, 0, True, LevelTrainConfig(steps=150, batch=32, seed=0),
                             held_out=[row_exam(24, "h", seed=99)])


# ---------------------------------------------------------------------------------------------- crops


def test_a_crop_runs_along_the_row_in_its_order_whatever_the_axis_direction() -> None:
    image = np.zeros((40, 20, 6), dtype=np.float32)
    image[11:14, :, :] = 1.0  # a bright slab 8 voxels before the centre along axis 0
    geometry = CropGeometry(0, True, 2, gap_mm=10.0, along=3.2, across=2.0, pixels=(16, 8), channel_mm=(0.0,))
    up = crops(image, (1.0, 1.0, 1.0), np.array([[20.0, 10.0, 3.0]]), geometry)[0, 0]
    down = crops(image, (1.0, 1.0, 1.0), np.array([[20.0, 10.0, 3.0]]),
                 CropGeometry(0, False, 2, 10.0, 3.2, 2.0, (16, 8), (0.0,)))[0, 0]
    assert up.shape == (16, 8)
    assert np.argmax(up.mean(axis=1)) < 8 and np.argmax(down.mean(axis=1)) >= 8  # before the centre: top
    assert np.allclose(up[::-1], down)
    assert geometry.axes == (0, 1, 2) and CropGeometry(2, True, 2, 10.0).axes[0] == 2


def test_crop_geometry_refuses_what_cannot_be_sampled() -> None:
    for bad in ({"gap_mm": 0.0}, {"gap_mm": math.nan}, {"pixels": (4, 32)}, {"row_axis": 3}):
        with pytest.raises(SparError):
            CropGeometry(**{"row_axis": 0, "ascending": True, "slice_axis": 2, "gap_mm": 30.0, **bad})
    geometry = CropGeometry(0, True, 2, 34.5)
    assert CropGeometry.from_json(geometry.to_json()) == geometry
    with pytest.raises(SparError, match="crop geometry"):
        CropGeometry.from_json({"row_axis": 0})


def test_row_centres_continue_the_row_beyond_each_end() -> None:
    exam = row_exam(20)
    centres = row_centres(exam.label, ROW)
    assert centres.shape == (7, 3)
    assert np.allclose(centres[:, 0], [9.5 + GAP * i for i in range(7)])  # boxes [c-3, c+3): centroid c - 0.5
    assert inside(centres, exam.label.shape, 0).all()
    assert not inside(centres, exam.label.shape, 0, inset=12).all()  # the first, at 9.5, is within 12 of the border


# ---------------------------------------------------------------------------------------------- the evidence


def _evidence(classes: list[int | None], members: int = 5, p: float = 0.96,
              positions: tuple[float, ...] | None = None) -> LevelEvidence:
    """Evidence that names class ``c`` with probability ``p`` for each crop (None: outside the image)."""
    rows = []
    for c in classes:
        if c is None:
            rows.append(None)
            continue
        probs = np.full(members + 2, (1 - p) / (members + 1))
        probs[c] = p
        rows.append(tuple(np.log(probs)))
    where = tuple(float(10 * i) for i in range(len(classes) - 2)) if positions is None else positions
    return LevelEvidence(where, tuple(rows))


def test_evidence_round_trips_and_refuses_malformed_records() -> None:
    evidence = _evidence([0, 1, 2, 3, 4, 5, 6])
    assert LevelEvidence.from_json(evidence.to_json()).matrix() == pytest.approx(evidence.matrix(), abs=1e-4)
    assert evidence.members == 5
    for bad in ({"positions": [1.0]}, {"positions": [], "log_probs": [[0.0, -1.0, -2.0]]},
                {"positions": [], "log_probs": [[0.5, -1.0, -2.0], None]}, {"positions": "x", "log_probs": []}):
        with pytest.raises(SparError, match="level evidence"):
            LevelEvidence.from_json(bad)
    call = LevelCall(1, 3.5, "last", False)
    assert LevelCall.from_json(call.to_json()) == call
    roomy = LevelEvidence(evidence.positions, evidence.log_probs, tuple((float(i), 6.0 - i) for i in range(7)))
    assert LevelEvidence.from_json(roomy.to_json()).room == roomy.room
    with pytest.raises(SparError):
        LevelCall(0, 1.0, "middle", False)


@pytest.mark.parametrize("body, shift, expected", [(-1, 0, 0), (0, 0, 1), (4, 0, 5), (5, 0, 6), (7, 0, 6),
                                                   (0, 1, 0), (-1, -1, 1), (5, 1, 5)])
def test_a_shift_gives_each_crop_its_class(body: int, shift: int, expected: int) -> None:
    assert crop_class(body, shift, 5) == expected


def test_the_anatomy_fixes_a_row_the_network_put_one_level_off() -> None:
    # five bodies; the model sees the sacrum after the last and L5 on it: bodies 0..4 are L1..L5
    evidence = _evidence([0, 1, 2, 3, 4, 5, 6])
    shifts = list(range(-4, 5))
    scores = shift_scores(evidence, shifts)
    assert shifts[int(np.argmax(scores))] == 0
    call = level_call(evidence, shifts, 0)
    assert call.anchor == "both" and not call.unknown and call.margin > 5
    # the network called L1..L4 "L2".."L5", and L5 and the sacrum below it "L5": labels one level off
    from test_chain import row_of_bodies
    wrong = row_of_bodies([2, 3, 4, 5, 5, 5])
    chain = Chain(ROW, 0, level=True)
    where = tuple(row_bodies(wrong, chain).centroids[:, 0])
    six = _evidence([0, 1, 2, 3, 4, 5, 6, 6], positions=where)
    fixed = relabel_chain(wrong, chain, "ordered", evidence=six)
    assert np.array_equal(fixed, row_of_bodies([1, 2, 3, 4, 5, 0]))
    assert call_row_level(wrong, chain, six).shift == 0
    # without the evidence the same chain orders by the votes: the level stays off
    assert not np.array_equal(relabel_chain(wrong, chain, "ordered"), row_of_bodies([1, 2, 3, 4, 5, 0]))


def test_no_anchor_or_a_small_margin_is_a_level_unknown() -> None:
    flat = LevelEvidence((0.0, 10.0, 20.0), tuple([tuple(np.log(np.full(7, 1 / 7)))] * 5))
    call = level_call(flat, list(range(-4, 3)), 0)
    assert call.unknown and call.anchor == "none" and call.margin == pytest.approx(0.0)
    assert "level unknown" in call.describe("L1", "L5")
    # the ends out of view, the middle bodies named: no anchor, so unknown whatever the margin
    middle = _evidence([None, 2, 3, 4, None], p=0.99)
    call = level_call(middle, list(range(-4, 3)), -1)
    assert call.unknown and call.anchor == "none" and call.margin > 5
    anchored = level_call(_evidence([None, 3, 4, 5, 6]), list(range(-4, 3)), -2)
    assert not anchored.unknown and anchored.anchor == "last" and "below L5" in anchored.describe("L1", "L5")


def test_crops_that_disagree_with_every_shift_leave_the_row_to_the_votes() -> None:
    from test_chain import row_of_bodies
    # a crop named L2 between crops named T12 and L3: no shift explains it (an exam of another anatomy)
    wrong = row_of_bodies([1, 2, 3, 4, 5])
    chain = Chain(ROW, 0, level=True)
    where = tuple(row_bodies(wrong, chain).centroids[:, 0])
    odd = _evidence([0, 2, 2, 3, 4, 5, 6], positions=where, p=0.99)
    assert not agrees(odd, 0) and agrees(_evidence([0, 1, 2, 3, 4, 5, 6], positions=where), 0)
    assert np.array_equal(relabel_chain(wrong, chain, "ordered", evidence=odd), wrong)  # the votes: as predicted
    call = call_row_level(wrong, chain, odd)
    assert call.unknown and not call.agree and "crops disagree" in call.describe("L1", "L5")
    # a crop two steps beyond the row is not judged: the model never learned what lies there
    assert agrees(_evidence([0, 1, 2, 3, 4, 5, 6, 2], positions=where + (50.0,)), 0)


def test_an_end_member_anchors_its_end_only_with_the_image_reaching_beyond_it() -> None:
    classes = [None, 1, 2, 3, 4, 5, None]  # the crops beyond the row out of view; the members named
    short = LevelEvidence(_evidence(classes).positions, _evidence(classes).log_probs,
                          tuple((0.2 + i, 5.2 - i) for i in range(7)))
    call = level_call(short, list(range(-4, 5)), 0)
    assert call.anchor == "first" and not call.unknown  # L1's crop 1.2 gaps from the top; L5's 0.2 from the end
    reached = LevelEvidence(short.positions, short.log_probs, tuple((1.5 + i, 6.5 - i) for i in range(7)))
    assert level_call(reached, list(range(-4, 5)), 0).anchor == "both"
    assert level_call(LevelEvidence(short.positions, short.log_probs), list(range(-4, 5)), 0).anchor == "none"


def test_the_training_bands_are_dark_or_mirrored_at_their_edge() -> None:
    import torch

    from spar_core.training.level import _bands

    x = torch.arange(8.0).view(1, 1, 8, 1).expand(256, 2, 8, 4).clone()
    y = _bands(x, torch.Generator().manual_seed(0))
    changed = (y != x).any(dim=(1, 2, 3))
    assert 0.3 < changed.float().mean() < 0.7  # about half the crops
    rows = y[:, 0, :, 0]
    mirrored = [r for r in rows[changed] if r.min() >= 0.5 and len(set(r.tolist())) < 8]
    dark = [r for r in rows[changed] if r.min() < 0.05]
    assert mirrored and dark
    for r in mirrored:  # a mirror image across the edge: the values on either side of it repeat
        r = r.tolist()
        assert any(r[i] == r[i + 1] for i in range(7)) and sorted(set(r)) == sorted(set(r) & set(range(8)))
    assert torch.equal(y[:, 0], y[:, 1])  # one band for every channel of a crop


def test_evidence_of_another_prediction_is_refused() -> None:
    from test_chain import row_of_bodies
    pred = row_of_bodies([1, 2, 3, 4, 5])
    stale = LevelEvidence((3.0, 11.0), (None, None, None, None))
    with pytest.raises(SparError, match="another prediction"):
        relabel_chain(pred, Chain(ROW, 0, level=True), "ordered", evidence=stale)


def test_an_ensemble_averages_the_probabilities() -> None:
    a, b = _evidence([0, 1, 2], members=1, p=0.9), _evidence([0, 1, 1], members=1, p=0.9)
    both = combine_evidence([a, b]).matrix()
    assert np.exp(both[2]) == pytest.approx([0.05, 0.475, 0.475])
    assert np.exp(both).sum(axis=1) == pytest.approx(1.0)
    with pytest.raises(SparError):
        combine_evidence([a, _evidence([0, 1, 2, 2], members=1)])


# ---------------------------------------------------------------------------------------------- the model


def test_the_level_model_names_the_members_from_what_lies_beyond_the_row(level_model: LevelModel) -> None:
    assert level_model.report["held_out_accuracy"] >= 0.7
    assert level_model.report["held_out_crops_by_class"]["after"] == 1
    # a row placed higher than in any training exam, labelled by where it sits: the body at the usual place of
    # the first member (truly the second) called 1, and so on, the wedge after the row called 5
    exam = row_exam(8, "moved", seed=5)
    wrong = np.zeros_like(exam.label)
    for value in (2, 3, 4, 5):
        wrong[exam.label == value] = value - 1
    wedge = exam.image == 1.0
    wrong[wedge] = 5
    chain = Chain(ROW, 0, level=True)
    evidence = row_evidence(level_model, exam.image, exam.spacing, wrong, chain)
    assert len(evidence.positions) == 5
    fixed = relabel_chain(wrong, chain, "ordered", exam.spacing, evidence=evidence)
    for value in (2, 3, 4, 5):
        assert (fixed[exam.label == value] == value).all()
    assert (fixed[wedge] == 0).all()  # the structure after the row is not a member
    call = call_row_level(wrong, chain, evidence, exam.spacing)
    assert call.shift == -1 and call.anchor in ("last", "both") and not call.unknown


def test_a_level_model_file_round_trips_and_a_wrong_file_is_one_error(level_model: LevelModel, tmp_path) -> None:
    path = tmp_path / "level_model.pt"
    level_model.save(path)
    again = LevelModel.load(path)
    exam = row_exam(30)
    centres = row_centres(exam.label, ROW)
    assert np.allclose(again.log_probs(exam.image, exam.spacing, centres),
                       level_model.log_probs(exam.image, exam.spacing, centres), atol=1e-5)
    assert again.geometry == level_model.geometry and again.labels == ROW
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SparError, match="junk.pt"):
        LevelModel.load(tmp_path / "junk.pt")


def test_a_cohort_without_the_ends_in_view_cannot_train_a_level_model() -> None:
    cut = [row_exam(4, f"c{s}", seed=s) for s in range(2)]  # the body before the row out of view
    with pytest.raises(SparError, match="before"):
        train_level_model(cut, ROW, 0, True, LevelTrainConfig(steps=2))


# ---------------------------------------------------------------------------------------------- the shift check


def test_the_mirror_fill_moves_the_content_with_no_edge() -> None:
    exam = row_exam(20)
    moved = corrupt(exam.image, exam.spacing, 2, "fov_mirror", 3, case="x")  # 30 mm = 15 voxels toward the head
    truth = corrupt_label(exam.label, exam.spacing, 2, "fov_mirror", 3, case="x")
    extent = content_extent(exam.image.shape, exam.spacing, 2, "fov_mirror", 3, case="x")
    start, stop = extent[0]
    assert stop - start == exam.image.shape[0] - 15
    inner = moved[start:stop]
    assert (truth[:start] == 0).all() and (truth[stop:] == 0).all()  # the mirrored part holds no anatomy
    assert np.count_nonzero(truth) > 0
    # the fill continues the content: the row next to the old border equals its mirror image beyond it
    if start > 0:
        assert np.allclose(moved[start - 1], moved[start])
    else:
        assert np.allclose(moved[stop], moved[stop - 1])
    assert inner.std() > 0 and not np.allclose(moved, corrupt(exam.image, exam.spacing, 2, "fov_shift", 3, case="x"))


def test_ends_in_view_follow_the_moved_truth() -> None:
    exam = row_exam(20)  # L1 at 19.5: the body before it would start one disc (4) and one body (6) above L1's top
    before, after = ends_in_view(exam.label, ROW, 0, True, None, exam.spacing)
    assert before == pytest.approx(12.0) and after == pytest.approx(12.0)  # whole: 6 voxels of 2 mm
    assert anchor_in_view(before, after) == "both"
    cut = ends_in_view(exam.label, ROW, 0, True, ((10, 70), (0, 40), (0, 8)), exam.spacing)
    assert cut[0] == pytest.approx(2 * (13 - 10)) and cut[1] == pytest.approx(2 * (70 - 67))
    assert anchor_in_view(*cut) == "none" and anchor_in_view(12.0, 0.0) == "first"
    flipped = ends_in_view(exam.label[::-1].copy(), ROW, 0, False, None, exam.spacing)
    assert flipped == pytest.approx((before, after))


# ---------------------------------------------------------------------------------------------- in a run


def test_a_run_trains_a_level_model_per_fold_and_records_its_call(row_run: tuple[Path, Path]) -> None:
    import pandas as pd

    from spar_core.layout.run_folder import RunFolder

    root, path = row_run
    run = RunFolder(path)
    assert run.read_config()["postprocess"]["chain_prior"] == "level"  # the default where a row exists
    for fold in (0, 1):
        assert run.level_model_path(fold).is_file()
        report = json.loads(run.level_report_path(fold).read_text())
        assert report["steps"] == 20 and report["train_exams"] == 3 and report["held_out_crops"] >= 3
        for case in run.read_split(fold).test:
            record = json.loads(run.method_folder(fold, "baseline").level_evidence(case).read_text())
            assert set(record) == {"evidence", "call"} and record["call"]["anchor"] in ("both", "first", "last", "none")
    rows = pd.read_csv(run.metrics_csv)
    post = rows[rows["postprocessed"]]
    assert post["level_unknown"].notna().all() and rows.loc[~rows["postprocessed"], "level_unknown"].isna().all()
    from spar_core.evaluation.report import load_metrics, per_exam, select

    table = per_exam(select(load_metrics(run.metrics_csv)))  # spar report's per-exam table
    assert {"level_anchor", "level_margin", "level_unknown"} <= set(table.columns) and len(table) == 6


def test_predict_writes_the_level_call_beside_the_labels(row_run: tuple[Path, Path], tmp_path: Path) -> None:
    from spar_core.cli import main

    root, run = row_run
    out = tmp_path / "out"
    assert main(["predict", str(run), "--method", "baseline", "-i", str(root / "imagesTr"), "-o", str(out),
                 "--device", "cpu"]) == 0
    for i in range(6):
        record = json.loads((out / "levels" / f"row{i}.json").read_text())
        assert {"shift", "margin_nats", "anchor", "level_unknown", "says", "evidence"} <= set(record)
        assert record["says"].startswith(("level unknown", "levels counted from"))
    assert sorted(p.name for p in out.glob("*.nii.gz")) == [f"row{i}.nii.gz" for i in range(6)]  # labels only


def test_the_shift_study_says_which_end_stayed_in_view(row_run: tuple[Path, Path], tmp_path: Path) -> None:
    import shutil

    import pandas as pd

    from spar_core.pipeline.robustness import run_robustness
    from spar_core.layout.study_folder import StudyFolder
    from spar_core.layout.run_folder import RunFolder

    run = tmp_path / "run"
    shutil.copytree(row_run[1], run)  # the session's run stays as crossval left it (the fault corpus copies it)
    run_robustness(run, ["fov_mirror"], [0, 3])
    folder = StudyFolder.robustness(RunFolder(run))
    levels = pd.read_csv(folder.levels_csv)
    assert set(levels["corruption"]) == {"clean", "fov_mirror"} and len(levels) == 6 * 3
    clean = levels[levels["corruption"] == "clean"]
    assert (clean["anchor_in_view"] == "both").all()  # every synthetic exam shows both ends
    # 30 mm (15 voxels of 2 mm) either way: an end leaves the exam's own content in some exams, never in the clean
    assert (clean[["before_in_view_mm", "after_in_view_mm"]] == 12.0).all().all()
    moved = levels[levels["corruption"] == "fov_mirror"]
    assert set(moved["severity"]) == {-3, 3}
    assert (moved[["before_in_view_mm", "after_in_view_mm"]].min(axis=1) < 12.0).any()
    identity = pd.read_csv(folder.identity_csv)
    assert {"level_unknown", "shifted_confident", "shifted_last_in_view"} <= set(identity.columns)


def test_the_compare_page_says_each_methods_level_call(row_run: tuple[Path, Path],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from apptest_support import start_app

    dataset, run = row_run
    at = start_app(monkeypatch, dataset.parent, run.parent, page="compare")
    assert not at.exception and not at.error
    said = [e.value for e in [*at.caption, *at.warning] if "Base. UNet:" in str(e.value)]
    assert len(said) == 1 and ("level unknown" in said[0] or "levels counted from" in said[0])
