"""The methods side by side on one slice, as in the paper's Fig. 2: a grid of panels, one per method.

Each panel shows the same grayscale slice, the method's prediction filled with one colour per structure (the
colours of :func:`spar_core.figures.slices.structure_colors`, so a bone looks the same on every page) and the
ground truth as an outline in a single colour, so that where a method misses or overshoots a bone is visible
at a glance. Orientation and aspect ratio follow :mod:`spar_core.figures.slices`.

Zoom and pan are linked: every panel's axes match the first panel's (one ``scaleanchor`` on the first panel
keeps the physical aspect ratio; plotly.js allows ``matches`` pointing at an axis that holds ``scaleanchor``).

Speed (a slider move rebuilds the figure): traces and layout are plain dicts handed to ``go.Figure`` once
(building ``go.Heatmap`` objects first and then the figure validates and copies everything twice, four times
slower), the layout is written by hand (no ``make_subplots``), the truth outline is traced once and shared by
the panels, and each structure is a Heatmap over its bounding box only.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import plotly.graph_objects as go

from spar_core.data.checks import check_spacing
from spar_core.errors import SparError
from spar_core.figures.slices import _contour_xy, _position_template, in_plane_axes, structure_colors
from spar_core.data.voxels import bounding_box

TRUTH_COLOR = "#FFFFFF"  # white: none of the structure colours, and visible on the grayscale image


def _truth_outline(truth2d: np.ndarray, values: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Outlines of every structure of the truth in one (x, y) polyline, NaN between loops."""
    xs, ys = [], []
    for value in values:
        x, y = _contour_xy(truth2d == value)
        xs.append(x)
        ys.append(y)
    if not xs:
        return np.array([np.nan]), np.array([np.nan])
    return np.concatenate(xs), np.concatenate(ys)


def _fill(mask: np.ndarray, name: str, color: str, opacity: float, xaxis: str, yaxis: str) -> dict:
    """One structure as a one-colour Heatmap over its bounding box (NaN, i.e. transparent, elsewhere)."""
    box = bounding_box(mask)
    z = np.where(mask[box].T, np.float32(1.0), np.float32(np.nan))  # (rows q, columns p)
    return dict(type="heatmap", z=z, x0=box[0].start, dx=1, y0=box[1].start, dy=1,
                colorscale=[[0.0, color], [1.0, color]], zmin=0.0, zmax=1.0, showscale=False, opacity=opacity,
                hoverinfo="skip", name=name, legendgroup=name, showlegend=False, xaxis=xaxis, yaxis=yaxis)


def _domains(n: int, gap: float) -> list[tuple[float, float]]:
    """``n`` equal intervals of [0, 1], in increasing order, separated by ``gap`` (a fraction of the figure)."""
    step = (1.0 - gap * (n - 1)) / n
    return [(k * (step + gap), k * (step + gap) + step) for k in range(n)]


