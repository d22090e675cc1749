"""Study curves: one line per method with its 95 % interval as a band, the baseline dashed, over a study's
axis (training-set size, or a corruption's severity), from :func:`~spar_core.evaluation.study_table.study_table`.

Each point carries its cell in ``customdata`` (the x value, the method), so a click can open that cell.
"""

from __future__ import annotations

from typing import Mapping

import pandas as pd
import plotly.graph_objects as go

from spar_core.data.corruptions import UNITS, level
from spar_core.errors import SparError
from spar_core.evaluation.significance import METRICS
from spar_core.methods import BASELINE, display_name, method_order
from spar_core.layout.study_folder import ALL

# One colour per method, Paul Tol's "bright" scheme.
METHOD_COLORS = {"baseline": "#4477AA", "adversarial": "#EE6677", "shape": "#228833", "spar": "#CCBB44"}


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def study_curves(table: pd.DataFrame, x: str, metric: str = "dice_pct", *, x_title: str | None = None,
                 tick_text: Mapping[float, str] | None = None, title: str | None = None) -> go.Figure:
    """Mean ``metric`` per method against column ``x`` of a study table, with interval bands.

    Raises:
        SparError: ``x`` or the metric not in the table, or no row of that metric.
    """
    names = {m.name: m for m in METRICS}
    if metric not in names:
        raise SparError(f"study_curves: metric {metric!r}; expected one of {', '.join(names)}")
    if x not in table.columns:
        raise SparError(f"study_curves: no column {x!r} in the study table (columns: {', '.join(table.columns)})")
    rows = table[table["metric"] == metric].sort_values(x)
    if rows.empty:
        raise SparError(f"study_curves: the table holds no {metric} rows")
    fig = go.Figure()
    for method in method_order(rows["method"].unique()):
        own = rows[rows["method"] == method]
        color = METHOD_COLORS.get(method, "#777777")
        band_x = list(own[x]) + list(own[x])[::-1]
        band_y = list(own["ci_high"]) + list(own["ci_low"])[::-1]
        fig.add_trace(go.Scatter(x=band_x, y=band_y, mode="lines", fill="toself", fillcolor=_rgba(color, 0.15),
                                 line={"width": 0}, hoverinfo="skip", showlegend=False, legendgroup=method))
        fig.add_trace(go.Scatter(
            x=own[x], y=own["mean"], mode="lines+markers", name=display_name(method), legendgroup=method,
            line={"color": color, "dash": "dash" if method == BASELINE else "solid", "width": 2},
            customdata=[[v, method] for v in own[x]],
            hovertemplate=f"{display_name(method)}<br>{x} %{{x}}<br>{names[metric].label} %{{y:.2f}}"
                          "<extra></extra>"))
    axis = {"title": x_title or x}
    if tick_text:
        values = sorted(rows[x].unique())
        axis.update(tickmode="array", tickvals=values, ticktext=[tick_text.get(v, str(v)) for v in values])
    fig.update_layout(title=title, xaxis=axis, yaxis={"title": names[metric].label}, height=420,
                      legend={"orientation": "h", "y": -0.2}, margin={"t": 50 if title else 20})
    return fig


def robustness_curves(table: pd.DataFrame, kind: str, metric: str = "dice_pct",
                      title: str | None = None) -> go.Figure:
    """A robustness table's curves for corruption ``kind``: severity on x, labelled "clean" and by the
    corruption's level in its unit (SNR, γ, …)."""
    rows = table[table["corruption"] == kind]
    ticks = {int(s): "clean" if s == 0 else f"{level(kind, int(s)):.3g}" for s in rows["severity"].unique()}
    return study_curves(rows, "severity", metric,
                        x_title=f"severity ({UNITS[kind]})", tick_text=ticks, title=kind if title is None else title)


def efficiency_curves(table: pd.DataFrame, metric: str = "dice_pct", title: str | None = None) -> go.Figure:
    """A data-efficiency table's curves: training patients on x, the full set labelled "all"."""
    return study_curves(table, "train_exams", metric, x_title="training exams (patients)", tick_text={ALL: "all"},
                        title=title)
