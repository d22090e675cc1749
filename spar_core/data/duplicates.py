"""Identical exams listed under several case ids: found by the content of their voxels, so that a split keeps
them on one side (a twin in training and its copy in test would leak the answer into the score).

Two cases are identical when their image and label arrays (shape, type and every voxel) are; headers and file
names do not count. Volumes are read one at a time, so memory stays that of one exam.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np

from spar_core.data.dataset import Case, Dataset, read_nifti


def _digest(array: np.ndarray) -> bytes:
    data = np.ascontiguousarray(array)
    return hashlib.sha256(f"{data.dtype.str}{data.shape}".encode() + data.tobytes()).digest()


def _voxels_digest(path: Path) -> str:
    return _digest(np.asanyarray(read_nifti(path).dataobj)).hex()


def identical_exams(dataset: Dataset, progress: Callable[[int, int], None] | None = None) -> list[tuple[str, ...]]:
    """Groups of two or more case ids whose exams are identical, each sorted, in order of their first id.

    Images are compared first; labels are read only for cases whose images are identical, so a dataset
    without twins costs one read of each image.

    Raises:
        SparError: an unreadable image or label file (named).
    """
    by_image: dict[str, list[Case]] = defaultdict(list)
    for done, case in enumerate(dataset.cases, start=1):
        by_image[_voxels_digest(case.image_path)].append(case)
        if progress is not None:
            progress(done, len(dataset.cases))
    groups = []
    for cases in (c for c in by_image.values() if len(c) > 1):
        by_label: dict[str, list[str]] = defaultdict(list)
        for case in cases:
            key = "" if case.label_path is None else _voxels_digest(case.label_path)
            by_label[key].append(case.case_id)
        groups += [tuple(sorted(ids)) for ids in by_label.values() if len(ids) > 1]
    return sorted(groups)


def twin_groups(twins: list[tuple[str, ...]]) -> dict[str, str]:
    """The ``groups`` mapping the splits take (case id -> patient id): each twin maps to its group's first id."""
    return {case: group[0] for group in twins for case in group}
