"""Figures of outlier triage: which exams to open first and why, an exam's worst slices, and where its shape
codes fall in the latent map (the 3D surfaces are in :mod:`spar_core.figures.surface`).

Inputs are what ``spar triage`` and ``spar embed`` write (``RUN/triage/triage_<method>.csv``,
``RUN/embeddings/fold_<k>.csv``) and label volumes on the exam's voxel grid.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from spar_core.errors import SparError
from spar_core.figures.compare import compare_figure
from spar_core.figures.slices import extract_slice, in_plane_spacing, structure_colors
from spar_core.triage.ranking import SCORES

# Paul Tol's "muted" scheme (colour-blind friendly), one fixed colour per score.
SCORE_COLORS: dict[str, str] = {"plausibility": "#332288", "recon_error": "#88CCEE", "knn_distance": "#44AA99",
                                "components": "#DDCC77", "volume_z": "#CC6677", "entropy": "#117733",
                                "disagreement": "#999933", "entropy_worst": "#882255", "disagreement_worst": "#AA4499",
                                "placement_z": "#EE7733", "intensity_z": "#0077BB", "level_doubt": "#661100"}
DEGRADED_COLOR = "#D55E00"


# ---------------------------------------------------------------------------------------------- ranking


def score_shares(table: pd.DataFrame) -> pd.DataFrame:
    """Each score's share of an exam's triage score: z_<score> / (number of z's the exam has).

    The triage score is the mean of the available z's, so the shares of a row add up to its ``triage_score``.

    Returns:
        One column per score with a ``z_<score>`` column in ``table`` (same index); nan where a z is missing.
    """
    present = [s for s in SCORES if f"z_{s}" in table]
    z = table[[f"z_{s}" for s in present]].to_numpy(dtype=float)
    count = np.isfinite(z).sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(count > 0, z / count, np.nan)
    return pd.DataFrame(shares, columns=present, index=table.index)


def _flags(table: pd.DataFrame) -> pd.Series:
    """The degraded column as text ("" for a clean exam, also when the csv left it empty or it is absent)."""
    return table["degraded"].fillna("").astype(str) if "degraded" in table else pd.Series("", index=table.index)


def exam_labels(table: pd.DataFrame) -> list[str]:
    """"<rank>. <case>" per row, with "⚠ <flag>" for a degraded exam: the ranking chart's categories."""
    flags = _flags(table)
    return [f"{int(r)}. {c}" + (f"  ⚠ {f}" if f else "") for r, c, f in zip(table["rank"], table["case"], flags)]


def ranking_figure(table: pd.DataFrame, *, title: str | None = None, height: int | None = None) -> go.Figure:
    """Exams by triage score, rank 1 at the top: one stacked bar per score shows what makes an exam suspicious.

    Args:
        table: a triage table (:func:`spar_core.triage.exams.triage_run` or its csv): case, rank, triage_score, the
            ``z_<score>`` columns, and optionally degraded ("motion" / "low_snr" / "" or nan).
        title: figure title.
        height: pixels; default grows with the number of exams.

    Returns:
        A horizontal relative bar chart: one Bar per score (``name`` the score) of its share of the triage score
        (z / number of available z's, so the shares add up to the score; hover gives the raw value and z), a
        Scatter "triage score" of diamonds, and for degraded exams a Scatter "degraded exam" in vermillion.
        The y categories (:func:`exam_labels`) are in rank order, rank 1 on top.

    Raises:
        SparError: a required column is missing.
    """
    missing = [c for c in ("case", "rank", "triage_score") if c not in table]
    if missing:
        raise SparError(f"ranking_figure: table lacks column(s) {', '.join(missing)}; expected a triage table")
    table = table.sort_values("rank", kind="stable").reset_index(drop=True)
    labels = exam_labels(table)
    shares = score_shares(table)
    traces: list[go.BaseTraceType] = []
    for score in shares.columns:
        raw = table[score].to_numpy(dtype=float) if score in table else np.full(len(table), np.nan)
        traces.append(go.Bar(
            x=shares[score], y=labels, orientation="h", name=score, marker_color=SCORE_COLORS[score],
            customdata=np.stack([raw, table[f"z_{score}"].to_numpy(dtype=float)], axis=1),
            hovertemplate=f"%{{y}}<br>{score} %{{customdata[0]:.4g}} (z %{{customdata[1]:.2f}})"
                          "<br>share of the score %{x:.2f}<extra></extra>"))
    score = table["triage_score"].to_numpy(dtype=float)
    traces.append(go.Scatter(x=score, y=labels, mode="markers", name="triage score",
                             marker=dict(symbol="diamond", size=11, color="#000000",
                                         line=dict(color="#FFFFFF", width=1)),
                             hovertemplate="%{y}<br>triage score %{x:.2f}<extra></extra>"))
    bad = (_flags(table) != "").to_numpy()
    if bad.any():
        traces.append(go.Scatter(x=score[bad], y=[lab for lab, b in zip(labels, bad) if b], mode="markers",
                                 name="degraded exam", marker=dict(symbol="diamond-open", size=17, color=DEGRADED_COLOR,
                                                                   line=dict(width=2)),
                                 hovertemplate="%{y}<br>degraded acquisition<extra></extra>"))
    layout = go.Layout(
        title=title, barmode="relative", height=height or max(260, 26 * len(table) + 140),
        margin=dict(l=10, r=10, t=50 if title else 20, b=40),
        xaxis=dict(title=dict(text="share of the triage score (z / number of scores); higher = more suspicious"),
                   zeroline=True, zerolinecolor="#888888"),
        yaxis=dict(categoryorder="array", categoryarray=labels, autorange="reversed", automargin=True),
        # beside the bars, top-aligned with them: a legend above the plot covered the title
        legend=dict(orientation="v", yanchor="top", y=1.0, xanchor="left", x=1.01),
        hovermode="closest",
    )
    return go.Figure(data=traces, layout=layout)


# ---------------------------------------------------------------------------------------------- slices, codes


def worst_slice_figures(image: np.ndarray, truth: np.ndarray | None, prediction: np.ndarray, slices: Sequence[int],
                        *, axis: int, spacing: Sequence[float], names: Mapping[int, str],
                        label: str = "prediction", panel_height: int = 360) -> list[go.Figure]:
    """One :func:`~spar_core.figures.compare.compare_figure` panel per worst slice: prediction filled, truth
    outlined, in the order given (worst first).

    Args:
        image: (X, Y, Z) intensities in [0, 1]; truth, prediction: labels on the same grid (truth may be None).
        slices: native slice indices along ``axis`` (a triage table's ``worst_slices``).
        label: what the prediction is, for the panel title ("SPAR, raw").

    Raises:
        SparError: a slice index outside the volume, or grids that differ (from the builders).
    """
    spacing2d = in_plane_spacing(spacing, axis)
    figures = []
    for n, index in enumerate(slices, start=1):
        truth2d = None if truth is None else extract_slice(truth, axis, int(index))
        figures.append(compare_figure(
            extract_slice(image, axis, int(index)), truth2d,
            {f"#{n}: slice {int(index)} · {label}": extract_slice(prediction, axis, int(index))},
            spacing2d=spacing2d, names=names, axis=axis, index=int(index), columns=1, panel_height=panel_height))
    return figures


def latent_exam_figure(embeddings: pd.DataFrame, case: str, method: str, kind: str = "aligned", *,
                       structures: Sequence[str] | None = None, height: int = 520) -> go.Figure:
    """One exam's shape codes in the latent map of the last snapshot epoch of ``method``.

    Args:
        embeddings: a ``RUN/embeddings/fold_<k>.csv`` table (:func:`spar_core.latent.embedding.embed_fold`).
        case: the exam whose codes are highlighted.
        method: whose predicted codes are drawn.
        kind: "tsne", "aligned" or "umap".
        structures: bone names in label order, for their colours (default: sorted names of the table).

    Returns:
        Scatter traces: "true codes" and "predicted codes" of every snapshot slice in gray, then per bone
        the exam's predicted codes ("<bone>: this exam") in the bone's colour, its true codes as open circles,
        and gray lines "predicted → true" joining each pair. The title names the epoch and the counts.

    Raises:
        SparError: no rows for ``method`` and ``kind``.
    """
    rows = embeddings[(embeddings["embedding"] == kind) & (embeddings["method"] == method)]
    if rows.empty:
        raise SparError(f"latent_exam_figure: no {kind!r} map of method {method!r} in the embeddings table")
    epoch = int(rows["epoch"].max())
    rows = rows[rows["epoch"] == epoch]
    order = list(structures) if structures is not None else sorted(rows["structure"].astype(str).unique())
    colors = dict(zip(order, structure_colors(len(order))))
    traces: list[go.BaseTraceType] = []
    for origin, color in (("true", "#C8C8C8"), ("predicted", "#8C8C8C")):
        part = rows[rows["origin"] == origin]
        traces.append(go.Scattergl(x=part["x"], y=part["y"], mode="markers", name=f"{origin} codes (all)",
                                   marker=dict(size=5, color=color), customdata=part[["case", "slice", "structure"]],
                                   hovertemplate="%{customdata[0]} slice %{customdata[1]} %{customdata[2]}"
                                                 f"<extra>{origin}</extra>"))
    mine = rows[rows["case"].astype(str) == str(case)]
    key = ["slice", "structure"]
    pairs = mine[mine["origin"] == "predicted"].merge(mine[mine["origin"] == "true"], on=key, suffixes=("", "_true"))
    for name in [s for s in order if s in set(mine["structure"].astype(str))]:
        own = pairs[pairs["structure"].astype(str) == name]
        color = colors.get(name, "#000000")
        xs = np.column_stack([own["x"], own["x_true"], np.full(len(own), np.nan)]).ravel()
        ys = np.column_stack([own["y"], own["y_true"], np.full(len(own), np.nan)]).ravel()
        traces.append(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=color, width=1), opacity=0.6,
                                 name=f"{name}: predicted → true", legendgroup=name, hoverinfo="skip"))
        traces.append(go.Scatter(x=own["x_true"], y=own["y_true"], mode="markers", name=f"{name}: true (this exam)",
                                 legendgroup=name, marker=dict(symbol="circle-open", size=10, color=color,
                                                               line=dict(width=2)),
                                 customdata=own["slice"], hovertemplate=f"slice %{{customdata}} {name}"
                                                                        "<extra>true</extra>"))
        traces.append(go.Scatter(x=own["x"], y=own["y"], mode="markers", name=f"{name}: this exam", legendgroup=name,
                                 marker=dict(size=11, color=color, line=dict(color="#000000", width=1)),
                                 customdata=own["slice"], hovertemplate=f"slice %{{customdata}} {name}"
                                                                        "<extra>predicted</extra>"))
    n_mine = int((mine["origin"] == "predicted").sum())
    what = (f"{case}: {n_mine} predicted codes (slice × bone)" if n_mine
            else f"{case} has no slice among the fold's snapshot slices")
    layout = go.Layout(
        title=f"{kind} map, {method}, epoch {epoch}: {what}", height=height,
        margin=dict(l=10, r=10, t=50, b=10), hovermode="closest",
        xaxis=dict(showticklabels=False, zeroline=False), yaxis=dict(showticklabels=False, zeroline=False,
                                                                     scaleanchor="x"),
    )
    return go.Figure(data=traces, layout=layout)
