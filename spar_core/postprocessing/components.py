"""How many separate parts a structure has, read from the training labels: one for a vertebra, two for a label
that holds the left and the right bone (many datasets label bilateral anatomy under one name). Keeping only
the largest component of such a structure deletes one side; post-processing keeps as many as the training
labels show instead.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
from scipy import ndimage

from spar_core.data.checks import check_3d

PART_FRACTION = 0.1  # a component holding less of the structure than this is an island, not a part


def parts(mask: np.ndarray, connectivity: int = 3) -> int:
    """Connected components of a binary 3D mask that hold at least ``PART_FRACTION`` of its voxels."""
    components, n = ndimage.label(np.asarray(mask, dtype=bool), ndimage.generate_binary_structure(3, connectivity))
    if n == 0:
        return 0
    sizes = np.bincount(components.ravel())[1:]
    return int(np.count_nonzero(sizes >= PART_FRACTION * sizes.sum()))


def structure_parts(truths: Iterable[np.ndarray], labels: Iterable[int], connectivity: int = 3) -> dict[int, int]:
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
