"""Voxel axes brought into another volume's order: the same anatomy stored with permuted or flipped axes
(another scanner's or exporter's array order) moved onto a reference grid through the affines alone.

Only permutations and flips are applied (nibabel's orientation tools): no voxel is interpolated, so a label
map stays a label map and the move can be undone exactly.
"""

from __future__ import annotations

import numpy as np
from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation, ornt_transform


def orientation_transform(affine: np.ndarray, ref_affine: np.ndarray) -> np.ndarray:
    """The nibabel orientation transform ((3, 2): axis, flip) that takes voxel axes of ``affine`` to those of
    ``ref_affine`` (the nearest axis-aligned match for each)."""
    return ornt_transform(io_orientation(affine), io_orientation(ref_affine))


def reorient(array: np.ndarray, affine: np.ndarray, ref_affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``array`` (X, Y, Z) with its axes permuted and flipped into ``ref_affine``'s order, and its new affine
    (it describes the same voxels in space; compare it with ``ref_affine`` to see whether the grids agree)."""
    transform = orientation_transform(affine, ref_affine)
    moved = np.ascontiguousarray(apply_orientation(array, transform))
    return moved, np.asarray(affine, float) @ inv_ornt_aff(transform, array.shape)
