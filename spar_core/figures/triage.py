"""Figures of outlier triage: which exams to open first and why, where each predicted bone lies off the true
surface in 3D, an exam's worst slices, and where its shape codes fall in the latent map.

Inputs are what ``spar triage`` and ``spar embed`` write (``RUN/triage/triage_<method>.csv``,
``RUN/embeddings/fold_<k>.csv``) and label volumes on the exam's voxel grid.

3D coordinates are the stored voxel grid scaled by the spacing, in mm: voxel (i, j, k) has its centre at
(i·s_i, j·s_j, k·s_k), as on the slice figures (no reorientation by the affine).

Distance to the true surface follows :mod:`spar_core.evaluation.metrics` (MedPy's definition): the true surface is the
set of the truth's border voxels (:func:`spar_core.evaluation.metrics.surface_mask`), and a distance is measured to their
centres. The predicted surface is the marching-cubes iso-surface between voxel centres, half a voxel outside the
predicted border voxels, so a perfect prediction reads about half a voxel (0.3 mm in-plane, up to 1.5 mm across
3 mm slices), not 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy import ndimage
from skimage.measure import block_reduce, marching_cubes

from spar_core.data.checks import check_spacing
from spar_core.errors import SparError
from spar_core.figures.compare import compare_figure
from spar_core.figures.slices import extract_slice, in_plane_spacing, structure_colors
from spar_core.evaluation.metrics import _box, surface_mask

# The scores of spar_core.triage.scores.SCORES, named here without importing torch.
SCORES: tuple[str, ...] = ("plausibility", "recon_error", "knn_distance", "components", "volume_z")
# Paul Tol's "muted" scheme (colour-blind friendly), one fixed colour per score.
SCORE_COLORS: dict[str, str] = {"plausibility": "#332288", "recon_error": "#88CCEE", "knn_distance": "#44AA99",
                                "components": "#DDCC77", "volume_z": "#CC6677"}
DEGRADED_COLOR = "#D55E00"
MAX_MESH_VOXELS = 150_000  # per bone: meshes of a few ten thousand triangles, light in a browser
DISTANCE_SCALE = "Viridis"


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
        table: a triage table (:func:`spar_core.triage.ranking.triage_run` or its csv): case, rank, triage_score, the
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
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0.0),
        hovermode="closest",
    )
    return go.Figure(data=traces, layout=layout)


# ---------------------------------------------------------------------------------------------- 3D surfaces


def downsample_factors(shape: Sequence[int], spacing: Sequence[float], max_voxels: int) -> tuple[int, int, int]:
    """Integer block sizes per axis so that ``shape`` reduced by them holds at most ``max_voxels`` voxels.

    The axis with the finest effective voxel (spacing × factor) is coarsened first, so thick slices are kept and
    the reduced voxels tend to cubes.
    """
    size = np.asarray(shape, dtype=np.int64)
    s = np.asarray(check_spacing(spacing))
    factors = np.ones(3, dtype=np.int64)
    while np.prod(-(-size // factors)) > max_voxels:
        open_axes = np.flatnonzero(factors < size)
        axis = open_axes[np.argmin((s * factors)[open_axes])]
        factors[axis] += 1
    return int(factors[0]), int(factors[1]), int(factors[2])


def bone_mesh(mask: np.ndarray, spacing: Sequence[float], max_voxels: int = MAX_MESH_VOXELS
              ) -> tuple[np.ndarray, np.ndarray]:
    """Marching-cubes surface of a 3D binary mask, in mm (voxel centre (i, j, k) at (i·s_i, j·s_j, k·s_k)).

    The mask is cropped to its bounding box, averaged over blocks (:func:`downsample_factors`) when the box
    holds more than ``max_voxels`` voxels, and padded with background so that the surface is closed.

    Returns:
        (vertices (n, 3) float mm, faces (m, 3) int); both empty for an empty mask.
    """
    mask = np.asarray(mask, dtype=bool)
    s = np.asarray(check_spacing(spacing))
    box = _box(mask)
    if box is None:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    crop = mask[box].astype(np.float32)
    factors = np.asarray(downsample_factors(crop.shape, s, max_voxels))
    if (factors > 1).any():
        crop = block_reduce(crop, tuple(int(f) for f in factors), np.mean, cval=0.0)
    verts, faces, _, _ = marching_cubes(np.pad(crop, 1), level=0.5, allow_degenerate=False)
    start = np.asarray([b.start for b in box], dtype=np.float64)
    # Padded coarse index c → the centre of its block of fine voxels: start + (c − 1)·f + (f − 1)/2.
    index = start + (verts - 1.0) * factors + (factors - 1) / 2.0
    return index * s, faces.astype(np.int64)


def distance_to_surface(points_mm: np.ndarray, truth: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Distance in mm from each point to the true surface (the centres of ``truth``'s border voxels).

    The exact Euclidean distance map of the border (``distance_transform_edt`` with ``sampling=spacing``, over
    the box holding the border and the points) is sampled at the points by trilinear interpolation: exact at
    voxel centres, within a voxel's diagonal in between.

    Args:
        points_mm: (n, 3) positions in mm, voxel centre (i, j, k) at (i·s_i, j·s_j, k·s_k).
        truth: (X, Y, Z) reference mask.
        spacing: voxel size in mm along X, Y, Z.

    Returns:
        (n,) distances in mm; all nan when the truth is empty (no surface to reach).
    """
    points = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
    truth = np.asarray(truth, dtype=bool)
    if truth.ndim != 3:
        raise SparError(f"distance_to_surface: truth has shape {truth.shape}; expected a 3D mask")
    s = np.asarray(check_spacing(spacing))
    border = surface_mask(truth)
    box = _box(border)
    if box is None:
        return np.full(len(points), np.nan)
    if len(points) == 0:
        return np.zeros(0)
    index = points / s
    upper = np.asarray(truth.shape) - 1
    lo = np.clip(np.minimum([b.start for b in box], np.floor(index.min(axis=0))), 0, upper).astype(int)
    hi = np.clip(np.maximum([b.stop - 1 for b in box], np.ceil(index.max(axis=0))), 0, upper).astype(int) + 1
    crop = tuple(slice(a, b) for a, b in zip(lo, hi))
    field = ndimage.distance_transform_edt(~border[crop], sampling=s)
    return ndimage.map_coordinates(field, (index - lo).T, order=1, mode="nearest")


