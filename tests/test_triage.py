"""Outlier triage: every held-out exam scored, a corrupted exam ranked first, no label needed, honest stats."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel
import numpy as np
import pandas as pd
import pytest

from spar_core.cli import main
from spar_core.errors import SparError
from spar_core.layout.run_folder import RunFolder
from spar_core.triage.exams import degraded_flags, triage_images, triage_run
from spar_core.triage.ranking import LEVEL_SCORES, OOD_SCORES, SCORES, UNCERTAINTY_SCORES, combine_scores, robust_z, spearman_table
from spar_core.data.nifti import case_id_of, image_file


@pytest.fixture(scope="module")
def scored(two_fold_run: Path) -> pd.DataFrame:
    return triage_run(two_fold_run)


def test_every_held_out_exam_is_scored(scored: pd.DataFrame, ankle_small: Path, two_fold_run: Path) -> None:
    cases = {case_id_of(p) for p in (ankle_small / "imagesTr").glob("*.nii.gz")}
    assert set(scored["case"]) == cases and len(scored) == len(cases)
    assert (scored["method"] == "spar").all()  # the default method
    assert list(scored["rank"]) == list(range(1, len(cases) + 1))
    assert scored["triage_score"].is_monotonic_decreasing
    # spar trained, dataset readable; the ankle has no row of structures, so no level call
    for score in [s for s in SCORES if s not in ("volume_z", *OOD_SCORES, *LEVEL_SCORES)]:
        assert np.isfinite(scored[score]).all(), score
    assert scored[list(LEVEL_SCORES)].isna().all().all()
    for score in UNCERTAINTY_SCORES:
        assert (scored[score] >= 0).all(), score
    assert (scored["entropy_worst"] >= scored["entropy"] - 1e-9).all()  # the worst structure bounds the mean
    assert {"entropy:talus", "disagreement:tibia"} <= set(scored.columns)
    run = RunFolder(two_fold_run)
    for _, row in scored.iterrows():
        entropy = nibabel.load(run.uncertainty_path(int(row["fold"]), "spar", row["case"], "entropy"))
        assert entropy.shape == nibabel.load(ankle_small / "imagesTr" / image_file(row["case"])).shape
    # Each fold trains on 2 exams: too few for a volume standard deviation, and the notes say so.
    assert scored["volume_z"].isna().all() and scored[list(OOD_SCORES)].isna().all().all()
    assert any("volume_z not scored" in n for n in scored.attrs["notes"])
    assert scored["plausibility"].between(0, 1).all() and scored["recon_error"].between(0, 1).all()
    assert scored["worst_slices"].str.fullmatch(r"\d+(;\d+){0,2}").all()
    assert RunFolder(two_fold_run).train_codes_path(0).is_file()


def _corrupt(label: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scattered islands of every bone, holes in the calcaneus, the tibia shifted in-plane."""
    out = label.copy()
    tibia = out == 3
    out[tibia] = 0
    out[np.roll(tibia, 12, axis=0)] = 3
    calc = np.argwhere(out == 1)
    for x, y, z in calc[rng.choice(len(calc), size=min(40, len(calc)), replace=False)]:
        out[max(x - 2, 0):x + 3, max(y - 2, 0):y + 3, z] = 0
    for value in (1, 2, 3):
        for _ in range(60):
            x, y, z = (rng.integers(0, n - 3) for n in out.shape)
            out[x:x + 3, y:y + 3, z] = value
    return out


def test_a_corrupted_exam_ranks_first(two_fold_run: Path, ankle_small: Path, tmp_path: Path) -> None:
    """The other exams' predictions are replaced by their truth, so the tiny model's own (poor) predictions
    do not blur the comparison: the scores alone must find the one exam made implausible."""
    run = tmp_path / "run"
    shutil.copytree(two_fold_run, run)
    rng = np.random.default_rng(0)
    target = "ankle_002"
    for path in sorted(run.glob("folds/*/spar/pred_raw/*.nii.gz")):
        src = nibabel.load(ankle_small / "labelsTr" / path.name)
        label = np.asarray(src.dataobj).astype(np.uint8)
        if path.name.startswith(target):
            label = _corrupt(label, rng)
        nibabel.save(nibabel.Nifti1Image(label, src.affine, src.header), path)
    ranked = triage_run(run, "spar")
    assert ranked.iloc[0]["case"] == target, ranked[["case", "triage_score", *SCORES]]
    assert ranked.iloc[0]["components"] > 100


