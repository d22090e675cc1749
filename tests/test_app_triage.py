"""The Outlier triage page driven headless with AppTest on the session's tiny run (conftest.app_roots, where
``spar embed`` and ``spar triage`` have run): ranked table with metrics, one exam's figures, runs without triage."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from apptest_support import start_app, viewer_scenes


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def roots(app_roots: tuple[Path, Path]) -> tuple[Path, Path]:
    return app_roots


def _start(monkeypatch: pytest.MonkeyPatch, data: Path, runs: Path) -> AppTest:
    return start_app(monkeypatch, data, runs, page="triage", timeout=180)


def _charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _title(spec: dict) -> str:
    return (spec["layout"].get("title") or {}).get("text") or ""


def _panels(at: AppTest) -> list[str]:
    """Panel titles of the worst-slice figures."""
    return [a["text"] for spec in _charts(at) for a in spec["layout"].get("annotations", []) if "slice" in a["text"]]


def _array(value: list | dict) -> np.ndarray:
    """A Plotly JSON array: a list, or a typed array {"dtype", "bdata"} (base64) as Plotly ≥ 6 writes numpy."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value, dtype=float)


def _ok(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def test_ranked_table_with_metrics_and_spearman(roots: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    at = _start(monkeypatch, *roots)
    _ok(at)
    run = roots[1] / "tiny"
    written = pd.read_csv(run / "triage" / "triage_spar.csv", dtype={"case": str})
    table = at.dataframe[0].value
    assert len(table) == len(written) == 4
    assert list(table["rank"]) == [1, 2, 3, 4]
    assert list(table["case"]) == list(written.sort_values("rank")["case"])
    np.testing.assert_allclose(table["triage_score"], written.sort_values("rank")["triage_score"])
    # Dice and MSSD per exam: the post-processed SPAR rows of metrics.csv, averaged over bones.
    metrics = pd.read_csv(run / "metrics.csv", dtype={"case": str})
    mine = metrics[(metrics["method"] == "spar") & metrics["postprocessed"].astype(str).str.lower().eq("true")]
    expected = mine.groupby("case")[["dice", "mssd_mm"]].mean()
    np.testing.assert_allclose(table["dice_pct"], expected.loc[table["case"], "dice"] * 100)
    np.testing.assert_allclose(table["mssd_mm"], expected.loc[table["case"], "mssd_mm"])
    # The ranking chart lists the exams in the same order, rank 1 on top.
    ranking = next(s for s in _charts(at) if _title(s).startswith("Exams by triage score"))
    assert [c.split(". ")[1] for c in ranking["layout"]["yaxis"]["categoryarray"]] == list(table["case"])
    spearman = at.dataframe[1].value
    written_rho = pd.read_csv(run / "triage" / "spearman_spar.csv")
    assert len(spearman) == len(written_rho) and set(spearman["score"]) >= {"triage_score", "components"}
    np.testing.assert_allclose(spearman["rho"], written_rho["rho"])
    # The exam picker starts on rank 1, and its worst slices are the ones of the table.
    assert at.selectbox(key="triage_exam").value == table["case"][0]
    slices = written.sort_values("rank")["worst_slices"].iloc[0].split(";")
    assert _panels(at) == [f"<b>#{n}: slice {k} · SPAR, raw</b>" for n, k in enumerate(slices, start=1)]


def test_choosing_another_exam_changes_the_figures(roots: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    at = _start(monkeypatch, *roots)
    at.toggle(key="triage_3d").set_value(True).run()
    _ok(at)
    cases = list(at.dataframe[0].value["case"])

    def views() -> tuple[list[str], str, dict]:
        charts = _charts(at)
        latent = next(_title(s) for s in charts if " map, spar, epoch " in _title(s))
        surface = next(s for s in charts if "true surface" in _title(s))
        return _panels(at), latent, surface

    panels, latent, surface = views()
    assert latent.startswith("aligned map") and f": {cases[0]}" in latent
    assert _title(surface).startswith(f"{cases[0]}, SPAR, raw")
    meshes = [t for t in surface["data"] if t["type"] == "mesh3d"]
    assert meshes and all(t["name"] in ("calcaneus", "talus", "tibia") for t in meshes)
    distances = np.concatenate([_array(t["intensity"]) for t in meshes])
    assert np.isfinite(distances).all() and distances.min() >= 0 and distances.max() > 1.0  # a tiny model is off

    at.selectbox(key="triage_exam").set_value(cases[1]).run()
    _ok(at)
    panels2, latent2, surface2 = views()
    assert panels2 != panels
    assert f": {cases[1]}" in latent2
    assert _title(surface2).startswith(f"{cases[1]}, SPAR, raw")
    first, second = (np.concatenate([_array(t["x"]) for t in s["data"]]) for s in (surface, surface2))
    assert first.shape != second.shape or not np.allclose(first, second)

    # Post-processed masks: other panels, and the 3D view of pred/ (at most one component per bone).
    at.toggle(key="triage_post").set_value(True).run()
    _ok(at)
    assert all("SPAR, post-processed" in p for p in _panels(at))
    assert _title(views()[2]).startswith(f"{cases[1]}, SPAR, post-processed")
    at.multiselect(key="triage_bones").set_value([]).run()
    _ok(at)
    assert any("at least one bone" in i.value for i in at.info)


def test_uncertainty_tab_shows_the_maps_in_the_viewer(roots: tuple[Path, Path],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    at = _start(monkeypatch, *roots)
    _ok(at)
    table = at.dataframe[0].value
    case = table["case"].iloc[0]
    (header, arrays), = viewer_scenes(at)
    assert header["exam"] == case
    assert [p["heat"] for p in header["panels"]] == [None, "entropy", "disagreement"]
    assert [p["outline"] for p in header["panels"]] == ["truth", "prediction", "prediction"]
    assert arrays[("map", "entropy")].max() > 0
    # It starts on the exam's worst slice, wherever RAS+ moved the phantoms' slice axis k.
    worst = int(str(table["worst_slices"].iloc[0]).split(";")[0])
    target, flip = header["ornt"][2]
    assert header["cursor"][target] == (worst if flip > 0 else header["source_shape"][2] - 1 - worst)


def test_run_without_triage_or_embeddings(roots: tuple[Path, Path], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    data, runs = roots
    shutil.copytree(runs / "tiny", tmp_path / "runs" / "bare", ignore=shutil.ignore_patterns("triage", "embeddings"))
    at = _start(monkeypatch, data, tmp_path / "runs")
    _ok(at)
    assert any("spar triage" in i.value for i in at.info)
    assert not at.get("plotly_chart") and not at.dataframe
    # The page runs the triage itself for a small run; then only the latent map is missing.
    at.button(key="triage_run_now").click().run()
    _ok(at)
    assert (tmp_path / "runs" / "bare" / "triage" / "triage_spar.csv").is_file()
    assert len(at.dataframe[0].value) == 4
    assert any("spar embed" in i.value for i in at.info)
