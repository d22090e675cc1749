"""What voxels measure, in one place: a voxel's volume in mL, a mask's bounding box, and a label volume as the
non-negative integer array that scipy's labelling functions take."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage

from spar_core.data.checks import check_3d
from spar_core.errors import SparError

Box = tuple[slice, slice, slice]  # a box of a 3D volume, as ``volume[box]`` takes it


def voxel_ml(spacing: Sequence[float]) -> float:
    """The volume of one voxel in mL, from its sizes in mm (1 mL = 1,000 mm³)."""
    return float(np.prod(np.asarray(spacing, dtype=np.float64))) / 1000.0


def label_array(labels: np.ndarray, what: str = "labels") -> np.ndarray:
    """``labels`` (3D) with a non-negative integer dtype, as ``ndimage.find_objects`` and ``label`` need: a view
    of a bool or integer volume, a cast of a float one whose values are whole.

    Raises:
        SparError: not 3D, fractional or negative values, or a non-numeric dtype (naming ``what``).
    """
    labels = check_3d(labels, what)
    if labels.dtype == bool:
        return labels.view(np.uint8)
    if labels.dtype.kind == "f":
        if not np.array_equal(labels, np.round(labels)):
            raise SparError(f"{what}: expected integer label values, got fractional values")
        labels = labels.astype(np.int32)
    elif labels.dtype.kind not in "iu":
        raise SparError(f"{what}: expected an integer label volume, got dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise SparError(f"{what}: expected label values ≥ 0, got {labels.min()}")
    return labels


def bounding_box(mask: np.ndarray) -> Box | None:
    """The smallest box holding every nonzero voxel of a mask (3D, or a 2D slice: then two slices), or None when
    the mask is empty."""
    return ndimage.find_objects(np.asarray(mask, dtype=bool).view(np.uint8), max_label=1)[0]


def label_boxes(labels: np.ndarray, top: int) -> list[Box | None]:
    """The bounding box of every label value 1..``top`` (index value - 1; None where absent), in one pass."""
    return ndimage.find_objects(label_array(labels), max_label=top)


def union_box(*boxes: Box | None) -> Box | None:
    """The smallest box holding every given box (None ones left out); None when none is given."""
    given = [b for b in boxes if b is not None]
    if not given:
        return None
    return tuple(slice(min(b[i].start for b in given), max(b[i].stop for b in given))  # type: ignore[return-value]
                 for i in range(3))


def within(inner: Box, outer: Box) -> Box:
    """``inner``, a box inside the crop ``outer``, in the coordinates of the whole volume."""
    return tuple(slice(o.start + i.start, o.start + i.stop) for i, o in zip(inner, outer))  # type: ignore[return-value]