@dataclass(frozen=True)
class BoneSurface:
    """One predicted bone as a mesh in mm, with each vertex's distance to the bone's true surface."""

    name: str
    value: int
    vertices: np.ndarray  # (n, 3) mm
    faces: np.ndarray  # (m, 3) vertex indices
    distance: np.ndarray | None  # (n,) mm; None without truth, nan where the truth lacks the bone


def bone_surfaces(labels: np.ndarray, spacing: Sequence[float], names: Mapping[int, str],
                  truth: np.ndarray | None = None, *, structures: Sequence[int] | None = None,
                  max_voxels: int = MAX_MESH_VOXELS) -> list[BoneSurface]:
    """The meshes of :func:`surface_mesh_figure`, one per bone present in ``labels``, in label order."""
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise SparError(f"bone_surfaces: labels have shape {labels.shape}; expected a 3D label volume")
    if truth is not None and np.shape(truth) != labels.shape:
        raise SparError(f"bone_surfaces: truth has shape {np.shape(truth)}; expected {labels.shape} (the prediction's)")
    wanted = sorted(int(v) for v in names if int(v) != 0)
    if structures is not None:
        unknown = sorted(set(int(v) for v in structures) - set(wanted))
        if unknown:
            raise SparError(f"bone_surfaces: structures {unknown} are not in names {dict(names)}")
        wanted = [v for v in wanted if v in set(int(x) for x in structures)]
    out = []
    for value in wanted:
        verts, faces = bone_mesh(labels == value, spacing, max_voxels)
        if len(faces) == 0:
            continue
        distance = None if truth is None else distance_to_surface(verts, np.asarray(truth) == value, spacing)
        out.append(BoneSurface(str(names[value]), value, verts, faces, distance))
    return out


