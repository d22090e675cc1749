"""``spar check``: every case of a dataset read and validated once, and what was found summarized.

The checks themselves are those of loading (:func:`spar_core.data.dataset.load_volume`, built on
:mod:`spar_core.data.checks`); this module runs them over the whole dataset and counts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from spar_core.data.checks import dims
from spar_core.data.patients import declared_patients
from spar_core.data.dataset import load_dataset, load_volume
from spar_core.data.duplicates import TwinFinder, Twins
from spar_core.data.orientation import axis_codes


@dataclass
class DatasetSummary:
    """What ``spar check`` found: one entry per case in ``shapes``/``spacings``/``slice_axes``."""

    name: str
    root: Path
    n_cases: int
    labels: dict[str, int]
    voxel_counts: dict[str, int]  # per label name, summed over all labeled cases
    shapes: list[tuple[int, int, int]]
    spacings: list[tuple[float, float, float]]  # mm
    slice_axes: list[int]
    n_labeled: int = 0
    slice_axis_declared: int | None = None
    twins: Twins = field(default_factory=Twins)
    orientations: list[str] = field(default_factory=list)  # axis codes per case, e.g. "RAS"
    cases_with_label: dict[str, int] = field(default_factory=dict)  # per label name, labeled cases holding it
    image_dtypes: list[str] = field(default_factory=list)  # as stored on disk, per case

    def orientation_text(self) -> str:
        """``"LPS (all cases)"`` or ``"RAS: 30 cases, LPS: 10 cases"``."""
        seen = Counter(self.orientations)
        if len(seen) == 1:
            return f"{self.orientations[0]} (all cases)"
        return ", ".join(f"{code}: {n} cases" for code, n in seen.most_common())

    def format(self) -> str:
        """Multi-line, human-readable summary."""
        lines = [
            f"Dataset:    {self.name}",
            f"Folder:     {self.root}",
            f"Cases:      {self.n_cases} ({self.n_labeled} labeled)",
            f"Labels:     {len(self.labels)} (background + {len(self.labels) - 1} structures), voxels over all cases:",
        ]
        width = max(len(name) for name in self.labels)
        for name, value in self.labels.items():
            count = self.voxel_counts.get(name, 0)
            note = "  (absent from every case)" if count == 0 and self.n_labeled else ""
            lines.append(f"  {value:>5}  {name:<{width}}  {count:>14,}{note}")
        distinct = Counter(self.shapes)
        if len(distinct) == 1:
            lines.append(f"Shape:      {dims(self.shapes[0])} (all cases)")
        else:
            lo = np.min(self.shapes, axis=0)
            hi = np.max(self.shapes, axis=0)
            lines.append(f"Shape:      {len(distinct)} distinct, from {dims(lo)} to {dims(hi)} (per axis)")
            for shape, n in distinct.most_common(5):
                lines.append(f"  {dims(shape)}: {n} cases")
        sp = np.asarray(self.spacings)
        lo, hi = sp.min(axis=0), sp.max(axis=0)
        if np.allclose(lo, hi):
            lines.append(f"Spacing:    {' × '.join(f'{v:.3g}' for v in lo)} mm (all cases)")
        else:
            ranges = " × ".join(f"{a:.3g}–{b:.3g}" for a, b in zip(lo, hi))
            lines.append(f"Spacing:    {ranges} mm (range per axis)")
        axes = Counter(self.slice_axes)
        if self.slice_axis_declared is not None:
            lines.append(f"Slice axis: {self.slice_axis_declared} (declared in dataset.json)")
        else:
            per_axis = ", ".join(f"axis {a}: {n} cases" for a, n in sorted(axes.items()))
            lines.append(f"Slice axis: largest spacing per volume ({per_axis})")
        if self.orientations:
            lines.append(f"Orientation: {self.orientation_text()} (voxel axes, nibabel codes)")
        twins = self.twins.lines()
        lines.append(f"Twins:      {len(twins) or 'none'}" + (" (splits keep each group in one fold)" if twins else ""))
        lines += [f"  {line}" for line in twins]
        return "\n".join(lines)


def check_dataset(root: str | Path, progress: Callable[[int, int], None] | None = None) -> DatasetSummary:
    """Load and validate every case of the dataset at ``root`` (each file read once).

    ``progress(done, total)`` is called once before the first case and after each case.
    Raises:
        SparError: the first problem found, naming its file.
    """
    dataset = load_dataset(root)
    declared_patients(dataset)  # import.json's patients checked too (dataset.json's were, by load_dataset)
    total = len(dataset.cases)
    counts = np.zeros(max(dataset.labels.values()) + 1, dtype=np.int64)
    shapes, spacings, axes, n_labeled = [], [], [], 0
    finder = TwinFinder()
    orientations, dtypes = [], []
    present = np.zeros(len(counts), dtype=np.int64)
    if progress is not None:
        progress(0, total)
    for done, case in enumerate(dataset.cases, start=1):
        volume = load_volume(dataset, case)
        if volume.label is not None:
            per_value = np.bincount(volume.label.ravel(), minlength=len(counts))
            counts += per_value
            present += per_value > 0
            n_labeled += 1
        orientations.append(axis_codes(volume.affine))
        dtypes.append(str(volume.header.get_data_dtype()))
        shapes.append(tuple(int(n) for n in volume.image.shape))
        spacings.append(volume.spacing)
        axes.append(volume.slice_axis)
        finder.add(case.case_id, volume.image, volume.label)
        if progress is not None:
            progress(done, total)
    return DatasetSummary(
        name=dataset.name,
        root=dataset.root,
        n_cases=total,
        labels=dict(dataset.labels),
        voxel_counts={name: int(counts[value]) for name, value in dataset.labels.items()},
        shapes=shapes,
        spacings=spacings,
        slice_axes=axes,
        n_labeled=n_labeled,
        slice_axis_declared=dataset.slice_axis,
        twins=finder.twins(),
        orientations=orientations,
        cases_with_label={name: int(present[value]) for name, value in dataset.labels.items()},
        image_dtypes=dtypes,
    )
