"""Connected components of a structure, one coding for all: counting them, keeping the largest (or the k
largest), and how many separate parts a structure has, read from the training labels — one for a vertebra, two
for a label that holds the left and the right bone (many datasets label bilateral anatomy under one name).
Keeping only the largest component of such a structure deletes one side; post-processing keeps as many as the
training labels show instead.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
from scipy import ndimage

from spar_core.data.checks import check_3d
from spar_core.data.voxels import bounding_box
from spar_core.postprocessing.settings import DEFAULT_CONNECTIVITY, check_connectivity

PART_FRACTION = 0.1  # a component holding less of the structure than this is an island, not a part


def connected_components(mask: np.ndarray, connectivity: int = DEFAULT_CONNECTIVITY) -> tuple[np.ndarray, int]:
    """The 3D connected components of a binary mask (1..n, 0 outside) and their number; ``connectivity`` 1
    (faces, 6-neighbourhood), 2 (+edges, 18) or 3 (+corners, 26)."""
    structure = ndimage.generate_binary_structure(3, check_connectivity(connectivity))
    return ndimage.label(np.asarray(mask, dtype=bool), structure=structure)


def largest_of(components: np.ndarray, k: int = 1) -> np.ndarray:
    """The voxels of the ``k`` largest of labelled ``components`` (bool); ties keep the first in C order."""
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    return np.isin(components, np.argsort(-sizes, kind="stable")[:k]) & (components > 0)


def count_components(mask: np.ndarray, connectivity: int = DEFAULT_CONNECTIVITY) -> int:
    """Number of 3D connected components of a binary mask (0 for an empty mask); scores outliers later."""
    mask, connectivity = check_3d(mask, "mask"), check_connectivity(connectivity)
    box = bounding_box(mask)
    return 0 if box is None else connected_components(mask[box], connectivity)[1]


def largest_component(mask: np.ndarray, connectivity: int = DEFAULT_CONNECTIVITY) -> np.ndarray:
    """The largest 3D connected component of a binary mask (bool, same shape); ties keep the first in C order.

    An empty mask gives an empty mask.
    """
    mask, connectivity = check_3d(mask, "mask"), check_connectivity(connectivity)
    out = np.zeros(mask.shape, dtype=bool)
    box = bounding_box(mask)
    if box is not None:
        components, _ = connected_components(mask[box], connectivity)
        out[box] = largest_of(components)
    return out


def parts(mask: np.ndarray, connectivity: int = DEFAULT_CONNECTIVITY) -> int:
    """Connected components of a binary 3D mask that hold at least ``PART_FRACTION`` of its voxels."""
    components, n = connected_components(mask, connectivity)
    if n == 0:
        return 0
    sizes = np.bincount(components.ravel())[1:]
    return int(np.count_nonzero(sizes >= PART_FRACTION * sizes.sum()))


def structure_parts(truths: Iterable[np.ndarray], labels: Iterable[int], connectivity: int = DEFAULT_CONNECTIVITY
                    ) -> dict[int, int]:
    """Label → its number of parts, for the labels with more than one: the median over the exams that hold the
    label (rounded down), so that an exam with a stray annotation island does not decide."""
    counts: dict[int, list[int]] = {int(v): [] for v in labels}
    for truth in truths:
        truth = check_3d(truth, "label volume")
        for value in counts:
            n = parts(truth == value, connectivity)
            if n:
                counts[value].append(n)
    return {v: int(np.floor(np.median(c))) for v, c in counts.items() if c and np.floor(np.median(c)) > 1}
