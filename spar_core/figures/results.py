"""Figures of a run's results: metric distributions per structure and method, and learning curves.

Inputs are what the run folder holds (``RUN/metrics.csv`` as a frame, ``history.jsonl`` rows), so the app,
the notebooks and a report script draw the same figures. Methods appear in registry order (baseline,
adversarial, shape, spar) under the paper's names, each with its fixed colour (:mod:`spar_core.methods`).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from spar_core.errors import SparError
from spar_core.evaluation.report import check_metrics, select
from spar_core.evaluation.significance import METRICS, Metric
from spar_core.methods import display_name, method_colors, method_order

# history.jsonl loss terms, in plotting order, with their panel titles.
LOSS_TERMS: dict[str, str] = {
    "loss": "segmenter loss (L_seg + λ·L_reg)",
    "ce": "cross-entropy",
    "dice": "soft Dice loss (L_seg = CE + Dice)",
    "reg": "L_reg (regularizer)",
    "d_loss": "discriminator loss",
}


def find_metric(metric: str) -> Metric:
    """The :data:`~spar_core.evaluation.significance.METRICS` entry named ``metric`` (its csv column or display column).

    Raises:
        SparError: unknown metric.
    """
    for m in METRICS:
        if metric in (m.source, m.name):
            return m
    known = ", ".join(m.source for m in METRICS)
    raise SparError(f"metric={metric!r}: expected one of {known}")


def metric_boxplot(metrics: pd.DataFrame, metric: str = "dice", postprocessed: bool = True, *,
                   height: int = 460) -> go.Figure:
    """One box per (structure, method) with every exam as a point: how a metric spreads, not only its mean.

    Args:
        metrics: rows of ``RUN/metrics.csv`` (see :data:`spar_core.evaluation.report.REQUIRED_COLUMNS`).
        metric: ``"dice"``, ``"ravd_pct"``, ``"assd_mm"`` or ``"mssd_mm"`` (or the display column, e.g.
            ``"dice_pct"``); drawn in display units (Dice in %, RAVD in %, distances in mm).
        postprocessed: the post-processed masks (the paper's setting) or the raw stacked predictions.
        height: figure height in pixels.

    Returns:
        A grouped box figure: one Box trace per method (``name`` its display name, in registry order), x the
        structure, y the metric, points hovering their exam and fold. Undefined values (nan) are left out and
        counted in the title.

    Raises:
        SparError: unknown metric, an invalid metrics frame, or no rows for ``postprocessed``.
    """
    m = find_metric(metric)
    sel = select(check_metrics(metrics), postprocessed)
    if sel.empty:
        raise SparError(f"metric_boxplot: no {'post-processed' if postprocessed else 'raw'} rows in the metrics")
    methods = [str(c) for c in sel["method"].cat.categories]
    colors = method_colors(methods)
    fig = go.Figure()
    for method in methods:
        rows = sel[sel["method"] == method]
        fig.add_trace(go.Box(
            x=rows["structure"].astype(str).to_numpy(),
            y=rows[m.name].to_numpy(float),
            name=display_name(method),
            marker=dict(color=colors[method], size=5),
            boxpoints="all",
            jitter=0.4,
            pointpos=0,
            customdata=np.stack([rows["case"].astype(str), rows["fold"].astype(str)], axis=1),
            hovertemplate="%{customdata[0]} (fold %{customdata[1]})<br>%{x}: %{y:.3g}<extra>%{fullData.name}</extra>",
        ))
    undefined = int(sel[m.name].isna().sum())
    masks = "post-processed" if postprocessed else "raw (no post-processing)"
    title = f"{m.label} per structure, {masks} masks"
    if undefined:
        title += f" — {undefined} undefined value(s) left out"
    fig.update_layout(boxmode="group", height=height, title=title, xaxis_title="structure", yaxis_title=m.label,
                      legend_title="method", margin=dict(l=10, r=10, t=50, b=10))
    return fig


def _history_frame(method: str, rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        return frame
    if "epoch" not in frame.columns:
        raise SparError(f"learning_curves: history of {method!r} has no 'epoch' field (keys: "
                        f"{', '.join(map(str, frame.columns))})")
    return frame


def learning_curves(histories: Mapping[str, Sequence[Mapping[str, Any]]], terms: Sequence[str] | None = None, *,
                    panel_height: int = 300) -> go.Figure:
    """Loss terms per epoch, one panel per term and one line per method (mean over folds, min–max band).

    Args:
        histories: method key -> rows of its ``history.jsonl`` files, each row with ``epoch`` and loss terms
            (and ``fold`` when rows of several folds are given: the line is then the mean over folds per
            epoch, with a shaded band from the lowest to the highest fold).
        terms: the loss terms to draw (default: those of :data:`LOSS_TERMS` found in the rows). A term a
            method does not have (missing, or zero at every epoch, e.g. the baseline's ``reg``) is left out
            for that method.
        panel_height: height of one row of panels (two panels per row) in pixels.

    Returns:
        A figure with one line Scatter per (term, method) drawn (``name`` the display name, one legend entry
        per method) plus, with several folds, one band Scatter each (``name`` "<display> band").

    Raises:
        SparError: no history rows, rows without ``epoch``, or an unknown / absent term asked for.
    """
    frames = {m: _history_frame(m, rows) for m, rows in histories.items()}
    frames = {m: f for m, f in frames.items() if not f.empty}
    if not frames:
        raise SparError("learning_curves: no history rows (has any method finished an epoch?)")
    present = set().union(*(f.columns for f in frames.values()))
    if terms is None:
        terms = [t for t in LOSS_TERMS if t in present]
    missing = [t for t in terms if t not in present]
    if missing or not terms:
        raise SparError(f"learning_curves: term(s) {', '.join(missing) or '(none)'} not in the histories "
                        f"(found: {', '.join(sorted(map(str, present)))})")
    methods = method_order(list(frames))
    colors = method_colors(methods)
    cols = min(2, len(terms))
    fig = make_subplots(rows=math.ceil(len(terms) / cols), cols=cols,
                        subplot_titles=[LOSS_TERMS.get(t, t) for t in terms], horizontal_spacing=0.08)
    shown: set[str] = set()
    for k, term in enumerate(terms):
        row, col = divmod(k, cols)
        for method in methods:
            frame = frames[method]
            if term not in frame.columns:
                continue
            values = pd.to_numeric(frame[term], errors="coerce")
            if not values.notna().any() or (values.fillna(0) == 0).all():
                continue
            stats = values.groupby(frame["epoch"]).agg(["mean", "min", "max", "count"]).sort_index()
            epochs = stats.index.to_numpy()
            name = display_name(method)
            if "fold" in frame.columns and frame["fold"].nunique() > 1:
                fig.add_trace(go.Scatter(
                    x=np.concatenate([epochs, epochs[::-1]]),
                    y=np.concatenate([stats["max"].to_numpy(), stats["min"].to_numpy()[::-1]]),
                    mode="lines", fill="toself", fillcolor=colors[method], opacity=0.18, line=dict(width=0), hoverinfo="skip",
                    name=f"{name} band", legendgroup=method, showlegend=False,
                ), row=row + 1, col=col + 1)
            fig.add_trace(go.Scatter(
                x=epochs, y=stats["mean"].to_numpy(), mode="lines+markers", name=name, legendgroup=method,
                line=dict(color=colors[method]), showlegend=method not in shown,
                customdata=stats["count"].to_numpy(),
                hovertemplate="epoch %{x}: %{y:.4g} (%{customdata} fold(s))<extra>" + name + "</extra>",
            ), row=row + 1, col=col + 1)
            shown.add(method)
    last = max(int(pd.to_numeric(f["epoch"], errors="coerce").max()) for f in frames.values())
    fig.update_xaxes(title_text="epoch", dtick=1 if last <= 20 else None)
    fig.update_layout(height=panel_height * math.ceil(len(terms) / cols), legend_title="method",
                      margin=dict(l=10, r=10, t=40, b=10), hovermode="x unified")
    return fig
