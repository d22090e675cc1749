"""The two studies on the tiny preset: nested training subsets disjoint from the test exams, the same corruption
for every method, finished cells and units skipped on resume, tables whose intervals hold their estimates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import spar_core.pipeline.robustness as robustness
from spar_core.cli import main
from spar_core.data.corruptions import CORRUPTIONS, corrupt, corrupt_label, level, severities_of
from spar_core.data.splits import Split
from spar_core.errors import SparError
from spar_core.pipeline.data_efficiency import nested_subsets, parse_sizes


def test_subsets_are_nested_patient_level_and_disjoint_from_the_test_exams() -> None:
    split = Split(0, tuple(f"c{i}" for i in range(10)), ("t0", "t1"))
    groups = {"c1": "c1", "c2": "c1"}  # twins: one patient
    subsets = nested_subsets(split, [2, 4, None], repeats=2, seed=0, groups=groups)
    assert set(subsets) == {(2, 0), (4, 0), (None, 0), (2, 1), (4, 1)}
    for r in (0, 1):
        assert set(subsets[(2, r)]) < set(subsets[(4, r)]) <= set(split.train)
        assert {"c1", "c2"} <= set(subsets[(4, r)]) or not {"c1", "c2"} & set(subsets[(4, r)])
    assert subsets[(2, 0)] != subsets[(2, 1)]  # two draws
    assert subsets == nested_subsets(split, [2, 4, None], repeats=2, seed=0, groups=groups)  # seeded
    assert not set(subsets[(None, 0)]) & set(split.test) and len(subsets[(None, 0)]) == 10
    with pytest.raises(SparError, match="9 training patients"):
        nested_subsets(split, [10], 1, 0, groups)
    assert parse_sizes("8,2,all,2") == [2, 8, None]
    with pytest.raises(SparError, match="--train-exams"):
        parse_sizes("2,zero")


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_corruptions_are_seeded_graded_and_keep_the_grid(kind: str) -> None:
    rng = np.random.default_rng(0)
    image = (rng.random((24, 20, 12)) * 100 + 200).astype(np.float32)
    image[4:12, 5:15, :] += 400  # a bright structure
    spacing = (1.0, 1.0, 3.0)
    assert np.array_equal(corrupt(image, spacing, 2, kind, 0, case="a"), image)
    mild = corrupt(image, spacing, 2, kind, 1, case="a")
    strong = corrupt(image, spacing, 2, kind, 4, case="a")
    assert mild.shape == strong.shape == image.shape and np.isfinite(strong).all()
    assert np.array_equal(mild, corrupt(image, spacing, 2, kind, 1, case="a"))  # the same for every caller
    change = lambda x: float(np.abs(x - image).mean())  # noqa: E731
    # 45 mm moves all of it out (or mirrors it back): their own tests
    assert 0 < change(mild) < change(strong) or kind in ("fov_shift", "fov_mirror")
    if kind in ("noise", "bias", "ghosting", "fov_shift", "fov_mirror"):  # random: another case gets another draw
        assert not np.array_equal(strong, corrupt(image, spacing, 2, kind, 4, case="b"))
    with pytest.raises(SparError, match="severity"):
        corrupt(image, spacing, 2, kind, 5)


def test_fov_shift_moves_content_and_truth_toward_the_head_and_fills_with_the_exams_background() -> None:
    rng = np.random.default_rng(1)
    image = (rng.random((60, 40, 6)) * 10).astype(np.float32)  # background 0..10
    label = np.zeros(image.shape, np.uint8)
    image[20:30, 15:25] += 500
    label[20:30, 15:25] = 3
    spacing = (2.0, 1.0, 4.0)
    # voxel axis 0 runs toward the feet (LPS-like "I"): toward the head is toward lower indices
    affine = np.array([[0, 0, 4.0, 0], [0, -1.0, 0, 0], [-2.0, 0, 0, 0], [0, 0, 0, 1]])
    for severity, rows in ((3, range(5, 15)), (-3, range(35, 45))):  # 30 mm = 15 voxels of 2 mm
        moved = corrupt(image, spacing, 2, "fov_shift", severity, case="a", affine=affine)
        truth = corrupt_label(label, spacing, 2, "fov_shift", severity, case="a", affine=affine)
        inside = np.argwhere(truth == 3)
        assert sorted(set(inside[:, 0])) == list(rows)
        assert abs(int(np.ptp(inside[:, 1])) - 9) == 0 and abs(inside[:, 1].min() - 15) <= 10  # at most a third
        assert truth.dtype == label.dtype and (truth == 3).sum() == (label == 3).sum()
        assert (moved[truth == 3] > 400).all() and (moved[truth == 0] < 11).mean() > 0.99  # the content moved along
        new = np.zeros(image.shape, bool)
        new[:15] = severity < 0
        new[-15:] = severity > 0
        assert moved[new].max() <= np.percentile(image, 5) + 1e-6  # filled from the exam's own darkest voxels
    assert level("fov_shift", -4) == -45.0 and level("gamma", -2) == 0.5
    # the mirror fill: the same move of content and truth, the new part the content mirrored at the old border
    for severity in (3, -3):
        shifted = corrupt_label(label, spacing, 2, "fov_shift", severity, case="a", affine=affine)
        mirrored = corrupt(image, spacing, 2, "fov_mirror", severity, case="a", affine=affine)
        truth = corrupt_label(label, spacing, 2, "fov_mirror", severity, case="a", affine=affine)
        assert sorted(set(np.argwhere(truth == 3)[:, 0])) == sorted(set(np.argwhere(shifted == 3)[:, 0]))
        edge, inner = (slice(0, 15), slice(15, 30)) if severity < 0 else (slice(45, 60), slice(30, 45))
        assert (truth[edge] == 0).all() and np.array_equal(mirrored[edge], mirrored[inner][::-1])  # no edge
    assert severities_of("gamma", [0, 2]) == [-2, 0, 2] and severities_of("noise", [0, 2]) == [0, 2]
    with pytest.raises(SparError, match="severity -1 of noise"):
        level("noise", -1)
    assert np.array_equal(corrupt_label(label, spacing, 2, "gamma", 2), label)


def test_robustness_study_same_image_for_every_method_and_resumable(two_fold_run: Path, monkeypatch) -> None:
    calls = []
    real = robustness.corrupt

    def counting(image, spacing, axis, kind, severity, **kw):
        calls.append((kw["case"], kind, severity))
        return real(image, spacing, axis, kind, severity, **kw)

    monkeypatch.setattr(robustness, "corrupt", counting)
    assert main(["study", "robustness", str(two_fold_run), "--corruptions", "noise,gamma", "--severities", "0,3",
                 "--device", "cpu"]) == 0
    assert len(calls) == len(set(calls)) == 4 * 3  # once per exam and corrupted condition, shared by both methods
    folder = two_fold_run / "studies" / "robustness"
    metrics = pd.read_csv(folder / "metrics.csv", dtype={"case": str})
    assert set(metrics["method"]) == {"baseline", "spar"} and len(metrics) == 4 * 4 * 3 * 2  # clean, noise 3, gamma ±3
    assert (folder / "folds" / "0" / "clean_0.csv").is_file() and not (folder / "folds" / "0" / "noise_0.csv").exists()
    table = pd.read_csv(folder / "table.csv")
    assert set(table["corruption"]) == {"noise", "gamma"} and set(table["severity"]) == {-3, 0, 3}
    assert set(table[table["corruption"] == "noise"]["severity"]) == {0, 3}  # one-sided
    identity = pd.read_csv(folder / "identity.csv")
    assert len(identity) == 4 * 2 and (identity["exams"] == 4).all()  # per condition and method, of the 4 exams
    assert (identity["exams_with_shift"] <= identity["exams"]).all()
    finite = table.dropna(subset=["ci_low", "ci_high"])
    assert ((finite["ci_low"] <= finite["mean"] + 1e-9) & (finite["mean"] <= finite["ci_high"] + 1e-9)).all()
    spar = table[(table["method"] == "spar")]
    assert spar["p_value"].notna().all() and (spar["p_holm"] >= spar["p_value"] - 1e-12).all()
    clean = table[table["severity"] == 0]
    assert set(clean["corruption"]) == {"noise", "gamma"}  # the clean rows shown in both curves, tested once
    noise, gamma = (clean[clean["corruption"] == k]["p_value"].to_numpy() for k in ("noise", "gamma"))
    assert np.array_equal(noise, gamma, equal_nan=True)
    assert table[table["method"] == "baseline"]["diff"].isna().all()
    # started again: every unit is there, nothing is predicted
    monkeypatch.setattr(robustness, "predict_volume", lambda *a, **k: pytest.fail("a finished unit ran again"))
    assert main(["study", "robustness", str(two_fold_run), "--corruptions", "noise,gamma", "--severities", "0,3",
                 "--device", "cpu"]) == 0
    assert json.loads((folder / "study.json").read_text())["corruptions"] == ["noise", "gamma"]


def test_data_efficiency_study_end_to_end_and_resumable(ankle_small: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "study"
    argv = ["study", "data-efficiency", "--dataset", str(ankle_small), "--train-exams", "1,all", "--folds", "2",
            "--methods", "baseline,spar", "--preset", "tiny", "--out", str(out), "--device", "cpu"]
    assert main(argv) == 0
    meta = json.loads((out / "study.json").read_text())
    assert sorted(meta["cells"]) == ["n1_r0", "nall_r0"] and meta["steps_per_epoch"] >= 1
    for fold in (0, 1):
        small = json.loads((out / "cells" / "n1_r0" / "folds" / str(fold) / "split.json").read_text())
        full = json.loads((out / "cells" / "nall_r0" / "folds" / str(fold) / "split.json").read_text())
        assert small["test"] == full["test"] and set(small["train"]) < set(full["train"])
        assert not set(full["train"]) & set(full["test"])
    table = pd.read_csv(out / "table.csv")
    assert set(table["train_exams"]) == {1, 10**6} and set(table["method"]) == {"baseline", "spar"}
    ok = table.dropna(subset=["ci_low"])
    assert ((ok["ci_low"] <= ok["mean"] + 1e-9) & (ok["mean"] <= ok["ci_high"] + 1e-9)).all()
    assert main(["report", str(out / "cells" / "n1_r0")]) == 0  # a cell is a run folder like any other
    import spar_core.pipeline.data_efficiency as de
    monkeypatch.setattr(de, "run_crossval", lambda *a, **k: pytest.fail("a complete cell ran again"))
    assert main(argv) == 0
