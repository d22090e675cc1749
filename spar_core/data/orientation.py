"""Voxel axes brought into another volume's order: the same anatomy stored with permuted or flipped axes
(another scanner's or exporter's array order) moved onto a reference grid through the affines alone.

Only permutations and flips are applied (nibabel's orientation tools): no voxel is interpolated, so a label
map stays a label map and the move can be undone exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import nibabel
from nibabel.orientations import (aff2axcodes, apply_orientation, axcodes2ornt, inv_ornt_aff, io_orientation,
                                  ornt_transform)

from spar_core.data.dataset import Dataset
from spar_core.data.nifti import Volume, resolve_slice_axis
from spar_core.errors import SparError


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


def axis_codes(affine: np.ndarray) -> str:
    """The nibabel axis codes of an affine, e.g. ``"RAS"`` or ``"IPR"``: where each voxel axis points."""
    return "".join(aff2axcodes(affine))


def dataset_orientation(dataset: Dataset) -> str | None:
    """The axis codes most of the dataset's images have (headers only are read); None when none is readable."""
    codes: dict[str, int] = {}
    for case in dataset.cases:
        try:
            code = axis_codes(nibabel.load(case.image_path).affine)
        except (OSError, ValueError, nibabel.filebasedimages.ImageFileError):
            continue
        codes[code] = codes.get(code, 0) + 1
    return max(codes, key=codes.get) if codes else None


@dataclass(frozen=True)
class Reorientation:
    """How an exam's voxel axes were moved to the training data's (``forward``) and how to move back."""

    forward: np.ndarray  # (3, 2) nibabel orientation transform, exam -> training
    backward: np.ndarray  # training -> exam
    shape: tuple[int, int, int]  # the exam's shape

    @property
    def identity(self) -> bool:
        return bool(np.array_equal(self.forward, [[0, 1], [1, 1], [2, 1]]))

    def undo(self, array: np.ndarray) -> np.ndarray:
        """An array on the moved grid (its first three axes) back on the exam's grid."""
        return np.ascontiguousarray(apply_orientation(array, self.backward))


def orient_to(volume: Volume, codes: str, declared_axis: int | None = None) -> tuple[Volume, Reorientation]:
    """``volume`` with its axes permuted and flipped to point as ``codes`` (the training data's), its affine,
    spacing and slice axis following; and the move, to put predictions back on the exam's grid.

    Raises:
        SparError: ``codes`` are not three distinct axis codes, or the exam's affine relates no axis to
            space (a degenerate matrix).
    """
    try:
        target = axcodes2ornt(tuple(codes))
    except ValueError as err:
        raise SparError(f"orientation {codes!r}: expected three axis codes such as RAS ({err})") from None
    affine = np.asarray(volume.affine, dtype=float)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise SparError(f"{volume.case_id}: its affine relates no voxel axis to space; expected an invertible "
                        "voxel-to-world matrix to orient it as the training exams")
    own = io_orientation(affine)
    move = Reorientation(ornt_transform(own, target), ornt_transform(target, own), tuple(volume.image.shape))
    if move.identity:
        return volume, move
    image = np.ascontiguousarray(apply_orientation(volume.image, move.forward))
    moved_affine = affine @ inv_ornt_aff(move.forward, volume.image.shape)
    spacing = tuple(float(v) for v in np.linalg.norm(moved_affine[:3, :3], axis=0))
    moved = replace(volume, image=image, label=None if volume.label is None else
                    np.ascontiguousarray(apply_orientation(volume.label, move.forward)),
                    spacing=spacing, affine=moved_affine, slice_axis=resolve_slice_axis(spacing, declared_axis))
    return moved, move