def test_no_spar_model_skips_plausibility(two_fold_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(two_fold_run, run)
    for model in run.glob("folds/*/spar/model.pt"):
        model.unlink()
    ranked = triage_run(run)
    assert (ranked["method"] == "baseline").all()
    assert ranked["plausibility"].isna().all() and np.isfinite(ranked["triage_score"]).all()
    assert any("plausibility not scored" in n for n in ranked.attrs["notes"])


def test_images_are_triaged_without_labels(two_fold_run: Path, ankle_small: Path, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for path in sorted((ankle_small / "imagesTr").glob("*.nii.gz"))[:2]:
        shutil.copy(path, images / path.name)
    ranked = triage_images(two_fold_run, images, "spar", fold=0)
    assert sorted(ranked["case"]) == sorted(case_id_of(p) for p in images.iterdir())
    # volume_z and the OOD scores need 3 training exams; the folds have 2
    assert np.isfinite(ranked[[s for s in SCORES if s not in ("volume_z", *OOD_SCORES, *LEVEL_SCORES)]].to_numpy()).all()
    by_case = {case_id_of(p): p for p in images.iterdir()}
    for case, rel in zip(ranked["case"], ranked["prediction"]):
        assert Path(rel).name == f"{case}.nii.gz"  # named after the case, without the channel suffix
        assert nibabel.load(Path(two_fold_run) / rel).shape == nibabel.load(by_case[case]).shape
    out = RunFolder(two_fold_run).triage_images_dir("spar")
    assert sorted(p.name for p in out.glob("*.nii.gz")) == sorted(f"{c}.nii.gz" for c in ranked["case"])  # labels
    assert len(list((out / "uncertainty").glob("*_entropy.nii.gz"))) == len(ranked)  # the maps one level down


def test_a_dataset_folder_without_labels_and_no_training_truth(two_fold_run: Path, ankle_small: Path,
                                                               tmp_path: Path) -> None:
    """Nothing labeled anywhere: the images have no labelsTr, and the run's dataset is gone (no cache)."""
    data = tmp_path / "unlabeled"
    shutil.copytree(ankle_small / "imagesTr", data / "imagesTr")
    meta = json.loads((ankle_small / "dataset.json").read_text())
    meta["training"] = [{"image": e["image"]} for e in meta["training"]]
    (data / "dataset.json").write_text(json.dumps(meta))
    run = tmp_path / "run"
    shutil.copytree(two_fold_run, run)
    for fold in RunFolder(run).folds():
        RunFolder(run).train_codes_path(fold).unlink(missing_ok=True)
    config = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**config, "dataset": str(tmp_path / "gone")}))
    ranked = triage_images(run, data, "spar", fold=1)
    assert len(ranked) == len(meta["training"])
    assert ranked["knn_distance"].isna().all() and ranked["volume_z"].isna().all()
    assert np.isfinite(ranked[["plausibility", "recon_error", "components", "triage_score"]].to_numpy()).all()
    assert any("knn_distance and volume_z not scored" in n for n in ranked.attrs["notes"])


@pytest.mark.parametrize("values, floor, relative, expected", [
    ([1.0, 2.0, 3.0, 4.0, 100.0], 0.0, 0.0, [-1.349, -0.674, 0.0, 0.674, 65.426]),
    ([0.0, 0.0, 0.0, 0.0, 10.0], 0.0, 0.0, [0.0, 0.0, 0.0, 0.0, 3.990]),  # MAD 0: mean abs. deviation
    ([0.0, 0.0, 0.0, 0.0, 10.0], 1.0, 0.0, [0.0, 0.0, 0.0, 0.0, 10.0]),  # MAD 0 with a floor: its units
    ([0.57, 0.575, 0.58, 0.56], 0.05, 0.0, [-0.05, 0.05, 0.15, -0.25]),  # noise below the floor stays small
    ([10.0, 10.1, 9.9, 12.0], 0.0, 0.1, [-0.0498, 0.0498, -0.1493, 1.9403]),  # floor relative to the median
    ([2.0, 2.0, 2.0], 0.0, 0.0, [0.0, 0.0, 0.0]),  # no spread, no floor: no information
    ([1.0, np.nan, 3.0], 0.0, 0.0, [-0.674, np.nan, 0.674]),
])
def test_robust_z(values: list[float], floor: float, relative: float, expected: list[float]) -> None:
    np.testing.assert_allclose(robust_z(np.asarray(values), min_scale=floor, rel_scale=relative), expected,
                               atol=1e-3)


def test_combined_score_orients_and_ranks() -> None:
    frame = pd.DataFrame({"case": ["a", "b", "c", "d", "e"], "plausibility": [0.9, 0.8, 0.85, 0.1, 0.88],
                          "components": [0, 1, 0, 0, 0], "recon_error": np.nan})
    ranked = combine_scores(frame)
    assert list(ranked["case"][:2]) == ["d", "b"]  # implausible first, then the one with an island
    assert "z_recon_error" not in ranked and ranked["z_plausibility"].abs().max() <= 5


def test_an_exam_whose_level_is_unknown_ranks_before_every_other() -> None:
    frame = pd.DataFrame({"case": ["a", "b", "c", "d"], "plausibility": [0.9, 0.1, 0.85, 0.88],
                          "level_doubt": [0.0, 0.0, 1.0, np.nan]})
    ranked = combine_scores(frame)
    assert list(ranked["case"]) == ["c", "b", "d", "a"]  # unknown level first, then the implausible one
    assert ranked.loc[ranked["case"] == "c", "z_level_doubt"].item() == 5.0


