"""Twin exams listed under several case ids: found by their voxels, so that a split keeps them on one side (a
twin in training and its copy in test would leak the answer into the score).

Two kinds are found. *Identical* exams have the same image and label arrays (shape, type and every voxel;
headers and file names do not count). *Similar* exams have images whose fingerprint — the intensities
normalized to their 1st–99th percentiles and averaged over a 16 × 16 × 16 grid of blocks — correlate at 0.99
or more: the same exam re-saved with noise, rescaled, cropped by a few voxels, resampled, or relabelled. On the
40 MyoSegmenTUM spine exams distinct subjects reach at most 0.92 and the two identical pairs 1.0. Both kinds
are grouped by the splits. Volumes are read one at a time, so memory stays that of one exam.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from spar_core.data.dataset import Dataset
from spar_core.data.nifti import read_nifti
from spar_core.data.splits import merge_groups

SIMILAR_CORRELATION = 0.99
FINGERPRINT_SIDE = 16


def digest(array: np.ndarray) -> str:
    """SHA-256 of an array's type, shape and voxels."""
    data = np.ascontiguousarray(array)
    return hashlib.sha256(f"{data.dtype.str}{data.shape}".encode() + data.tobytes()).hexdigest()


def fingerprint(image: np.ndarray, side: int = FINGERPRINT_SIDE) -> np.ndarray:
    """(side³,) block means of the percentile-normalized image, standardized (mean 0, std 1)."""
    a = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(a, [1, 99])
    a = np.clip((a - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0)
    edges = [np.linspace(0, n, min(side, n) + 1).astype(int) for n in a.shape]
    for axis, e in enumerate(edges):
        a = np.add.reduceat(a, e[:-1], axis=axis) / np.expand_dims(np.diff(e), tuple(i for i in range(3) if i != axis))
    if a.shape != (side,) * 3:  # an axis shorter than ``side`` voxels: stretch it so every print has one length
        a = a[np.ix_(*(np.linspace(0, n - 1, side).round().astype(int) for n in a.shape))]
    flat = a.ravel()
    return (flat - flat.mean()) / (flat.std() + 1e-9)


@dataclass(frozen=True)
class Twins:
    """Identical groups (sorted ids) and similar pairs (id, id, correlation) that are not identical."""

    identical: tuple[tuple[str, ...], ...] = ()
    similar: tuple[tuple[str, str, float], ...] = field(default=())

    def __bool__(self) -> bool:
        return bool(self.identical or self.similar)

    def groups(self) -> dict[str, str]:
        """The ``groups`` mapping the splits take (case id -> group id): twins of either kind, transitively, map
        to their group's smallest id; cases without a twin are left out."""
        pairs = [(g[0], other) for g in self.identical for other in g[1:]] + [(a, b) for a, b, _ in self.similar]
        return merge_groups(*({a: a, b: a} for a, b in pairs))

    def lines(self) -> list[str]:
        """What ``spar check`` and ``spar crossval`` print, one line per group or pair."""
        return ([f"identical exams (same voxels and labels): {' = '.join(g)}" for g in self.identical]
                + [f"near-identical images (fingerprint correlation {r:.3f}): {a} ~ {b}" for a, b, r in self.similar])


class TwinFinder:
    """Collects each exam's digests and fingerprint as it is read once, then finds the twins."""

    def __init__(self) -> None:
        self._ids: list[str] = []
        self._image: list[str] = []
        self._label: dict[str, str | Path | None] = {}
        self._prints: list[np.ndarray] = []

    def add(self, case_id: str, image: np.ndarray, label: np.ndarray | Path | None = None) -> None:
        """Record one exam; a label given as a path is read only if another exam has the same image."""
        self._ids.append(case_id)
        self._image.append(digest(image))
        self._label[case_id] = digest(label) if isinstance(label, np.ndarray) else label
        self._prints.append(fingerprint(image))

    def _label_digest(self, case_id: str) -> str:
        label = self._label[case_id]
        if isinstance(label, Path):
            label = digest(np.asanyarray(read_nifti(label).dataobj))
        return label or ""

    def twins(self) -> Twins:
        by_image: dict[str, list[str]] = defaultdict(list)
        for case_id, key in zip(self._ids, self._image):
            by_image[key].append(case_id)
        identical = []
        for ids in (v for v in by_image.values() if len(v) > 1):
            by_label: dict[str, list[str]] = defaultdict(list)
            for case_id in ids:
                by_label[self._label_digest(case_id)].append(case_id)
            identical += [tuple(sorted(g)) for g in by_label.values() if len(g) > 1]
        same = {frozenset((a, b)) for g in identical for a in g for b in g if a != b}
        similar = []
        if len(self._prints) > 1:
            prints = np.stack(self._prints)
            corr = prints @ prints.T / prints.shape[1]
            for i, j in zip(*np.nonzero(np.triu(corr >= SIMILAR_CORRELATION, k=1))):
                a, b = sorted((self._ids[i], self._ids[j]))
                if frozenset((a, b)) not in same:
                    similar.append((a, b, round(float(min(corr[i, j], 1.0)), 4)))
        return Twins(tuple(sorted(identical)), tuple(sorted(similar)))


def find_twins(dataset: Dataset, progress: Callable[[int, int], None] | None = None) -> Twins:
    """Identical and similar exams of ``dataset`` (one read of each image; labels read only for exams whose
    images are identical).

    Raises:
        SparError: an unreadable image or label file (named).
    """
    finder = TwinFinder()
    for done, case in enumerate(dataset.cases, start=1):
        finder.add(case.case_id, np.asanyarray(read_nifti(case.image_path).dataobj), case.label_path)
        if progress is not None:
            progress(done, len(dataset.cases))
    return finder.twins()