def compare_figure(
    image2d: np.ndarray,
    truth2d: np.ndarray | None,
    predictions: Mapping[str, np.ndarray | None],
    *,
    spacing2d: tuple[float, float],
    names: Mapping[int, str],
    opacity: float = 0.45,
    window: tuple[float, float] = (0.0, 1.0),
    truth_color: str = TRUTH_COLOR,
    title: str | None = None,
    axis: int = 2,
    index: int = 0,
    columns: int = 2,
    panel_height: int = 420,
) -> go.Figure:
    """One panel per method: the slice, the method's prediction filled per structure, the truth outlined.

    Args:
        image2d: (n_p, n_q) intensities from :func:`~spar_core.figures.slices.extract_slice` (``window`` is in
            the same units).
        truth2d: (n_p, n_q) integer ground-truth labels, or None (no outline).
        predictions: panel title -> (n_p, n_q) predicted labels on the image's grid, in panel order (row by
            row); None draws the image alone with a "no prediction" note, e.g. for a method not yet run.
        spacing2d: in-plane pixel size (s_p, s_q) in mm; sets the aspect ratio.
        names: label value -> structure name; value 0 (background) is ignored. Structure ``s`` (0-based, in
            value order) gets colour ``s``, with one legend entry that toggles it in every panel.
        opacity: fill opacity of the predictions, in [0, 1].
        window: (lo, hi) intensity mapped to black and white.
        truth_color: colour of the ground-truth outline.
        title: figure title.
        axis, index: where the slice lies in the volume, for the (i, j, k) position on hover.
        columns: panels per row (2 gives the paper's 2×2 grid for the four methods).
        panel_height: height of one row of panels in pixels.

    Returns:
        A figure with, per panel k (axes ``x``/``y`` for the first, ``x{k+1}``/``y{k+1}`` after): the image
        Heatmap (``name`` "image"), one fill Heatmap per structure present in the prediction (``name`` the
        structure), and the truth outline Scatter (``name`` "truth (outline)"). Then one legend-proxy Scatter per
        structure. Panel titles are layout annotations, in panel order.

    Raises:
        SparError: no panel, image not 2D, a truth or prediction grid different from the image's,
            non-positive spacing, opacity outside [0, 1], an empty window or ``columns`` < 1.
    """
    image2d = np.asarray(image2d)
    if not predictions:
        raise SparError("compare_figure: predictions is empty; expected at least one panel")
    if image2d.ndim != 2 or image2d.size == 0:
        raise SparError(f"compare_figure: image2d has shape {image2d.shape}; expected a non-empty 2D array")
    grids = {"truth2d": truth2d, **{f"predictions[{k!r}]": v for k, v in predictions.items()}}
    for what, grid in grids.items():
        if grid is not None and np.shape(grid) != image2d.shape:
            raise SparError(f"compare_figure: {what} has shape {np.shape(grid)}; expected {image2d.shape} "
                            "(the image's)")
    s_p, s_q = check_spacing(spacing2d, "compare_figure: spacing2d", ndim=2)
    if not 0.0 <= opacity <= 1.0:
        raise SparError(f"compare_figure: opacity={opacity}; expected a value in [0, 1]")
    lo, hi = (float(w) for w in window)
    if not hi > lo:
        raise SparError(f"compare_figure: window={tuple(window)}; expected (lo, hi) with lo < hi")
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise SparError(f"compare_figure: columns={columns!r}; expected an integer >= 1")

    structures = sorted((int(v), str(n)) for v, n in names.items() if int(v) != 0)
    colors = structure_colors(len(structures))
    outline = None if truth2d is None else _truth_outline(np.asarray(truth2d), [v for v, _ in structures])
    hovertemplate = _position_template(axis, int(index)) + "<br>intensity %{z:.4g}<extra>%{fullData.name}</extra>"
    image_z = image2d.T  # (n_q, n_p): rows drawn upwards, columns rightwards, as in slice_figure

    n_panels = len(predictions)
    cols = min(columns, n_panels)
    rows = math.ceil(n_panels / cols)
    x_domains = _domains(cols, 0.02)
    y_domains = _domains(rows, 0.1)[::-1]  # first row at the top
    n_p, n_q = image2d.shape
    in_plane_axes(axis)
    axis_style = dict(constrain="domain", showgrid=False, zeroline=False, showticklabels=False)

    traces: list[dict] = []
    layout: dict = {}
    annotations = []
    for k, (panel, pred) in enumerate(predictions.items()):
        suffix = "" if k == 0 else str(k + 1)
        xa, ya = f"x{suffix}", f"y{suffix}"
        row, col = divmod(k, cols)
        traces.append(dict(type="heatmap", z=image_z, colorscale="gray", zmin=lo, zmax=hi, zauto=False,
                           showscale=False, hovertemplate=hovertemplate, name=panel, xaxis=xa, yaxis=ya))
        if pred is not None:
            pred = np.asarray(pred)
            for (value, name), color in zip(structures, colors):
                mask = pred == value
                if mask.any():
                    traces.append(_fill(mask, name, color, opacity, xa, ya))
        if outline is not None:
            traces.append(dict(type="scatter", x=outline[0], y=outline[1], mode="lines",
                               line=dict(color=truth_color, width=1.5), name="truth (outline)", legendgroup="truth",
                               showlegend=k == 0, hoverinfo="skip", xaxis=xa, yaxis=ya))
        x_axis = dict(domain=x_domains[col], anchor=ya, range=[-0.5, n_p - 0.5], **axis_style)
        y_axis = dict(domain=y_domains[row], anchor=xa, range=[-0.5, n_q - 0.5], **axis_style)
        if k == 0:
            y_axis.update(scaleanchor="x", scaleratio=s_q / s_p)
        else:
            x_axis["matches"] = "x"
            y_axis["matches"] = "y"
        layout[f"xaxis{suffix}"] = x_axis
        layout[f"yaxis{suffix}"] = y_axis
        annotations.append(dict(text=f"<b>{panel}</b>" if pred is not None else f"<b>{panel}</b> (no prediction)",
                                x=sum(x_domains[col]) / 2, y=y_domains[row][1], xref="paper", yref="paper",
                                xanchor="center", yanchor="bottom", yshift=4, showarrow=False, font=dict(size=14)))
    for (_, name), color in zip(structures, colors):
        traces.append(dict(type="scatter", x=[None], y=[None], mode="markers", name=name, legendgroup=name,
                           marker=dict(symbol="square", size=12, color=color), hoverinfo="skip"))

    layout.update(
        title=title,
        height=rows * panel_height + (40 if title else 10),
        margin=dict(l=10, r=10, t=60 if title else 30, b=10),
        plot_bgcolor="black",
        # Dark like the plot area, so the white truth line shows in the legend too.
        legend=dict(title=dict(text="structures", font=dict(color="#FFFFFF")), itemsizing="constant", bgcolor="#262626",
                    font=dict(color="#FFFFFF")),
        hovermode="closest",
        uirevision=f"{n_p}x{n_q}x{n_panels}",
        annotations=annotations,
    )
    return go.Figure(data=traces, layout=layout)
