"""Crops for the level model: 2.5D patches centred on one structure of a row (a vertebral body), large enough to
hold its neighbours, so that a classifier can tell which member of the row it is from the anatomy around it
(the sacrum below L5, the thoracic spine above L1) rather than from where the field of view sits.

A crop is axis-aligned: its rows run along the row's axis (``row_axis``, read in the row's order, so the first
member is always at the top), its columns along the remaining in-plane axis, and its channels are planes a few mm
apart along the slice axis. Its size is given in mean gaps between consecutive members (``gap_mm``), so one
geometry serves any row; it is resampled to a fixed number of pixels (trilinear; outside the
image: mirrored at the border, so that where the field of view ends is no edge a classifier could count from).
Classes: 0 one step beyond the first member (T12 on the lumbar spine), 1..n the members, n + 1 one step
beyond the last (S1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
from scipy import ndimage

from spar_core.errors import SparError

# Along the row the crop holds 3.5 gaps: the member and both neighbours whole, and part of the next on each side
# (on the spine ≈ 120 mm: a crop on L5 holds the top of the sacrum, one on L1 the lower thoracic spine).
ALONG_GAPS = 3.5
ACROSS_GAPS = 2.5  # ≈ 85 mm on the spine: the body, its canal and the tissue in front of it
PIXELS = (48, 32)  # (along, across): ≈ 2.5 mm pixels on the spine; the classifier needs shapes, not texture
CHANNEL_MM = (-6.0, 0.0, 6.0)  # planes along the slice axis: the mid-sagittal one and one on each side
# At prediction a crop whose centre lies this close to the image border along the row (in gaps; ≈ 12 mm on the
# spine) gives no evidence: the structure it is centred on is cut, half of it or more
INSET_GAPS = 0.35


@dataclass(frozen=True)
class CropGeometry:
    """Where a crop lies in an exam and how it is sampled.

    Args:
        row_axis: the voxel axis along which the row runs (:class:`~spar_core.postprocessing.chain.Chain` axis).
        ascending: whether the row's order follows increasing indices along ``row_axis``.
        slice_axis: the exam's slice axis (the channels are planes along it; if it is the row axis, the third
            axis carries them).
        gap_mm: mean distance between consecutive members (mm), from the training labels.
        along, across: the crop's extent in gaps.
        pixels: (along, across) pixels of the resampled crop.
        channel_mm: offsets (mm) of the planes stacked as channels.
    """

    row_axis: int
    ascending: bool
    slice_axis: int
    gap_mm: float
    along: float = ALONG_GAPS
    across: float = ACROSS_GAPS
    pixels: tuple[int, int] = PIXELS
    channel_mm: tuple[float, ...] = CHANNEL_MM

    def __post_init__(self) -> None:
        if self.row_axis not in (0, 1, 2) or self.slice_axis not in (0, 1, 2):
            raise SparError(f"crop axes {self.row_axis}, {self.slice_axis}: expected 0, 1 or 2")
        if not (np.isfinite(self.gap_mm) and self.gap_mm > 0):
            raise SparError(f"crop gap {self.gap_mm!r} mm: expected a positive distance between members")
        if min(self.pixels) < 8 or self.along <= 0 or self.across <= 0 or not self.channel_mm:
            raise SparError(f"crop of {self.along} × {self.across} gaps at {self.pixels} pixels, channels "
                            f"{self.channel_mm}: expected positive extents, 8 pixels or more, one channel or more")

    @property
    def axes(self) -> tuple[int, int, int]:
        """(along, across, channel) voxel axes."""
        others = [a for a in range(3) if a != self.row_axis]
        channel = self.slice_axis if self.slice_axis != self.row_axis else others[-1]
        across = 3 - self.row_axis - channel
        return self.row_axis, across, channel

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "pixels": list(self.pixels), "channel_mm": list(self.channel_mm)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "CropGeometry":
        try:
            return cls(int(data["row_axis"]), bool(data["ascending"]), int(data["slice_axis"]),
                       float(data["gap_mm"]), float(data["along"]), float(data["across"]),
                       (int(data["pixels"][0]), int(data["pixels"][1])),
                       tuple(float(v) for v in data["channel_mm"]))
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise SparError(f"crop geometry {data!r}: {type(err).__name__}: {err}") from None


def crops(image: np.ndarray, spacing: Sequence[float], centres: np.ndarray, geometry: CropGeometry,
          scales: np.ndarray | None = None) -> np.ndarray:
    """(N, C, H, W) float32 crops of ``image`` (normalized to [0, 1]) centred on ``centres`` ((N, 3) voxel
    coordinates); H runs along the row in its order, W across it. ``scales`` (N,): each crop's extent times that
    factor (training jitter). Outside the image: the image mirrored at its border (in a cohort whose field of view
    always ends at one place, a dark edge at a fixed distance from the centre would name the class by itself)."""
    centres = np.asarray(centres, dtype=float).reshape(-1, 3)
    n = len(centres)
    c, (h, w) = len(geometry.channel_mm), geometry.pixels
    if n == 0:
        return np.zeros((0, c, h, w), dtype=np.float32)
    along, across, channel = geometry.axes
    scales = np.ones(n) if scales is None else np.asarray(scales, dtype=float)
    mm = geometry.gap_mm
    u = (np.arange(h) + 0.5) / h - 0.5  # in [-0.5, 0.5): pixel centres
    v = (np.arange(w) + 0.5) / w - 0.5
    direction = 1.0 if geometry.ascending else -1.0
    coords = np.empty((3, n, c, h, w), dtype=np.float32)
    du = (direction * geometry.along * mm / spacing[along]) * scales[:, None] * u[None, :]  # (N, H) voxels
    dv = (geometry.across * mm / spacing[across]) * scales[:, None] * v[None, :]  # (N, W)
    dc = np.asarray(geometry.channel_mm) / spacing[channel]  # (C,)
    coords[along] = (centres[:, along, None, None, None] + du[:, None, :, None])
    coords[across] = (centres[:, across, None, None, None] + dv[:, None, None, :])
    coords[channel] = (centres[:, channel, None, None, None] + dc[None, :, None, None])
    out = ndimage.map_coordinates(np.asarray(image, dtype=np.float32), coords.reshape(3, -1), order=1,
                                  mode="mirror", prefilter=False)
    return out.reshape(n, c, h, w).astype(np.float32, copy=False)


def row_centres(label: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """(n + 2, 3) voxel centres of the row's classes in one label volume: one step beyond the first member, the
    members, one step beyond the last (each member's centroid; the beyond steps continue the row by the vector
    between the two members at that end). NaN for a member the volume lacks, and for a beyond step without its
    two members."""
    labels = [int(v) for v in labels]
    with np.errstate(invalid="ignore", divide="ignore"):
        found = ndimage.center_of_mass(np.ones(label.shape, dtype=np.uint8), label, labels)
    members = np.array([c if np.all(np.isfinite(c)) else (np.nan,) * 3 for c in found], dtype=float)
    before = 2 * members[0] - members[1]
    after = 2 * members[-1] - members[-2]
    return np.vstack([before, members, after])


def inside(centres: np.ndarray, shape: Sequence[int], axis: int, inset: float = 0.0) -> np.ndarray:
    """(N,) whether each centre lies within the volume along ``axis`` (and is finite), at least ``inset`` voxels
    from its first and last planes."""
    centres = np.asarray(centres, dtype=float).reshape(-1, 3)
    where = centres[:, axis]
    return np.isfinite(centres).all(axis=1) & (where >= inset) & (where <= shape[axis] - 1 - inset)


ANCHOR_IN_VIEW_MM = 10.0  # a structure beyond the row's end counts as in view when this much of it is


def ends_in_view(label: np.ndarray, labels: Sequence[int], axis: int, ascending: bool,
                 extent: Sequence[tuple[int, int]] | None = None,
                 spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> tuple[float, float]:
    """(before, after): mm of the structure one step beyond the first and the last member of the row (T12, S1)
    that lie within ``extent`` (the [start, stop) voxels per axis showing the exam's own content; None: the whole
    grid), estimated from the truth: that structure is taken to begin one disc (the mean space between consecutive
    members) beyond the end member and to be as tall as it. 0 where the end member itself is missing."""
    labels = [int(v) for v in labels]
    line = np.moveaxis(np.asarray(label), axis, 0).reshape(label.shape[axis], -1)
    spans = []
    for value in labels:
        rows = np.flatnonzero((line == value).any(axis=1))
        spans.append((int(rows[0]), int(rows[-1])) if rows.size else None)
    if not ascending:
        n = label.shape[axis]
        spans = [None if s is None else (n - 1 - s[1], n - 1 - s[0]) for s in spans]
    start, stop = (0, label.shape[axis]) if extent is None else extent[axis]
    if not ascending:
        start, stop = label.shape[axis] - stop, label.shape[axis] - start
    present = [s for s in spans if s is not None]
    discs = [b[0] - a[1] - 1 for a, b in zip(present, present[1:])]
    disc = float(np.mean(discs)) if discs else 0.0
    mm = float(spacing[axis])

    def seen(begin: float, end: float) -> float:  # voxels [begin, end) within [start, stop)
        return max(0.0, min(end, stop) - max(begin, start)) * mm

    first, last = spans[0], spans[-1]
    before = 0.0 if first is None else seen(first[0] - disc - (first[1] - first[0] + 1), first[0] - disc)
    after = 0.0 if last is None else seen(last[1] + 1 + disc, last[1] + 1 + disc + (last[1] - last[0] + 1))
    return before, after


def anchor_in_view(before_mm: float, after_mm: float, minimum: float = ANCHOR_IN_VIEW_MM) -> str:
    """``both``, ``first``, ``last`` or ``none``: which structure beyond the row's ends is in view."""
    first, last = before_mm >= minimum, after_mm >= minimum
    return "both" if first and last else "first" if first else "last" if last else "none"
