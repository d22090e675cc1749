"""Figures of the latent shape space during training (paper §3.4): where the predicted codes ẑ = F(ŷ_b) lie
relative to the true codes z = F(y_b), and how far apart they are, per epoch.

Inputs are the tables ``spar embed`` writes (:mod:`spar_core.latent.embedding`,
:mod:`spar_core.latent.convergence`), so the app and the notebooks draw the same figures:

- :func:`embedding_scatter`: one 2D map (t-SNE, aligned t-SNE or UMAP) of one method, one animation frame per
  snapshot epoch, true codes as dots and predicted codes as crosses, one colour per structure (the colours of
  :func:`~spar_core.figures.slices.structure_colors`, as on the slice pages).
- :func:`convergence_figure`: the mean latent distance ‖ẑ − z‖ per epoch, one line per method, ±1 SD band.
- :func:`pair_slice_figure`: the 2D slice behind one point, the structure's predicted mask filled over the
  true mask's outline.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from spar_core.errors import SparError
from spar_core.figures.compare import TRUTH_COLOR
from spar_core.latent import convergence, embedding
from spar_core.figures.slices import _contour_xy, _fill_trace, slice_figure, structure_colors
from spar_core.methods import display_name, method_colors, method_order
from spar_core.data.voxels import bounding_box

EMBEDDING_LABELS: dict[str, str] = {"tsne": "t-SNE", "aligned": "aligned t-SNE", "umap": "UMAP"}
ORIGINS: tuple[str, ...] = ("true", "predicted")
ORIGIN_SYMBOLS: dict[str, str] = {"true": "circle", "predicted": "x"}
# The columns of one fold's tables (the files hold the fold too).
EMBEDDING_COLUMNS = [c for c in embedding.COLUMNS if c != "fold"]
CONVERGENCE_COLUMNS = [c for c in convergence.COLUMNS if c != "fold"]
HOVER = ("%{customdata[0]} · slice %{customdata[1]}<br>%{customdata[2]} (%{customdata[3]})"
         "<br>epoch %{customdata[4]}<extra></extra>")


def _check_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SparError(f"{what}: the table lacks column(s) {', '.join(missing)} (has: "
                        f"{', '.join(map(str, frame.columns))})")


def structure_names(labels: Mapping[str, int]) -> list[str]:
    """Structure names in label-value order, background (value 0) left out: the order that fixes colours.

    labels: name -> value, as in ``dataset.json`` or ``run.json`` (``{"background": 0, "calcaneus": 1, ...}``).
    """
    return [name for name, value in sorted(labels.items(), key=lambda kv: int(kv[1])) if int(value) != 0]


def structure_color_map(structures: Sequence[str]) -> dict[str, str]:
    """Structure name -> colour; ``structures`` in label-value order, as the slice figures colour them."""
    return dict(zip(structures, structure_colors(len(structures))))


def _padded_range(values: np.ndarray, pad: float = 0.06) -> list[float]:
    lo, hi = (float(np.min(values)), float(np.max(values))) if len(values) else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    return [lo - pad * span, hi + pad * span]


def _points(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y and the (n, 5) customdata (case, slice, structure, origin, epoch) of some table rows."""
    custom = np.empty((len(rows), 5), dtype=object)
    for k, column in enumerate(("case", "slice", "structure", "origin", "epoch")):
        values = rows[column].to_numpy()
        custom[:, k] = values.astype(int) if column in ("slice", "epoch") else values.astype(str)
    return rows["x"].to_numpy(float), rows["y"].to_numpy(float), custom


def _frame_traces(rows: pd.DataFrame, keys: list[tuple[str, str]], colors: Mapping[str, str],
                  selected: tuple[str, int, str] | None) -> list[dict]:
    """The traces of one epoch: one per (structure, origin) in ``keys`` (empty when absent), then the ring
    around the selected pair when there is one."""
    groups = dict(iter(rows.groupby(["structure", "origin"], sort=False)))
    traces = []
    for structure, origin in keys:
        group = groups.get((structure, origin), rows.iloc[:0])
        x, y, custom = _points(group)
        predicted = origin == "predicted"
        traces.append(dict(
            type="scatter", mode="markers", x=x, y=y, customdata=custom, hovertemplate=HOVER,
            name=f"{structure} · {origin}", legendgroup=structure,
            marker=dict(symbol=ORIGIN_SYMBOLS[origin], color=colors[structure], size=9 if predicted else 8,
                        opacity=0.9 if predicted else 0.55,
                        line=dict(width=0 if predicted else 0.5, color="#333333")),
        ))
    if selected is not None:
        case, index, structure = selected
        mine = rows[(rows["case"].astype(str) == case) & (rows["slice"].astype(int) == index)
                    & (rows["structure"] == structure)]
        x, y, custom = _points(mine)
        traces.append(dict(type="scatter", mode="markers+lines", x=x, y=y, customdata=custom, hovertemplate=HOVER,
                           name="selected pair", line=dict(color="#000000", width=1, dash="dot"),
                           marker=dict(symbol="circle-open", size=18, color="#000000", line=dict(width=2))))
    return traces


