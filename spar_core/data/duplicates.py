"""Identical exams listed under several case ids: found by the content of their voxels, so that a split keeps
them on one side (a twin in training and its copy in test would leak the answer into the score).

Two cases are identical when their image and label arrays (shape, type and every voxel) are; headers and file
names do not count. Volumes are read one at a time, so memory stays that of one exam.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Callable

import numpy as np

from spar_core.data.dataset import Case, Dataset, read_nifti


def _digest(array: np.ndarray) -> bytes:
    data = np.ascontiguousarray(array)
    return hashlib.sha256(f"{data.dtype.str}{data.shape}".encode() + data.tobytes()).digest()


def exam_fingerprint(case: Case) -> str:
    """A hash of the case's image voxels and, when labeled, its label voxels."""
    parts = [_digest(np.asanyarray(read_nifti(case.image_path).dataobj))]
    if case.label_path is not None:
        parts.append(_digest(np.asanyarray(read_nifti(case.label_path).dataobj)))
    return hashlib.sha256(b"".join(parts)).hexdigest()


def identical_exams(dataset: Dataset, progress: Callable[[int, int], None] | None = None) -> list[tuple[str, ...]]:
    """Groups of two or more case ids whose exams are identical, each sorted, in order of their first id.

    Raises:
        SparError: an unreadable image or label file (named).
    """
    by_hash: dict[str, list[str]] = defaultdict(list)
    for done, case in enumerate(dataset.cases, start=1):
        by_hash[exam_fingerprint(case)].append(case.case_id)
        if progress is not None:
            progress(done, len(dataset.cases))
    return sorted(tuple(sorted(ids)) for ids in by_hash.values() if len(ids) > 1)


def twin_groups(twins: list[tuple[str, ...]]) -> dict[str, str]:
    """The ``groups`` mapping the splits take (case id -> patient id): each twin maps to its group's first id."""
    return {case: group[0] for group in twins for case in group}
