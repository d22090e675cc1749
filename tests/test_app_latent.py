"""The Latent convergence page driven headless with AppTest on the session's tiny run (conftest.app_roots,
``spar embed`` done): pickers, the animated map, the slice behind a point, the convergence curve, and a run
whose maps are not computed yet."""

from __future__ import annotations

import base64
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from apptest_support import start_app, started_run

REPO = Path(__file__).resolve().parents[1]
DISPLAY = ["Base. UNet", "Adv. Reg.", "Sh. Reg.", "SPAR"]

pytestmark = pytest.mark.slow


def _start(monkeypatch: pytest.MonkeyPatch, data: Path, runs: Path) -> AppTest:
    return start_app(monkeypatch, data, runs, page="latent")


@pytest.fixture
def page(app_roots: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return _start(monkeypatch, *app_roots)


def _charts(at: AppTest) -> tuple[dict, dict, dict]:
    """(scatter, slice, convergence) specs, in page order."""
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(specs) == 3
    return specs[0], specs[1], specs[2]


def _embeddings(app_roots: tuple[Path, Path], fold: int = 0) -> pd.DataFrame:
    return pd.read_csv(app_roots[1] / "tiny" / "embeddings" / f"fold_{fold}.csv", dtype={"case": str})


def _values(v: list | dict) -> np.ndarray:
    """A spec array: a plain list, or plotly's typed-array encoding {"dtype", "bdata"} of numpy arrays."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return np.asarray(v)


def _trace(spec: dict, name: str) -> dict:
    return next(t for t in spec["data"] if t["name"] == name)


def _assert_ok(at: AppTest) -> None:
    assert not at.exception and not at.error, [e.value for e in at.error]


def test_page_shows_the_maps_of_the_sidebar_method(page: AppTest, app_roots: tuple[Path, Path]) -> None:
    _assert_ok(page)
    assert page.selectbox(key="latent_fold").options == ["fold 0", "fold 1"]
    kind = page.selectbox(key="latent_embedding")
    assert kind.options == ["t-SNE", "aligned t-SNE", "UMAP"] and kind.value == "aligned"
    method = page.selectbox(key="latent_method")
    assert method.options == DISPLAY and method.value == page.selectbox(key="method").value == "baseline"
    assert page.multiselect(key="latent_structures").options == ["calcaneus", "talus", "tibia"]

    table = _embeddings(app_roots)
    rows = table[(table["embedding"] == "aligned") & (table["method"] == "baseline")]
    epochs = sorted(rows["epoch"].unique())
    scatter, _, _ = _charts(page)
    assert [f["name"] for f in scatter["frames"]] == [str(e) for e in epochs]
    assert scatter["layout"]["sliders"][0]["active"] == len(epochs) - 1
    pred = rows[(rows["epoch"] == epochs[-1]) & (rows["origin"] == "predicted") & (rows["structure"] == "talus")]
    np.testing.assert_allclose(_values(_trace(scatter, "talus · predicted")["x"]), pred["x"])
    points = page.selectbox(key="latent_point")
    pairs = rows[["case", "slice", "structure"]].drop_duplicates()
    assert len(points.options) == len(pairs)
    assert points.value == f"{pairs.iloc[0]['case']} · slice {pairs.iloc[0]['slice']} · {pairs.iloc[0]['structure']}"


def test_convergence_curve_equals_the_written_table(page: AppTest, app_roots: tuple[Path, Path]) -> None:
    conv = pd.read_csv(app_roots[1] / "tiny" / "embeddings" / "convergence_fold_0.csv")
    _, _, curve = _charts(page)
    lines = [t for t in curve["data"] if t.get("fill") != "toself"]
    assert [t["name"] for t in lines] == DISPLAY
    keys = ["baseline", "adversarial", "shape", "spar"]
    for key, line in zip(keys, lines):
        rows = conv[(conv["method"] == key) & (conv["structure"] == "all")].sort_values("epoch")
        np.testing.assert_allclose(_values(line["y"]), rows["mean_distance"])
    assert lines[0]["line"]["width"] == 4  # the method of the map is drawn thicker
    assert any("Mean Euclidean distance" in c.value and "latent space" in c.value for c in page.caption)


def test_method_and_map_pickers_change_the_scatter(page: AppTest, app_roots: tuple[Path, Path]) -> None:
    table = _embeddings(app_roots)
    assert _charts(page)[0]["layout"]["title"]["text"].startswith("Base. UNet · aligned t-SNE")
    page.selectbox(key="latent_method").set_value("spar").run()
    _assert_ok(page)
    after, _, curve = _charts(page)
    assert after["layout"]["title"]["text"].startswith("SPAR · aligned t-SNE")
    last = table["epoch"].max()
    spar = table[(table["embedding"] == "aligned") & (table["method"] == "spar") & (table["epoch"] == last)
                 & (table["origin"] == "predicted") & (table["structure"] == "tibia")]
    np.testing.assert_allclose(_values(_trace(after, "tibia · predicted")["x"]), spar["x"])
    assert [t["line"]["width"] for t in curve["data"] if t.get("fill") != "toself"] == [2, 2, 2, 4]

    page.selectbox(key="latent_embedding").set_value("tsne").run()
    _assert_ok(page)
    tsne, _, _ = _charts(page)
    assert "refitted at every epoch" in tsne["layout"]["title"]["text"]
    frames = {f["name"]: f["data"] for f in tsne["frames"]}
    first, final = (frames[n] for n in (min(frames, key=int), max(frames, key=int)))
    assert not np.allclose(_values(first[0]["x"]), _values(final[0]["x"]))  # t-SNE refits: true codes move too
    page.selectbox(key="latent_embedding").set_value("aligned").run()
    frames = [f["data"] for f in _charts(page)[0]["frames"]]
    np.testing.assert_array_equal(_values(frames[0][0]["x"]), _values(frames[-1][0]["x"]))  # aligned: they stay


def test_sidebar_method_is_followed(page: AppTest) -> None:
    page.selectbox(key="method").set_value("shape").run()
    _assert_ok(page)
    assert page.selectbox(key="latent_method").value == "shape"
    assert _charts(page)[0]["layout"]["title"]["text"].startswith("Sh. Reg.")


def test_point_picker_opens_its_slice(page: AppTest, app_roots: tuple[Path, Path]) -> None:
    points = page.selectbox(key="latent_point")
    other = next(o for o in points.options if not o.endswith(points.value.split(" · ")[2]))
    case, index, structure = other.split(" · ")
    index = int(index.removeprefix("slice "))
    points.set_value(other).run()
    _assert_ok(page)
    scatter, slice_view, _ = _charts(page)
    assert slice_view["layout"]["title"]["text"].startswith(f"{structure}, slice {index}: 2D Dice")
    assert [t["name"] for t in slice_view["data"][-2:]] == [f"{structure} (predicted)", f"{structure} (true outline)"]
    table = _embeddings(app_roots)
    pair = table[(table["embedding"] == "aligned") & (table["method"] == "baseline")
                 & (table["epoch"] == table["epoch"].max()) & (table["case"] == case) & (table["slice"] == index)
                 & (table["structure"] == structure)]
    ring = _trace(scatter, "selected pair")
    np.testing.assert_allclose(_values(ring["x"]), pair["x"])  # true, then predicted
    assert any(c.value.startswith("Base. UNet's final model, raw") and "‖ẑ − z‖ of this pair: epoch" in c.value
               for c in page.caption)
    page.toggle(key="latent_post").set_value(True).run()
    _assert_ok(page)
    assert any("final model, post-processed" in c.value for c in page.caption)


def test_structure_filter_narrows_map_points_and_curves(page: AppTest) -> None:
    page.multiselect(key="latent_structures").set_value(["talus", "tibia"]).run()
    _assert_ok(page)
    scatter, _, curve = _charts(page)
    names = {t["name"].split(" · ")[0] for t in scatter["data"]} - {"selected pair"}
    assert names == {"talus", "tibia"}
    assert all(o.endswith(("talus", "tibia")) for o in page.selectbox(key="latent_point").options)
    assert [a["text"] for a in curve["layout"]["annotations"]] == ["talus", "tibia"]


def test_fold_picker_switches_table(page: AppTest, app_roots: tuple[Path, Path]) -> None:
    page.selectbox(key="latent_fold").set_value(1).run()
    _assert_ok(page)
    cases = {o.split(" · ")[0] for o in page.selectbox(key="latent_point").options}
    assert cases == set(_embeddings(app_roots, 1)["case"])
    assert not cases & set(_embeddings(app_roots, 0)["case"])  # each fold's own held-out exams


def test_run_without_maps_says_how_and_still_draws_the_curve(app_roots: tuple[Path, Path], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    data, runs = app_roots
    shutil.copytree(runs / "tiny", tmp_path / "runs" / "fresh", ignore=shutil.ignore_patterns("embeddings"))
    at = _start(monkeypatch, data, tmp_path / "runs")
    _assert_ok(at)
    assert at.selectbox(key="latent_fold").options == ["fold 0 (no maps yet)", "fold 1 (no maps yet)"]
    assert any("spar embed" in i.value and "--fold 0" in i.value for i in at.info)
    assert at.button(key="latent_compute").label == "Compute the maps in the background"
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(charts) == 1  # no map; the curve, computed from the snapshots
    conv = pd.read_csv(runs / "tiny" / "embeddings" / "convergence_fold_0.csv")
    spar = next(t for t in charts[0]["data"] if t["name"] == "SPAR")
    expected = conv[(conv["method"] == "spar") & (conv["structure"] == "all")].sort_values("epoch")
    np.testing.assert_allclose(_values(spar["y"]), expected["mean_distance"], rtol=1e-6)


def test_run_without_snapshots_is_an_info(app_roots: tuple[Path, Path], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    data, runs = app_roots
    started = started_run(runs / "tiny", tmp_path / "runs")
    at = _start(monkeypatch, data, tmp_path / "runs")
    _assert_ok(at)
    assert any("spar embed" in i.value for i in at.info)
    assert any("no latent snapshots" in i.value for i in at.info)
    assert not at.get("plotly_chart")
    assert not [b for b in at.button if b.key == "latent_compute"]  # nothing to compute from


def test_a_click_picks_the_point() -> None:
    """What the scatter's on_select callback reads (AppTest cannot click a Plotly chart)."""
    sys.path.insert(0, str(REPO / "app"))
    try:
        import latent_access
    finally:
        sys.path.remove(str(REPO / "app"))
    state = {"selection": {"points": [{"customdata": ["ankle_001", 12, "talus", "predicted", 5]}]}}
    assert latent_access.clicked_point(state) == ("ankle_001 · slice 12 · talus", 5)
    for empty in (None, {}, {"selection": {"points": []}}, {"selection": {"points": [{"x": 1}]}}):
        assert latent_access.clicked_point(empty) is None