def embedding_scatter(
    table: pd.DataFrame,
    embedding: str,
    method: str,
    *,
    structures: Sequence[str] | None = None,
    show: Sequence[str] | None = None,
    epoch: int | None = None,
    selected: tuple[str, int, str] | None = None,
    title: str | None = None,
    height: int = 600,
) -> go.Figure:
    """One method's true and predicted codes on one 2D map, one animation frame per snapshot epoch.

    Args:
        table: rows of ``RUN/embeddings/fold_<k>.csv`` (:data:`spar_core.latent.embedding.COLUMNS`) of one fold.
        embedding: ``"tsne"``, ``"aligned"`` or ``"umap"``.
        method: method key (``"spar"``).
        structures: every structure name in label-value order; fixes the colours (default: the table's
            structures in order of appearance).
        show: the structures to draw (default: all).
        epoch: the frame shown first (default: the last epoch).
        selected: (case, slice, structure) of a code pair to ring in every frame, or None.
        title: figure title (default: method, map and what the markers mean).
        height: figure height in pixels.

    Returns:
        A figure with one marker Scatter per (structure, origin) (``name`` "<structure> · <origin>", dots for
        true, crosses for predicted, ``customdata`` (case, slice, structure, origin, epoch) per point), plus
        the "selected pair" trace when ``selected`` is given. ``frames`` holds one frame per epoch (``name``
        the epoch) with the same traces; an epoch slider and play / pause buttons step through them. The
        axis ranges cover every epoch, so a point that moves between frames moved in the map.

    Raises:
        SparError: missing columns, no rows for (embedding, method), an epoch not in the table, or no row of
            the structures in ``show``.
    """
    _check_columns(table, EMBEDDING_COLUMNS, "embedding_scatter")
    rows = table[(table["embedding"] == embedding) & (table["method"] == method)]
    if rows.empty:
        have = sorted(set(zip(table["embedding"].astype(str), table["method"].astype(str))))
        raise SparError(f"embedding_scatter: no rows for embedding={embedding!r}, method={method!r} (the table "
                        f"has: {', '.join(f'{e}/{m}' for e, m in have) or 'nothing'})")
    order = list(structures) if structures is not None else list(dict.fromkeys(rows["structure"].astype(str)))
    order += [s for s in dict.fromkeys(rows["structure"].astype(str)) if s not in order]
    colors = structure_color_map(order)
    if show is not None:
        rows = rows[rows["structure"].isin(list(show))]
        if rows.empty:
            raise SparError(f"embedding_scatter: no {embedding}/{method} point of structure(s) {', '.join(show)}")
    epochs = sorted(int(e) for e in rows["epoch"].unique())
    if epoch is None:
        epoch = epochs[-1]
    if epoch not in epochs:
        raise SparError(f"embedding_scatter: epoch={epoch}; expected one of {epochs}")
    present = set(zip(rows["structure"], rows["origin"]))
    keys = [(s, o) for s in order for o in ORIGINS if (s, o) in present]
    by_epoch = {int(e): g for e, g in rows.groupby("epoch")}
    frames = [go.Frame(name=str(e), data=_frame_traces(by_epoch[e], keys, colors, selected)) for e in epochs]

    label = EMBEDDING_LABELS.get(embedding, embedding)
    if title is None:
        title = f"{display_name(method)} · {label}: true codes (●) and predicted codes (✕)"
        if embedding == "tsne":
            title += "<br><sup>t-SNE refitted at every epoch: compare how mixed the clouds are, not positions</sup>"
    animate = dict(mode="immediate", frame=dict(duration=0, redraw=False), transition=dict(duration=0))
    layout = dict(
        title=title, height=height, hovermode="closest", legend=dict(title=dict(text="structure · origin")),
        margin=dict(l=10, r=10, t=70, b=10),
        xaxis=dict(range=_padded_range(rows["x"].to_numpy(float)), autorange=False, title="map axis 1",
                   zeroline=False),
        yaxis=dict(range=_padded_range(rows["y"].to_numpy(float)), autorange=False, title="map axis 2",
                   zeroline=False),
        sliders=[dict(
            active=epochs.index(epoch), currentvalue=dict(prefix="epoch ", xanchor="right"), transition=dict(duration=0),
            pad=dict(t=40), x=0.17, len=0.83,
            steps=[dict(label=str(e), method="animate", args=[[str(e)], animate]) for e in epochs],
        )],
        updatemenus=[dict(
            type="buttons", direction="left", x=0.0, xanchor="left", y=0.0, yanchor="top", pad=dict(t=40, r=10),
            showactive=False,
            buttons=[
                dict(label="▶ play", method="animate",
                     args=[None, dict(frame=dict(duration=800, redraw=False), fromcurrent=False,
                                      transition=dict(duration=400))]),
                dict(label="❚❚ pause", method="animate", args=[[None], animate]),
            ],
        )],
    )
    return go.Figure(data=frames[epochs.index(epoch)].data, layout=layout, frames=frames)


