"""An uncertainty map over its slice: the image in grey, the map (entropy or disagreement, nats) as a
translucent heat layer where it is above a floor, the prediction outlined, so a reader sees where the model
hesitated and whether that is on a structure's border or inside it."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import plotly.graph_objects as go

from spar_core.errors import SparError
from spar_core.figures.slices import slice_figure

# Below this fraction of the slice's largest value the heat layer is transparent (the image stays readable).
FLOOR = 0.05


def uncertainty_figure(image2d: np.ndarray, map2d: np.ndarray, label2d: np.ndarray | None, *,
                       spacing2d: tuple[float, float], names: Mapping[int, str], kind: str = "entropy",
                       vmax: float | None = None, opacity: float = 0.65, title: str | None = None, axis: int = 2,
                       index: int = 0, height: int = 560) -> go.Figure:
    """:func:`~spar_core.figures.slices.slice_figure` with the prediction outlined and ``map2d`` over it.

    ``vmax``: the top of the colour scale (default: the slice's maximum; pass the exam's to compare slices).
    Raises:
        SparError: a map not on the image's grid, or negative / non-finite values.
    """
    map2d = np.asarray(map2d, dtype=float)
    if map2d.shape != np.shape(image2d):
        raise SparError(f"uncertainty_figure: map2d has shape {map2d.shape}; expected {np.shape(image2d)}")
    if not np.all(np.isfinite(map2d)) or (map2d.size and map2d.min() < -1e-6):
        raise SparError("uncertainty_figure: map2d holds negative or non-finite values; expected nats ≥ 0")
    top = float(vmax if vmax is not None else map2d.max(initial=0.0)) or 1.0
    fig = slice_figure(image2d, label2d, spacing2d=spacing2d, names=names, mode="contour", opacity=0.9,
                       title=title, axis=axis, index=index, height=height)
    shown = np.where(map2d >= FLOOR * top, map2d, np.nan).T  # (rows q, columns p), as the image trace
    fig.add_trace(go.Heatmap(z=shown, colorscale="Inferno", zmin=0.0, zmax=top, opacity=opacity, name=kind,
                             colorbar={"title": {"text": f"{kind}<br>(nats)"}, "thickness": 12},
                             hovertemplate=f"{kind} %{{z:.3f}} nats<extra></extra>"))
    return fig
