"""Latent figures: one frame per epoch on fixed axes, markers per origin, colours per structure, convergence
lines equal to the table, and the slice behind a point."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spar_core.errors import SparError
from spar_core.figures.latent import (
    convergence_figure,
    embedding_scatter,
    pair_slice_figure,
    slice_dice,
    structure_names,
)
from spar_core.figures.slices import PALETTE
from spar_core.methods import display_name, method_colors

STRUCTURES = ["calcaneus", "talus", "tibia"]  # label values 1, 2, 3
EPOCHS = [1, 2, 5]
PAIRS = [("ankle_000", 4, "talus"), ("ankle_000", 5, "talus"), ("ankle_002", 7, "tibia")]


def _embedding_table() -> pd.DataFrame:
    """Two methods, three epochs, three pairs of talus / tibia (no calcaneus): predicted points walk towards
    their fixed true points, by a method-dependent step."""
    rows = []
    for method, step in (("baseline", 1.0), ("spar", 2.0)):
        for epoch in EPOCHS:
            for k, (case, index, structure) in enumerate(PAIRS):
                true_xy = (float(k), float(-k))
                pred_xy = (true_xy[0] + 10.0 / (epoch * step), true_xy[1] + 5.0)
                for origin, (x, y) in (("true", true_xy), ("predicted", pred_xy)):
                    rows.append(dict(fold=0, embedding="aligned", method=method, epoch=epoch, structure=structure,
                                     origin=origin, case=case, slice=index, x=x, y=y))
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return _embedding_table()


def _convergence_table() -> pd.DataFrame:
    rows = []
    for m, method in enumerate(("spar", "baseline", "shape")):  # not in registry order on purpose
        for epoch in EPOCHS:
            for s, structure in enumerate(["all", "talus"]):
                rows.append(dict(fold=0, method=method, epoch=epoch, structure=structure,
                                 mean_distance=1.0 / epoch + m + 0.1 * s, std=0.1 * (m + 1), n=10 - s))
    return pd.DataFrame(rows)


def test_one_frame_per_epoch_with_a_slider_and_play_button(table: pd.DataFrame) -> None:
    fig = embedding_scatter(table, "aligned", "spar", structures=STRUCTURES)
    assert [f.name for f in fig.frames] == ["1", "2", "5"]
    slider = fig.layout.sliders[0]
    assert [s.label for s in slider.steps] == ["1", "2", "5"]
    assert [list(s.args[0]) for s in slider.steps] == [["1"], ["2"], ["5"]]
    assert slider.active == 2  # the last epoch is shown first
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["▶ play", "❚❚ pause"]
    # The figure's own data is the shown frame's.
    assert [list(t.x) for t in fig.data] == [list(t.x) for t in fig.frames[2].data]
    first = embedding_scatter(table, "aligned", "spar", structures=STRUCTURES, epoch=1)
    assert first.layout.sliders[0].active == 0
    assert [list(t.x) for t in first.data] == [list(t.x) for t in first.frames[0].data]


def test_axis_ranges_are_fixed_and_cover_every_epoch(table: pd.DataFrame) -> None:
    figs = [embedding_scatter(table, "aligned", "spar", epoch=e) for e in EPOCHS]
    ranges = {(tuple(f.layout.xaxis.range), tuple(f.layout.yaxis.range)) for f in figs}
    assert len(ranges) == 1  # the same axes whichever epoch is shown first
    (x0, x1), (y0, y1) = ranges.pop()
    rows = table[(table["method"] == "spar")]
    assert x0 < rows["x"].min() and x1 > rows["x"].max() == pytest.approx(10.0 / 2 + 2)
    assert y0 < rows["y"].min() and y1 > rows["y"].max()
    assert figs[0].layout.xaxis.autorange is False and figs[0].layout.yaxis.autorange is False
    # The predicted points really move between frames; the true ones stay.
    frames = {f.name: {t.name: np.array(t.x) for t in f.data} for f in figs[0].frames}
    assert not np.allclose(frames["1"]["talus · predicted"], frames["5"]["talus · predicted"])
    np.testing.assert_array_equal(frames["1"]["talus · true"], frames["5"]["talus · true"])


def test_markers_and_customdata_per_origin(table: pd.DataFrame) -> None:
    fig = embedding_scatter(table, "aligned", "baseline", structures=STRUCTURES, epoch=2)
    assert [t.name for t in fig.data] == ["talus · true", "talus · predicted", "tibia · true", "tibia · predicted"]
    for trace in fig.data:
        origin = trace.name.split(" · ")[1]
        assert trace.marker.symbol == {"true": "circle", "predicted": "x"}[origin]
        custom = np.asarray(trace.customdata, dtype=object)
        assert set(custom[:, 3]) == {origin} and set(custom[:, 4]) == {2}
    talus_pred = fig.data[1]
    expected = table[(table["method"] == "baseline") & (table["epoch"] == 2) & (table["structure"] == "talus")
                     & (table["origin"] == "predicted")]
    np.testing.assert_allclose(talus_pred.x, expected["x"])
    np.testing.assert_allclose(talus_pred.y, expected["y"])
    assert [tuple(c[:3]) for c in talus_pred.customdata] == PAIRS[:2]
    assert "slice %{customdata[1]}" in talus_pred.hovertemplate and "epoch %{customdata[4]}" in talus_pred.hovertemplate


@pytest.mark.parametrize("structures, show, expected", [
    (STRUCTURES, None, {"talus": PALETTE[1], "tibia": PALETTE[2]}),  # calcaneus absent: colours do not shift
    (STRUCTURES, ["tibia"], {"tibia": PALETTE[2]}),
    (None, None, {"talus": PALETTE[0], "tibia": PALETTE[1]}),  # no label order: order of appearance
])
def test_one_colour_per_structure_as_on_the_slice_pages(table: pd.DataFrame, structures, show, expected) -> None:
    fig = embedding_scatter(table, "aligned", "spar", structures=structures, show=show)
    colours: dict[str, set[str]] = {}
    for trace in fig.data:
        colours.setdefault(trace.name.split(" · ")[0], set()).add(trace.marker.color)
    assert colours == {s: {c} for s, c in expected.items()}
    for frame in fig.frames:
        assert [t.marker.color for t in frame.data] == [t.marker.color for t in fig.data]


def test_selected_pair_is_ringed_in_every_frame(table: pd.DataFrame) -> None:
    fig = embedding_scatter(table, "aligned", "spar", selected=("ankle_002", 7, "tibia"))
    for frame in fig.frames:
        ring = frame.data[-1]
        assert ring.name == "selected pair" and len(ring.x) == 2
        epoch = int(frame.name)
        assert list(ring.x) == pytest.approx([2.0, 2.0 + 10.0 / (epoch * 2.0)])  # true, then predicted


@pytest.mark.parametrize("kwargs, message", [
    (dict(embedding="umap", method="spar"), "no rows for embedding='umap'"),
    (dict(embedding="aligned", method="shape"), "aligned/baseline"),
    (dict(embedding="aligned", method="spar", epoch=3), "epoch=3"),
    (dict(embedding="aligned", method="spar", show=["calcaneus"]), "calcaneus"),
])
def test_bad_scatter_arguments_raise(table: pd.DataFrame, kwargs: dict, message: str) -> None:
    with pytest.raises(SparError, match=message):
        embedding_scatter(table, **kwargs)
    with pytest.raises(SparError, match="lacks column"):
        embedding_scatter(table.drop(columns="origin"), "aligned", "spar")


def test_convergence_one_line_per_method_equal_to_the_table() -> None:
    conv = _convergence_table()
    fig = convergence_figure(conv, highlight="spar")
    lines = [t for t in fig.data if t.fill != "toself"]
    bands = [t for t in fig.data if t.fill == "toself"]
    order = ["baseline", "shape", "spar"]  # registry order
    assert [t.name for t in lines] == [display_name(m) for m in order]
    assert [t.name for t in bands] == [f"{display_name(m)} ±1 SD" for m in order]
    colours = method_colors(order)
    for method, line, band in zip(order, lines, bands):
        rows = conv[(conv["method"] == method) & (conv["structure"] == "all")].sort_values("epoch")
        assert list(line.x) == EPOCHS
        np.testing.assert_allclose(line.y, rows["mean_distance"])
        assert line.line.color == colours[method]
        assert line.line.width == (4 if method == "spar" else 2)
        upper = rows["mean_distance"] + rows["std"]
        lower = rows["mean_distance"] - rows["std"]
        np.testing.assert_allclose(band.y, np.concatenate([upper, lower[::-1]]))


def test_convergence_panel_per_structure() -> None:
    conv = _convergence_table()
    fig = convergence_figure(conv, ["all", "talus"], band=False)
    assert [a.text for a in fig.layout.annotations] == ["all structures", "talus"]
    assert len(fig.data) == 2 * 3
    talus = [t for t in fig.data if t.xaxis == "x2"]
    np.testing.assert_allclose(talus[0].y, 1.0 / np.array(EPOCHS) + 1 + 0.1)  # baseline (m=1), talus (+0.1)
    assert [t.showlegend for t in fig.data] == [True] * 3 + [False] * 3  # one legend entry per method
    with pytest.raises(SparError, match="femur"):
        convergence_figure(conv, ["femur"])
    with pytest.raises(SparError, match="one fold"):
        convergence_figure(pd.concat([conv, conv.assign(fold=1)]))


@pytest.mark.parametrize("truth, pred, dice", [
    ([[1, 1], [0, 0]], [[1, 0], [0, 0]], 200 / 3),
    ([[1, 1], [0, 0]], [[0, 0], [1, 1]], 0.0),
    ([[1, 1], [1, 1]], [[1, 1], [1, 1]], 100.0),
    ([[0, 0], [0, 0]], [[0, 0], [0, 0]], float("nan")),
])
def test_slice_dice(truth, pred, dice) -> None:
    result = slice_dice(np.array(truth, bool), np.array(pred, bool))
    assert result == pytest.approx(dice, nan_ok=True)


def _slice() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    image = np.linspace(0, 1, 64 * 48, dtype=np.float32).reshape(64, 48)
    truth = np.zeros((64, 48), np.int64)
    truth[10:20, 10:20] = 2  # talus: 100 px
    truth[40:50, 30:40] = 1
    pred = np.zeros_like(truth)
    pred[15:25, 10:20] = 2  # talus: 100 px, 50 of them on the truth
    return image, truth, pred


def test_pair_slice_shows_the_predicted_fill_over_the_true_outline() -> None:
    image, truth, pred = _slice()
    names = {1: "calcaneus", 2: "talus", 3: "tibia"}
    fig = pair_slice_figure(image, truth, pred, 2, names=names, spacing2d=(0.5, 1.0), index=7, margin=4)
    assert fig.layout.title.text == "talus, slice 7: 2D Dice 50.0 %"
    names_drawn = [t.name for t in fig.data]
    assert names_drawn == ["image", "talus (predicted)", "talus (predicted)", "talus (true outline)"]
    fill, outline = fig.data[1], fig.data[3]
    assert fill.colorscale[0][1] == PALETTE[1]  # talus keeps its colour of the slice pages
    assert np.nansum(fill.z) == 100  # the predicted talus only, not the calcaneus
    assert np.nanmin(outline.x) == pytest.approx(9.5) and np.nanmax(outline.x) == pytest.approx(19.5)
    assert list(fig.layout.xaxis.range) == [10 - 4 - 0.5, 25 + 4 - 0.5]  # zoomed on both masks
    assert fig.layout.yaxis.scaleratio == pytest.approx(2.0)


def test_pair_slice_without_prediction_or_with_a_bad_structure() -> None:
    image, truth, _ = _slice()
    names = {1: "calcaneus", 2: "talus"}
    fig = pair_slice_figure(image, truth, None, 1, names=names, spacing2d=(1.0, 1.0), margin=None)
    assert fig.layout.title.text.endswith("no prediction")
    assert [t.name for t in fig.data] == ["image", "calcaneus (predicted)", "calcaneus (true outline)"]
    assert list(fig.layout.xaxis.range) == [-0.5, 63.5]
    with pytest.raises(SparError, match="structure=3"):
        pair_slice_figure(image, truth, None, 3, names=names, spacing2d=(1.0, 1.0))
    with pytest.raises(SparError, match="pred2d has shape"):
        pair_slice_figure(image, truth, truth[:10], 1, names=names, spacing2d=(1.0, 1.0))


def test_structure_names_follow_label_values() -> None:
    assert structure_names({"tibia": 3, "background": 0, "calcaneus": 1, "talus": 2}) == STRUCTURES