def convergence_figure(
    table: pd.DataFrame,
    structures: Sequence[str] = ("all",),
    *,
    band: bool = True,
    highlight: str | None = None,
    panel_height: int = 340,
) -> go.Figure:
    """Mean latent distance ‖ẑ − z‖ between each predicted code and its own true code, per epoch and method.

    Args:
        table: rows of :func:`spar_core.latent.convergence.convergence_table` (one fold): method, epoch, structure
            ("all" or a name), mean_distance, std, n.
        structures: one panel per entry, in order; "all" pools every structure.
        band: shade ±1 SD of the pair distances around each mean (their spread, not a confidence interval).
        highlight: a method key drawn with a thicker line (the one the scatter shows).
        panel_height: height of one row of panels (three per row) in pixels.

    Returns:
        A figure with, per panel, one line Scatter per method (``name`` its display name, registry order,
        colours of :func:`~spar_core.methods.method_colors`, ``y`` the table's mean_distance) and,
        with ``band``, one band Scatter per method (``name`` "<display> ±1 SD", ``fill`` "toself").

    Raises:
        SparError: missing columns, several folds, no structure asked for, or a structure not in the table.
    """
    _check_columns(table, CONVERGENCE_COLUMNS, "convergence_figure")
    if "fold" in table.columns and table["fold"].nunique() > 1:
        raise SparError(f"convergence_figure: rows of folds {sorted(table['fold'].unique())}; expected one fold")
    structures = list(structures)
    known = list(dict.fromkeys(table["structure"].astype(str)))
    unknown = [s for s in structures if s not in known]
    if unknown or not structures:
        raise SparError(f"convergence_figure: structure(s) {', '.join(unknown) or '(none)'} not in the table "
                        f"(has: {', '.join(known)})")
    methods = method_order([str(m) for m in table["method"].unique()])
    colors = method_colors(methods)
    cols = min(3, len(structures))
    titles = ["all structures" if s == "all" else s for s in structures]
    fig = make_subplots(rows=math.ceil(len(structures) / cols), cols=cols, subplot_titles=titles,
                        shared_yaxes=True, horizontal_spacing=0.05)
    for k, structure in enumerate(structures):
        row, col = divmod(k, cols)
        for method in methods:
            rows = table[(table["structure"] == structure) & (table["method"] == method)].sort_values("epoch")
            if rows.empty:
                continue
            name = display_name(method)
            epochs = rows["epoch"].to_numpy(int)
            mean, std = rows["mean_distance"].to_numpy(float), rows["std"].to_numpy(float)
            if band:
                fig.add_trace(go.Scatter(
                    x=np.concatenate([epochs, epochs[::-1]]), y=np.concatenate([mean + std, (mean - std)[::-1]]),
                    mode="lines", fill="toself", fillcolor=colors[method], opacity=0.15, line=dict(width=0),
                    hoverinfo="skip",
                    name=f"{name} ±1 SD", legendgroup=method, showlegend=False,
                ), row=row + 1, col=col + 1)
            fig.add_trace(go.Scatter(
                x=epochs, y=mean, mode="lines+markers", name=name, legendgroup=method, showlegend=k == 0,
                line=dict(color=colors[method], width=4 if method == highlight else 2),
                customdata=np.stack([std, rows["n"].to_numpy(int)], axis=1),
                hovertemplate="epoch %{x}: %{y:.3f} ± %{customdata[0]:.3f} (%{customdata[1]} pairs)<extra>"
                              + name + "</extra>",
            ), row=row + 1, col=col + 1)
    last = int(table["epoch"].max())
    fig.update_xaxes(title_text="epoch", dtick=1 if last <= 20 else None)
    fig.update_yaxes(title_text="‖ẑ − z‖ (latent units)", rangemode="tozero", col=1)
    fig.update_layout(height=panel_height * math.ceil(len(structures) / cols), legend_title="method",
                      margin=dict(l=10, r=10, t=40, b=10), hovermode="x unified")
    return fig


