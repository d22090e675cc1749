"""3D figures of predicted bones: each bone's surface mesh, coloured by its distance to the true surface.

3D coordinates are the stored voxel grid scaled by the spacing, in mm: voxel (i, j, k) has its centre at
(i·s_i, j·s_j, k·s_k), as on the slice figures (no reorientation by the affine).

Distance to the true surface follows :mod:`spar_core.scoring.metrics` (MedPy's definition): the true surface is
the set of the truth's border voxels (:func:`spar_core.scoring.metrics.surface_mask`), and a distance is measured
to their centres. The predicted surface is the marching-cubes iso-surface between voxel centres, half a voxel
outside the predicted border voxels, so a perfect prediction reads about half a voxel (0.3 mm in-plane, up to 1.5 mm
across 3 mm slices), not 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from scipy import ndimage
from skimage.measure import block_reduce, marching_cubes

from spar_core.data.checks import check_spacing
from spar_core.errors import SparError
from spar_core.data.voxels import bounding_box
from spar_core.scoring.surface import surface_mask
from spar_core.figures.slices import structure_colors

MAX_MESH_VOXELS = 150_000  # per bone: meshes of a few ten thousand triangles, light in a browser
DISTANCE_SCALE = "Viridis"


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
    box = bounding_box(mask)
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
    box = bounding_box(border)
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
