"""The run pages driven headless with AppTest: run and method pickers, four-method comparison, results.

One tiny run (four ankle phantoms, the four methods, two folds, preset ``tiny``; ``conftest.app_roots``) is
built once per session; every test points the app at it through SPAR_DATA_ROOT / SPAR_RUNS_ROOT.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from apptest_support import start_app, started_run, viewer_scenes

DISPLAY = ["Base. UNet", "Adv. Reg.", "Sh. Reg.", "SPAR"]
EXAMS = ["ankle_000", "ankle_001", "ankle_002", "ankle_003"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def roots(app_roots: tuple[Path, Path]) -> tuple[Path, Path]:
    """The session's tiny run (see conftest.app_roots)."""
    return app_roots


_start = start_app


@pytest.fixture
def compare(roots: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return _start(monkeypatch, *roots, page="compare")


def _scene(at: AppTest) -> tuple[dict, dict]:
    scenes = viewer_scenes(at)
    assert len(scenes) == 1
    return scenes[0]


def test_sidebar_picks_the_run_its_methods_and_its_dataset(roots: tuple[Path, Path],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    at = _start(monkeypatch, *roots)  # the slice browser
    assert not at.exception and not at.error
    assert at.selectbox(key="run").options == ["tiny"]
    method = at.selectbox(key="method")
    assert method.options == DISPLAY and method.value == "baseline"
    assert at.text_input(key="runs_root").value == str(roots[1])
    # The run's dataset is inside the data root: the data pickers moved to it and to a tested exam.
    assert at.selectbox(key="dataset").value == "phantoms_ankle"
    assert at.selectbox(key="exam").value in EXAMS
    assert len(viewer_scenes(at)) == 1  # the browser still shows its exam


def test_compare_renders_truth_four_panels_and_the_exam_metrics(compare: AppTest) -> None:
    assert not compare.exception and not compare.error
    assert compare.selectbox(key="compare_exam").options == [f"{c} (fold {f})" for c, f in
                                                             zip(EXAMS, [0, 1, 0, 1])]
    assert compare.toggle(key="compare_post").value is True
    header, _ = _scene(compare)
    titles = [p["title"] for p in header["panels"]]
    assert titles[0] == "Ground truth" and [t.split(" · ")[0] for t in titles[1:]] == DISPLAY
    assert all("Dice" in t for t in titles[1:])
    assert [(p["fill"], p["outline"]) for p in header["panels"][1:]] == [(d, "truth") for d in DISPLAY]
    assert "post-processed predictions" in header["title"]
    table = compare.dataframe[0].value
    assert list(table.columns) == ["method", "structure", "Dice (%)", "RAVD (%)", "ASSD (mm)", "MSSD (mm)"]
    assert list(dict.fromkeys(table["method"])) == DISPLAY
    assert len(table) == 4 * 3  # four methods × calcaneus, talus, tibia


def test_compare_viewer_gets_each_methods_prediction(compare: AppTest, roots: tuple[Path, Path]) -> None:
    header, arrays = _scene(compare)
    case = header["exam"]
    for method, display in zip(["baseline", "adversarial", "shape", "spar"], DISPLAY):
        path = roots[1] / "tiny" / "folds" / "0" / method / "pred" / f"{case}.nii.gz"
        image = nibabel.load(path)
        expected = nibabel.as_closest_canonical(image).get_fdata().astype(np.uint8)
        np.testing.assert_array_equal(arrays[("layer", display)], expected)


def test_post_processing_toggle_switches_predictions_and_metrics(compare: AppTest) -> None:
    post_table, (post_header, post_arrays) = compare.dataframe[0].value, _scene(compare)
    compare.toggle(key="compare_post").set_value(False).run()
    assert not compare.exception and not compare.error
    raw_table, (raw_header, raw_arrays) = compare.dataframe[0].value, _scene(compare)
    assert "raw predictions" in raw_header["title"]
    # The tiny model's raw masks are full of islands: post-processing changes the metrics, and the masks.
    numbers = ["Dice (%)", "RAVD (%)"]
    assert not post_table[numbers].equals(raw_table[numbers])
    assert any(not np.array_equal(post_arrays[("layer", d)], raw_arrays[("layer", d)]) for d in DISPLAY)


def test_uncertainty_toggle_shows_each_triaged_method_map(compare: AppTest) -> None:
    compare.toggle(key="compare_uncertainty").set_value(True).run()
    assert not compare.exception and not compare.error
    header, arrays = _scene(compare)
    heat = [p for p in header["panels"] if p["heat"]]
    assert [p["title"].split(" · ")[0].removesuffix(": entropy") for p in heat] == ["SPAR"]  # conftest triaged SPAR
    assert heat[0]["outline"] == "SPAR" and arrays[("map", "SPAR")].max() > 0
    assert any("No entropy map" in c.value and "Base. UNet" in c.value for c in compare.caption)


def test_picking_a_tested_exam_moves_the_sidebar_too(compare: AppTest) -> None:
    compare.selectbox(key="compare_exam").set_value("ankle_003").run()
    assert not compare.exception
    assert compare.selectbox(key="exam").value == "ankle_003"
    assert _scene(compare)[0]["title"].startswith("ankle_003, fold 1")
    assert set(compare.dataframe[0].value["method"]) == set(DISPLAY)


def test_results_shows_table1_plots_and_tests(roots: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    at = _start(monkeypatch, *roots, page="results")
    assert not at.exception and not at.error
    table1 = next(m.value for m in at.markdown if m.value.startswith("**Table 1.**"))
    assert "post-processed masks" in table1
    rows = [line.split("|")[1].strip() for line in table1.splitlines() if line.startswith("| ")][1:]
    assert rows == DISPLAY
    assert any("Δ vs baseline" in m.value for m in at.markdown)  # the significance table
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(charts) == 2
    assert [t["name"] for t in charts[0]["data"]] == DISPLAY  # the box plot, one trace per method
    lines = {t["name"] for t in charts[1]["data"] if t.get("fill") != "toself"}  # learning curves, no bands
    assert lines == set(DISPLAY)
    assert any(t.get("fill") == "toself" for t in charts[1]["data"])  # two folds: a band around each mean
    at.segmented_control(key="results_metric").set_value("assd_mm").run()
    at.toggle(key="results_post").set_value(False).run()
    assert not at.exception and not at.error
    table1 = next(m.value for m in at.markdown if m.value.startswith("**Table 1.**"))
    assert "raw masks" in table1
    box = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert box["layout"]["yaxis"]["title"]["text"] == "ASSD (mm)"


def test_runs_folder_outside_the_runs_root_is_a_message(compare: AppTest) -> None:
    compare.text_input(key="runs_root").input("/").run()
    assert not compare.exception
    assert any("outside the runs root" in e.value for e in compare.error)
    assert not viewer_scenes(compare)


@pytest.mark.parametrize("page", ["compare", "results"])
def test_no_run_points_to_spar_demo(roots: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    page: str) -> None:
    at = _start(monkeypatch, roots[0], tmp_path / "no_runs_yet", page=page)
    assert not at.exception and not at.error
    assert any("spar demo" in i.value for i in at.info)
    assert not at.get("plotly_chart") and not viewer_scenes(at)


def test_run_without_metrics_or_outside_dataset(roots: tuple[Path, Path], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    data, runs = roots
    # A run folder that has only started: config and splits, no model, no metrics.csv, no history.
    started = started_run(runs / "tiny", tmp_path / "runs")
    at = _start(monkeypatch, data, tmp_path / "runs", page="results")
    assert not at.exception and not at.error
    assert any("no metrics.csv yet" in i.value and "spar crossval" in i.value for i in at.info)
    at.switch_page("views/compare.py").run()
    assert not at.exception and not at.error
    assert [p["title"] for p in _scene(at)[0]["panels"]] == ["Ground truth"]  # no method has predicted yet
    assert any(c.value.startswith("No ") and all(d in c.value for d in DISPLAY) for c in at.caption)

    # The finished run, with a data root that does not hold its dataset: the comparison says why, the
    # results (which need no image) still show.
    other = tmp_path / "other_data"
    shutil.copytree(data / "phantoms_ankle", other / "copy")
    at = _start(monkeypatch, other, runs, page="compare")
    assert not at.exception
    assert any("outside the data root" in e.value for e in at.error)
    assert not viewer_scenes(at)
    at.switch_page("views/results.py").run()
    assert not at.exception and not at.error
    assert any(m.value.startswith("**Table 1.**") for m in at.markdown)


def test_results_studies_view_draws_both_curves(roots: tuple[Path, Path], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    from spar_core.evaluation.study_table import study_table
    from spar_core.layout.study_folder import ALL

    runs = tmp_path / "runs"
    shutil.copytree(roots[1] / "tiny", runs / "tiny")
    metrics = pd.read_csv(runs / "tiny" / "metrics.csv", dtype={"case": str})
    post = metrics[metrics["postprocessed"]]
    rows = pd.concat([post.assign(corruption="noise", severity=s, level=v) for s, v in ((0, None), (2, 10.0))])
    folder = runs / "tiny" / "studies" / "robustness"
    folder.mkdir(parents=True)
    study_table(rows, ["corruption", "severity", "level"], n_boot=50).to_csv(folder / "table.csv", index=False)
    study = runs / "my_study"
    study.mkdir()
    (study / "study.json").write_text(json.dumps({"kind": "data-efficiency", "cells": {}}))
    sizes = pd.concat([post.assign(train_exams=n) for n in (1, ALL)])
    study_table(sizes, ["train_exams"], n_boot=50).to_csv(study / "table.csv", index=False)
    at = _start(monkeypatch, roots[0], runs, page="results")
    assert not at.exception and not at.error
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    titles = [(c["layout"].get("title") or {}).get("text") for c in charts]
    assert "noise" in titles and "my_study" in titles
    curve = charts[titles.index("my_study")]
    lines = [t for t in curve["data"] if t.get("mode") == "lines+markers"]
    assert {t["name"] for t in lines} == set(DISPLAY)
    assert next(t for t in lines if t["name"] == "Base. UNet")["line"]["dash"] == "dash"
    assert curve["layout"]["xaxis"]["ticktext"] == ["1", "all"]