def test_spearman_table() -> None:
    triage = pd.DataFrame({"case": list("abcde"), "method": "spar", "components": [5.0, 4, 3, 2, 1],
                           "triage_score": [1.0, 1, 1, 1, 1]})
    rows = [{"case": c, "method": "spar", "label": s, "postprocessed": pp, "dice": d if pp else 0.0,
             "mssd_mm": m} for c, d, m in zip("abcde", [0.5, 0.6, 0.7, 0.8, np.nan], [9.0, 8, 7, 6, 5])
            for s in (1, 2) for pp in (True, False)]
    table = spearman_table(triage, pd.DataFrame(rows)).set_index(["score", "metric"])
    assert table.loc[("components", "dice"), "rho"] == pytest.approx(-1.0)
    assert table.loc[("components", "dice"), "n"] == 4  # exam e has no Dice
    assert table.loc[("components", "mssd_mm"), "rho"] == pytest.approx(1.0)
    assert np.isnan(table.loc[("triage_score", "dice"), "rho"])  # constant score


def test_degraded_flags(tmp_path: Path) -> None:
    (tmp_path / "dataset.json").write_text(json.dumps({"subjects": [
        {"case": "a", "degraded": "motion"}, {"case": "b", "degraded": None}]}))
    assert degraded_flags(tmp_path) == {"a": "motion", "b": ""}
    assert degraded_flags(tmp_path / "missing") == {}


def test_cli_triage(two_fold_run: Path, ankle_small: Path, tmp_path: Path, capsys) -> None:
    assert main(["triage", str(two_fold_run), "--fold", "1"]) == 0
    table = pd.read_csv(Path(two_fold_run) / "triage" / "triage_spar.csv")
    assert set(table["fold"]) == {1} and "degraded" in table
    assert (Path(two_fold_run) / "triage" / "spearman_spar.csv").is_file()
    assert main(["triage", str(two_fold_run), "--images", str(ankle_small / "imagesTr"), "--method", "baseline"]) == 0
    assert (Path(two_fold_run) / "triage" / "images_baseline.csv").is_file()
    capsys.readouterr()
    for argv in (["triage", str(tmp_path / "nowhere")], ["triage", str(two_fold_run), "--method", "magic"],
                 ["triage", str(two_fold_run), "--images", str(tmp_path / "none")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err


def test_unknown_method_is_refused(two_fold_run: Path) -> None:
    with pytest.raises(SparError, match="--method"):
        triage_images(two_fold_run, ".", "adversarial", fold=0)


def test_another_models_label_maps_are_ranked_with_the_runs_shape_model(two_fold_run: Path, ankle_small: Path,
                                                                        tmp_path: Path, capsys) -> None:
    """``spar triage RUN --predictions DIR``: label maps spar did not make (here the truth, one exam corrupted)
    ranked with each exam's own fold's models, the scores that need the other model's probabilities left out and
    said so, and checked against the truth of the run's dataset."""
    from spar_core.cli import main

    run = tmp_path / "run"
    shutil.copytree(two_fold_run, run)
    other = tmp_path / "other_model"
    other.mkdir()
    rng = np.random.default_rng(0)
    target = "ankle_002"
    for path in sorted((ankle_small / "labelsTr").glob("*.nii.gz")):
        src = nibabel.load(path)
        label = np.asarray(src.dataobj).astype(np.uint8)
        if path.name.startswith(target):
            label = _corrupt(label, rng)
        nibabel.save(nibabel.Nifti1Image(label, src.affine, src.header), other / path.name)
    assert main(["triage", str(run), "--predictions", str(other), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    table = pd.read_csv(run / "triage" / "predictions" / "other_model.csv")
    assert table.iloc[0]["case"] == target and table.iloc[0]["components"] > 100
    assert len(table) == len(list(other.iterdir())) and set(table["method"]) == {"other_model"}
    tested = {c: f for f in RunFolder(run).folds() for c in RunFolder(run).read_split(f).test}
    assert all(tested[c] == f for c, f in zip(table["case"], table["fold"]))  # each exam by the fold that tested it
    assert table["recon_error"].notna().all() and table["entropy"].isna().all()
    assert "entropy" in out and "not computed" in out
    spearman = pd.read_csv(run / "triage" / "predictions" / "other_model_spearman.csv")
    rho = spearman[(spearman["score"] == "triage_score") & (spearman["metric"] == "dice")]["rho"].item()
    assert rho < 0  # the more suspicious, the lower the Dice
    # a folder with no label map, a label map on another grid: one line each, naming what is wrong
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["triage", str(run), "--predictions", str(empty)]) == 2
    assert "no .nii or .nii.gz label map" in capsys.readouterr().err
    first = sorted(other.iterdir())[0]
    nibabel.save(nibabel.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4)), first)
    assert main(["triage", str(run), "--predictions", str(other)]) == 2
    err = capsys.readouterr().err
    assert first.name in err and "grid" in err and len(err.strip().splitlines()) == 1