def slice_dice(truth: np.ndarray, pred: np.ndarray) -> float:
    """2D Dice (%) of two boolean masks; nan when both are empty."""
    total = int(truth.sum()) + int(pred.sum())
    return float("nan") if total == 0 else 200.0 * int(np.logical_and(truth, pred).sum()) / total


def pair_slice_figure(
    image2d: np.ndarray,
    truth2d: np.ndarray | None,
    pred2d: np.ndarray | None,
    structure: int,
    *,
    names: Mapping[int, str],
    spacing2d: tuple[float, float],
    axis: int = 2,
    index: int = 0,
    title: str | None = None,
    margin: int | None = 24,
    opacity: float = 0.45,
    height: int = 520,
) -> go.Figure:
    """The slice behind one code pair: one structure's predicted mask filled, its true mask outlined in white.

    Args:
        image2d, truth2d, pred2d: (n_p, n_q) intensities in [0, 1], true and predicted labels of the slice
            (:func:`~spar_core.figures.slices.extract_slice`); None leaves that mask out.
        structure: the label value of the structure.
        names: label value -> structure name (all structures: fixes the colour as on the other pages).
        spacing2d: in-plane pixel size (s_p, s_q) in mm.
        axis, index: where the slice lies, for the (i, j, k) on hover.
        title: figure title (default: structure, slice and its 2D Dice).
        margin: zoom to both masks' bounding box plus this many pixels; None shows the whole slice.
        opacity: fill opacity of the prediction.
        height: figure height in pixels.

    Returns:
        :func:`~spar_core.figures.slices.slice_figure` of the image alone, plus a fill Heatmap (when the
        prediction holds the structure) and a legend Scatter, both named "<structure> (predicted)", and a line
        Scatter named "<structure> (true outline)".

    Raises:
        SparError: a structure not in ``names``, grids that differ from the image's, or the errors of
            :func:`~spar_core.figures.slices.slice_figure`.
    """
    structures = sorted((int(v), str(n)) for v, n in names.items() if int(v) != 0)
    rank = {v: k for k, (v, _) in enumerate(structures)}
    if structure not in rank:
        raise SparError(f"pair_slice_figure: structure={structure}; expected a label value of {dict(structures)}")
    for what, grid in (("truth2d", truth2d), ("pred2d", pred2d)):
        if grid is not None and np.shape(grid) != np.shape(image2d):
            raise SparError(f"pair_slice_figure: {what} has shape {np.shape(grid)}; expected {np.shape(image2d)}")
    name, color = dict(structures)[structure], structure_colors(len(structures))[rank[structure]]
    empty = np.zeros(np.shape(image2d), dtype=bool)
    truth = empty if truth2d is None else np.asarray(truth2d) == structure
    pred = empty if pred2d is None else np.asarray(pred2d) == structure
    if title is None:
        dice = "no prediction" if pred2d is None else f"2D Dice {slice_dice(truth, pred):.1f} %"
        title = f"{name}, slice {index}: {dice}"
    fig = slice_figure(image2d, None, spacing2d=spacing2d, names={}, axis=axis, index=index, title=title,
                       height=height)
    if pred.any():
        fig.add_trace(_fill_trace(pred, f"{name} (predicted)", color, opacity))
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", marker=dict(symbol="square", size=12, color=color),
                             name=f"{name} (predicted)", hoverinfo="skip"))
    x, y = _contour_xy(truth)
    fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line=dict(color=TRUTH_COLOR, width=2),
                             name=f"{name} (true outline)", hoverinfo="skip"))
    box = bounding_box(truth | pred)
    if margin is not None and box is not None:
        n_p, n_q = truth.shape
        fig.update_xaxes(range=[max(box[0].start - margin, 0) - 0.5, min(box[0].stop + margin, n_p) - 0.5])
        fig.update_yaxes(range=[max(box[1].start - margin, 0) - 0.5, min(box[1].stop + margin, n_q) - 0.5])
    fig.update_layout(legend=dict(title=dict(text=""), bgcolor="#262626", font=dict(color="#FFFFFF")))
    return fig
