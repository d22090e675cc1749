"""Figure builders of the comparison and results pages: compare_figure, metric_boxplot, learning_curves."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from spar_core.errors import SparError
from spar_core.figures.compare import TRUTH_COLOR, compare_figure
from spar_core.figures.results import learning_curves, metric_boxplot
from spar_core.methods import method_colors

NAMES = {0: "background", 1: "femur", 2: "tibia"}
SPACING = (0.5, 1.5)


def _slice() -> tuple[np.ndarray, np.ndarray]:
    """A 20×16 image with two box structures: femur at p 2–7 × q 3–8, tibia at p 10–15 × q 5–12."""
    image = np.linspace(0.0, 1.0, 20 * 16, dtype=np.float32).reshape(20, 16)
    truth = np.zeros((20, 16), dtype=np.uint8)
    truth[2:8, 3:9] = 1
    truth[10:16, 5:13] = 2
    return image, truth


def _panels(truth: np.ndarray) -> dict[str, np.ndarray | None]:
    femur_only = np.where(truth == 1, 1, 0).astype(np.uint8)
    return {"Base. UNet": truth, "Adv. Reg.": femur_only, "Sh. Reg.": None, "SPAR": truth}


def _by_axis(fig, xaxis: str) -> list:
    return [t for t in fig.data if (t.xaxis or "x") == xaxis]


def test_compare_figure_panels_follow_the_paper_grid() -> None:
    image, truth = _slice()
    fig = compare_figure(image, truth, _panels(truth), spacing2d=SPACING, names=NAMES, title="t", axis=2, index=3)
    # One image per panel, named by the panel, on its own axes, in panel order.
    images = [t for t in fig.data if t.type == "heatmap" and t.name in _panels(truth)]
    assert [t.name for t in images] == ["Base. UNet", "Adv. Reg.", "Sh. Reg.", "SPAR"]
    assert [t.xaxis for t in images] == ["x", "x2", "x3", "x4"]
    assert np.array_equal(np.asarray(images[0].z), image.T)
    # Prediction fills: both structures, femur only, none (no prediction), both.
    fills = [[t.name for t in _by_axis(fig, a) if t.type == "heatmap" and t.name in ("femur", "tibia")]
             for a in ("x", "x2", "x3", "x4")]
    assert fills == [["femur", "tibia"], ["femur"], [], ["femur", "tibia"]]
    texts = [a.text for a in fig.layout.annotations]
    assert texts == ["<b>Base. UNet</b>", "<b>Adv. Reg.</b>", "<b>Sh. Reg.</b> (no prediction)", "<b>SPAR</b>"]
    # 2×2: first row at the top, columns side by side.
    assert fig.layout.yaxis.domain[0] > fig.layout.yaxis3.domain[1]
    assert fig.layout.xaxis.domain[1] < fig.layout.xaxis2.domain[0]


def test_compare_figure_links_zoom_and_keeps_the_aspect_ratio() -> None:
    image, truth = _slice()
    fig = compare_figure(image, truth, _panels(truth), spacing2d=SPACING, names=NAMES)
    assert fig.layout.yaxis.scaleanchor == "x"
    assert fig.layout.yaxis.scaleratio == pytest.approx(SPACING[1] / SPACING[0])
    for k in (2, 3, 4):
        assert fig.layout[f"xaxis{k}"].matches == "x"
        assert fig.layout[f"yaxis{k}"].matches == "y"
        assert fig.layout[f"yaxis{k}"].scaleanchor is None  # plotly.js ignores scaleanchor beside matches


def test_compare_figure_outlines_the_truth_once_per_panel() -> None:
    image, truth = _slice()
    fig = compare_figure(image, truth, _panels(truth), spacing2d=SPACING, names=NAMES)
    outlines = [t for t in fig.data if t.name == "truth (outline)"]
    assert len(outlines) == 4
    assert [t.showlegend for t in outlines] == [True, False, False, False]
    assert all(t.line.color == TRUTH_COLOR for t in outlines)
    x, y = np.asarray(outlines[0].x, float), np.asarray(outlines[0].y, float)
    # Sub-pixel outlines at half a pixel outside the boxes' voxel centres, NaN between the two loops.
    assert np.nanmin(x) == pytest.approx(1.5) and np.nanmax(x) == pytest.approx(15.5)
    assert np.nanmin(y) == pytest.approx(2.5) and np.nanmax(y) == pytest.approx(12.5)
    assert np.isnan(x).sum() == 2
    # One legend entry per structure, also for a structure absent from every prediction.
    legend = [t.name for t in fig.data if t.showlegend is not False and t.type == "scatter"]
    assert legend == ["truth (outline)", "femur", "tibia"]


def test_compare_figure_without_truth_and_single_column() -> None:
    image, truth = _slice()
    fig = compare_figure(image, None, {"SPAR": truth}, spacing2d=SPACING, names=NAMES, columns=1)
    assert not [t for t in fig.data if t.name == "truth (outline)"]
    assert [a.text for a in fig.layout.annotations] == ["<b>SPAR</b>"]


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(predictions={}), "predictions is empty"),
        (dict(image2d=np.zeros((3, 4, 5))), "image2d has shape"),
        (dict(truth2d=np.zeros((4, 4), np.uint8)), "truth2d has shape"),
        (dict(predictions={"SPAR": np.zeros((4, 4), np.uint8)}), "predictions['SPAR'] has shape"),
        (dict(spacing2d=(0.0, 1.0)), "spacing2d"),
        (dict(opacity=1.5), "opacity"),
        (dict(window=(0.5, 0.5)), "window"),
        (dict(columns=0), "columns"),
    ],
)
def test_compare_figure_rejects_bad_input(change: dict, message: str) -> None:
    image, truth = _slice()
    args = dict(image2d=image, truth2d=truth, predictions={"SPAR": truth}, spacing2d=SPACING, names=NAMES)
    with pytest.raises(SparError, match=message.replace("[", r"\[").replace("]", r"\]")):
        compare_figure(**{**args, **change})


def _metrics() -> pd.DataFrame:
    """Two methods (given out of registry order) × two exams × two structures, raw and post-processed."""
    rows = []
    for method, base in (("spar", 0.9), ("baseline", 0.8)):
        for c, case in enumerate(("ex_a", "ex_b")):
            for s, structure in enumerate(("femur", "tibia"), start=1):
                for post in (False, True):
                    dice = base + 0.01 * c + 0.02 * s + (0.05 if post else 0.0)
                    rows.append(dict(case=case, fold=c, method=method, structure=structure, label=s, dice=dice,
                                     ravd_pct=5.0 * s, assd_mm=0.5, mssd_mm=math.nan if s == 2 else 3.0,
                                     postprocessed=post))
    return pd.DataFrame(rows)


def test_metric_boxplot_in_registry_order_and_display_units() -> None:
    fig = metric_boxplot(_metrics(), "dice", postprocessed=True)
    assert [t.name for t in fig.data] == ["Base. UNet", "SPAR"]
    base = fig.data[0]
    assert list(base.x) == ["femur", "tibia", "femur", "tibia"]
    assert np.asarray(base.y, float) == pytest.approx([87.0, 89.0, 88.0, 90.0])  # (0.8 + … + 0.05) × 100
    assert base.boxpoints == "all"
    assert [list(r) for r in base.customdata] == [["ex_a", "0"], ["ex_a", "0"], ["ex_b", "1"], ["ex_b", "1"]]
    raw = metric_boxplot(_metrics(), "dice_pct", postprocessed=False)
    assert np.asarray(raw.data[0].y, float) == pytest.approx([82.0, 84.0, 83.0, 85.0])
    assert "raw" in raw.layout.title.text


def test_metric_boxplot_counts_undefined_values() -> None:
    fig = metric_boxplot(_metrics(), "mssd_mm")
    assert "4 undefined value(s) left out" in fig.layout.title.text  # tibia's MSSD, 2 exams × 2 methods
    assert "undefined" not in metric_boxplot(_metrics(), "assd_mm").layout.title.text


@pytest.mark.parametrize(
    "metrics, metric, message",
    [
        (_metrics(), "hausdorff", "metric='hausdorff'"),
        (_metrics().drop(columns="dice"), "dice", "missing column"),
        (_metrics()[_metrics()["postprocessed"]], "dice", None),  # fine: post-processed rows only
    ],
)
def test_metric_boxplot_rejects_bad_input(metrics: pd.DataFrame, metric: str, message: str | None) -> None:
    if message is None:
        metric_boxplot(metrics, metric)
        with pytest.raises(SparError, match="no raw rows"):
            metric_boxplot(metrics, metric, postprocessed=False)
        return
    with pytest.raises(SparError, match=message):
        metric_boxplot(metrics, metric)


def _history(method: str, fold: int, reg: float) -> list[dict]:
    return [dict(epoch=e, fold=fold, loss=1.0 / e + fold, ce=0.9 / e, reg=reg, d_loss=reg / 2) for e in (1, 2, 3)]


def test_learning_curves_average_folds_and_skip_absent_terms() -> None:
    histories = {
        "spar": _history("spar", 0, 0.7) + _history("spar", 1, 0.7),
        "baseline": _history("baseline", 0, 0.0) + _history("baseline", 1, 0.0),
    }
    fig = learning_curves(histories)
    assert [a.text for a in fig.layout.annotations] == [
        "segmenter loss (L_seg + λ·L_reg)", "cross-entropy", "L_reg (regularizer)", "discriminator loss"]
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    # loss and ce for both methods (registry order), reg and d_loss for SPAR only: the baseline's are all 0.
    assert [(t.name, t.xaxis) for t in lines] == [
        ("Base. UNet", "x"), ("SPAR", "x"), ("Base. UNet", "x2"), ("SPAR", "x2"), ("SPAR", "x3"), ("SPAR", "x4")]
    assert np.asarray(lines[0].y, float) == pytest.approx([1.5, 1.0, 1.0 / 3 + 0.5])  # mean of folds 0 and 1
    assert [t.showlegend for t in lines] == [True, True, False, False, False, False]
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(bands) == len(lines)  # two folds: a min–max band under each line
    assert all(b.mode == "lines" for b in bands)
    assert np.asarray(bands[0].y, float) == pytest.approx([2.0, 1.5, 1 / 3 + 1, 1 / 3, 0.5, 1.0])


def test_learning_curves_one_fold_has_no_band_and_terms_can_be_chosen() -> None:
    fig = learning_curves({"shape": _history("shape", 0, 0.2)}, terms=["ce"])
    assert [t.name for t in fig.data] == ["Sh. Reg."]
    assert not [t for t in fig.data if t.fill == "toself"]


@pytest.mark.parametrize(
    "histories, terms, message",
    [
        ({}, None, "no history rows"),
        ({"spar": []}, None, "no history rows"),
        ({"spar": [dict(loss=1.0)]}, None, "no 'epoch' field"),
        ({"spar": _history("spar", 0, 0.1)}, ["dice"], "term\\(s\\) dice not in the histories"),
    ],
)
def test_learning_curves_rejects_bad_input(histories: dict, terms: list | None, message: str) -> None:
    with pytest.raises(SparError, match=message):
        learning_curves(histories, terms)


def test_method_colors_are_fixed_by_the_registry() -> None:
    alone = method_colors(["spar"])
    together = method_colors(["baseline", "adversarial", "shape", "spar", "mine"])
    assert alone["spar"] == together["spar"]
    assert len(set(together.values())) == 5


def test_study_curves_bands_hold_the_means_and_the_baseline_is_dashed() -> None:
    import pandas as pd

    from spar_core.figures.studies import study_curves

    table = pd.DataFrame([{"train_exams": n, "method": m, "metric": "dice_pct", "mean": 80 + n + k,
                           "ci_low": 78 + n + k, "ci_high": 82 + n + k}
                          for n in (2, 4, 8) for k, m in enumerate(("baseline", "spar"))])
    fig = study_curves(table, "train_exams", "dice_pct", tick_text={8: "all"})
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["Base. UNet", "SPAR"] and lines[0].line.dash == "dash"
    assert list(lines[1].customdata[0]) == [2, "spar"]
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(bands) == 2 and min(bands[0].y) == 80 and max(bands[0].y) == 90
    assert all(b.mode == "lines" for b in bands)  # an outline only: no marker at the band's corners
    assert list(fig.layout.xaxis.ticktext) == ["2", "4", "all"]
    with pytest.raises(SparError, match="metric"):
        study_curves(table, "train_exams", "jaccard")


def test_robustness_and_efficiency_curves_label_their_axes() -> None:
    import pandas as pd

    from spar_core.data.corruptions import LEVELS, UNITS
    from spar_core.figures.studies import efficiency_curves, robustness_curves
    from spar_core.layout.study_folder import ALL

    rows = [{"corruption": kind, "severity": sev, "method": m, "metric": "dice_pct", "mean": 80.0, "ci_low": 78.0,
             "ci_high": 82.0} for kind in ("noise", "gamma") for sev in (-2, 0, 2) for m in ("baseline", "spar")]
    fig = robustness_curves(pd.DataFrame(rows), "gamma")
    assert list(fig.layout.xaxis.ticktext) == ["0.5", "clean", f"{LEVELS['gamma'][1]:g}"]
    assert UNITS["gamma"] in fig.layout.xaxis.title.text and fig.layout.title.text == "gamma"
    assert all(len(t.x) in (3, 6) for t in fig.data)  # the gamma rows only: three severities (bands: six corners)
    table = pd.DataFrame([{"train_exams": n, "method": "baseline", "metric": "dice_pct", "mean": 80.0,
                           "ci_low": 78.0, "ci_high": 82.0} for n in (2, ALL)])
    assert list(efficiency_curves(table, title="s").layout.xaxis.ticktext) == ["2", "all"]