def surface_mesh_figure(labels: np.ndarray, spacing: Sequence[float], names: Mapping[int, str],
                        truth: np.ndarray | None = None, *, structures: Sequence[int] | None = None,
                        max_voxels: int = MAX_MESH_VOXELS, cmax: float | None = None, title: str | None = None,
                        height: int = 640) -> go.Figure:
    """The predicted bones in 3D, each vertex coloured by its distance (mm) to the true surface.

    Args:
        labels: (X, Y, Z) predicted label volume.
        spacing: voxel size in mm along X, Y, Z.
        names: label value → bone name; value 0 is ignored.
        truth: (X, Y, Z) reference labels, or None: the bones are then coloured by bone, and the title says so.
        structures: label values to draw (default: every bone of ``names``); bones absent from the
            prediction are left out.
        max_voxels: per-bone voxel budget of the meshing (:func:`bone_mesh`).
        cmax: top of the shared colour scale in mm (default: the largest distance shown).
        title: figure title (default: what the colours mean).

    Returns:
        One ``go.Mesh3d`` per drawn bone (``name`` the bone), vertices in mm, ``intensity`` the distances on
        one shared colour axis (``layout.coloraxis``, colour bar in mm) when there is a truth, and the bone's
        colour (:func:`~spar_core.figures.slices.structure_colors`) otherwise; ``scene.aspectmode`` "data".

    Raises:
        SparError: shapes differ, not 3D, bad spacing, or an unknown structure.
    """
    surfaces = bone_surfaces(labels, spacing, names, truth, structures=structures, max_voxels=max_voxels)
    order = sorted(int(v) for v in names if int(v) != 0)
    colors = dict(zip(order, structure_colors(len(order))))
    has_truth = truth is not None
    finite = [d[np.isfinite(d)] for d in (b.distance for b in surfaces) if d is not None]
    top = cmax if cmax is not None else max((float(d.max()) for d in finite if d.size), default=1.0)
    traces = []
    for bone in surfaces:
        x, y, z = bone.vertices.T
        i, j, k = bone.faces.T
        common = dict(x=x, y=y, z=z, i=i, j=j, k=k, name=bone.name, showlegend=True, flatshading=False,
                      lighting=dict(ambient=0.5, diffuse=0.8, specular=0.2))
        if has_truth and bone.distance is not None and np.isfinite(bone.distance).any():
            traces.append(go.Mesh3d(**common, intensity=bone.distance, coloraxis="coloraxis",
                                    hovertemplate=f"{bone.name}<br>%{{intensity:.2f}} mm from the true surface"
                                                  "<extra></extra>"))
        else:
            label = bone.name if not has_truth else f"{bone.name} (not in the truth)"
            traces.append(go.Mesh3d(**{**common, "name": label}, color=colors[bone.value],
                                    hovertemplate=f"{label}<extra></extra>"))
    if title is None:
        title = ("Predicted bones coloured by distance to the true surface (mm)" if has_truth
                 else "Predicted bones, coloured by bone (no ground truth: no distance to show)")
    axis = dict(showbackground=False)
    layout = go.Layout(
        title=title, height=height, margin=dict(l=0, r=0, t=50, b=0),
        scene=dict(aspectmode="data", xaxis=dict(title=dict(text="i (mm)"), **axis),
                   yaxis=dict(title=dict(text="j (mm)"), **axis), zaxis=dict(title=dict(text="k (mm)"), **axis)),
        legend=dict(title=dict(text="bones"), itemsizing="constant"),
    )
    if has_truth:
        layout.coloraxis = dict(colorscale=DISTANCE_SCALE, cmin=0.0, cmax=max(top, 1e-6),
                                colorbar=dict(title=dict(text="distance to true surface (mm)", side="right")))
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
