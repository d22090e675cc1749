"""The exam's voxel grid, the finer sampling the tissue model is evaluated on, and windows inside it.

Three samplings of the same field of view:

- the *exam grid* (nx, ny, nz): what is written, in-plane spacing s, slice spacing sz (axial, along axis 2);
- the *fine grid* (nx, ny, nz·m): the same in-plane, with m sub-slices per slice for partial volume;
- the *coarse grid* (nx//2+1, ny//2+1, nz·m): every other fine voxel in-plane (≈ 1 mm), where the
  signed-distance fields are evaluated, then linearly upsampled (:func:`upsample2`) — smooth fields lose
  nothing and it costs a quarter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Window = tuple[slice, slice, slice]


@dataclass(frozen=True)
class Grid:
    """Voxel grid of one exam: ``shape`` (nx, ny, nz), ``spacing`` (mm), ``origin`` = world mm of voxel 0."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    subslices: int = 3

    def affine(self) -> np.ndarray:
        """Voxel → world (RAS, mm): diagonal spacing, origin in the last column."""
        aff = np.diag([*self.spacing, 1.0])
        aff[:3, 3] = self.origin
        return aff

    @property
    def coarse_shape(self) -> tuple[int, int, int]:
        nx, ny, nz = self.shape
        return nx // 2 + 1, ny // 2 + 1, nz * self.subslices

    def coarse_axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World coordinates (mm, float32) of the coarse grid along x, y and of the sub-slices along z."""
        cx, cy, _ = self.coarse_shape
        s, _, sz = self.spacing
        m = self.subslices
        x = self.origin[0] + 2 * s * np.arange(cx)
        y = self.origin[1] + 2 * self.spacing[1] * np.arange(cy)
        offsets = (np.arange(m) + 0.5) / m - 0.5
        z = self.origin[2] + sz * (np.arange(self.shape[2])[:, None] + offsets[None, :]).ravel()
        return x.astype(np.float32), y.astype(np.float32), z.astype(np.float32)

    def window(self, lo: np.ndarray, hi: np.ndarray) -> Window | None:
        """Coarse-grid window covering the world box [lo, hi] (mm), z aligned to whole slices; None if outside."""
        s, _, sz = self.spacing
        cx, cy, _ = self.coarse_shape
        m = self.subslices
        o = self.origin
        x0 = max(int(np.floor((lo[0] - o[0]) / (2 * s))), 0)
        x1 = min(int(np.ceil((hi[0] - o[0]) / (2 * s))) + 1, cx)
        y0 = max(int(np.floor((lo[1] - o[1]) / (2 * self.spacing[1]))), 0)
        y1 = min(int(np.ceil((hi[1] - o[1]) / (2 * self.spacing[1]))) + 1, cy)
        k0 = max(int(np.floor((lo[2] - o[2]) / sz + 0.5)), 0)
        k1 = min(int(np.ceil((hi[2] - o[2]) / sz + 0.5)), self.shape[2])
        if x1 - x0 < 2 or y1 - y0 < 2 or k1 <= k0:
            return None
        return slice(x0, x1), slice(y0, y1), slice(k0 * m, k1 * m)

    def fine_window(self, win: Window) -> Window:
        """The fine-grid voxels a coarse window upsamples to (clipped to the grid)."""
        nx, ny, _ = self.shape
        return (
            slice(2 * win[0].start, min(2 * win[0].stop - 1, nx)),
            slice(2 * win[1].start, min(2 * win[1].stop - 1, ny)),
            win[2],
        )


def upsample2(a: np.ndarray) -> np.ndarray:
    """Linear ×2 upsampling along axes 0 and 1: (X, Y, Z) → (2X−1, 2Y−1, Z), sample 2i = input i."""
    x, y, z = a.shape
    b = np.empty((2 * x - 1, y, z), dtype=np.float32)
    b[0::2] = a
    b[1::2] = 0.5 * (a[:-1] + a[1:])
    c = np.empty((2 * x - 1, 2 * y - 1, z), dtype=np.float32)
    c[:, 0::2] = b
    c[:, 1::2] = 0.5 * (b[:, :-1] + b[:, 1:])
    return c


def upsample_to_fine(a: np.ndarray, grid: Grid, win: Window) -> np.ndarray:
    """A coarse-window field on the fine grid voxels of :meth:`Grid.fine_window`."""
    fine = grid.fine_window(win)
    up = upsample2(a)
    return up[: fine[0].stop - fine[0].start, : fine[1].stop - fine[1].start]


def intersect(a: Window, b: Window) -> Window | None:
    """Common part of two windows of the same grid, or None."""
    out = []
    for sa, sb in zip(a, b):
        lo, hi = max(sa.start, sb.start), min(sa.stop, sb.stop)
        if hi <= lo:
            return None
        out.append(slice(lo, hi))
    return tuple(out)  # type: ignore[return-value]


def relative(inner: Window, outer: Window) -> Window:
    """``inner`` expressed in the index space of an array that holds ``outer``."""
    return tuple(slice(i.start - o.start, i.stop - o.start) for i, o in zip(inner, outer))  # type: ignore[return-value]
