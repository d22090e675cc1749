"""Signed-distance primitives (mm, negative inside), smooth boolean operators and smooth noise.

Every function takes points as ``P = (X, Y, Z)``: three float32 arrays that broadcast against each other
(open grids from :func:`numpy.ix_` or full arrays), and returns an array of their broadcast shape. Distances
are exact or close to exact near the surface (|gradient| ≈ 1), which is what cortex, cartilage and joint
gaps, all thresholds of a few mm on these fields, need.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

Points = tuple[np.ndarray, np.ndarray, np.ndarray]
Vec = Sequence[float]


def rotation(rx: float = 0.0, ry: float = 0.0, rz: float = 0.0) -> np.ndarray:
    """3×3 rotation, angles in degrees about x, then y, then z (extrinsic)."""
    ax, ay, az = np.radians([rx, ry, rz])
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rot_x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rot_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rot_z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rot_z @ rot_y @ rot_x


def to_local(P: Points, center: Vec, rot: np.ndarray | None = None) -> Points:
    """Coordinates of ``P`` in a frame placed at ``center`` with axes ``rot`` (columns), i.e. Rᵀ(p − c)."""
    X, Y, Z = P[0] - np.float32(center[0]), P[1] - np.float32(center[1]), P[2] - np.float32(center[2])
    if rot is None:
        return X, Y, Z
    r = np.asarray(rot, dtype=np.float32)
    return (
        r[0, 0] * X + r[1, 0] * Y + r[2, 0] * Z,
        r[0, 1] * X + r[1, 1] * Y + r[2, 1] * Z,
        r[0, 2] * X + r[1, 2] * Y + r[2, 2] * Z,
    )


def ellipsoid(P: Points, center: Vec, radii: Vec, rot: np.ndarray | None = None) -> np.ndarray:
    """Ellipsoid with semi-axes ``radii`` (mm); the first-order distance f/|∇f|, accurate near the surface."""
    X, Y, Z = to_local(P, center, rot)
    a, b, c = (np.float32(r) for r in radii)
    k0 = np.sqrt((X / a) ** 2 + (Y / b) ** 2 + (Z / c) ** 2)
    k1 = np.sqrt((X / a**2) ** 2 + (Y / b**2) ** 2 + (Z / c**2) ** 2)
    return k0 * (k0 - 1.0) / np.maximum(k1, np.float32(1e-3) / min(a, b, c))


def round_box(P: Points, center: Vec, half: Vec, radius: float, rot: np.ndarray | None = None) -> np.ndarray:
    """Box of half-sizes ``half`` (mm, rounding included) whose edges are rounded with ``radius``."""
    X, Y, Z = to_local(P, center, rot)
    qx = np.abs(X) - np.float32(half[0] - radius)
    qy = np.abs(Y) - np.float32(half[1] - radius)
    qz = np.abs(Z) - np.float32(half[2] - radius)
    outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2 + np.maximum(qz, 0) ** 2)
    inside = np.minimum(np.maximum(qx, np.maximum(qy, qz)), 0)
    return outside + inside - np.float32(radius)


def capsule(P: Points, a: Vec, b: Vec, ra: float, rb: float | None = None, squash: Vec = (1, 1, 1)) -> np.ndarray:
    """Segment a→b swept by a sphere whose radius goes linearly from ``ra`` to ``rb`` (a tapered capsule).

    ``squash`` divides the coordinates before the distance and multiplies it back: (1, 1, 0.5) flattens the
    capsule vertically (an approximate distance, good enough for flat processes like the acromion).
    """
    rb = ra if rb is None else rb
    sx, sy, sz = (np.float32(s) for s in squash)
    ax, ay, az = a[0] / sx, a[1] / sy, a[2] / sz
    bx, by, bz = b[0] / sx, b[1] / sy, b[2] / sz
    X, Y, Z = P[0] / sx - np.float32(ax), P[1] / sy - np.float32(ay), P[2] / sz - np.float32(az)
    ex, ey, ez = bx - ax, by - ay, bz - az
    length2 = ex * ex + ey * ey + ez * ez
    h = np.clip((X * np.float32(ex) + Y * np.float32(ey) + Z * np.float32(ez)) / np.float32(length2), 0, 1)
    d = np.sqrt((X - np.float32(ex) * h) ** 2 + (Y - np.float32(ey) * h) ** 2 + (Z - np.float32(ez) * h) ** 2)
    return (d - (np.float32(ra) + np.float32(rb - ra) * h)) * np.float32(min(sx, sy, sz))


def swept(P: Points, points: Sequence[Vec], radii: Sequence[float], k: float = 2.0, squash: Vec = (1, 1, 1)) -> np.ndarray:
    """A tube along a polyline (tapered capsules joined smoothly): shafts, processes, tendons."""
    out = capsule(P, points[0], points[1], radii[0], radii[1], squash)
    for i in range(1, len(points) - 1):
        out = smooth_union(out, capsule(P, points[i], points[i + 1], radii[i], radii[i + 1], squash), k)
    return out


def elliptic_cylinder(P: Points, center: Vec, radii: Vec, z_range: Vec, rot: np.ndarray | None = None) -> np.ndarray:
    """Cylinder along local z with an elliptic section (radii x, y) capped at ``z_range`` (local, mm)."""
    X, Y, Z = to_local(P, center, rot)
    a, b = np.float32(radii[0]), np.float32(radii[1])
    k0 = np.sqrt((X / a) ** 2 + (Y / b) ** 2)
    k1 = np.sqrt((X / a**2) ** 2 + (Y / b**2) ** 2)
    side = k0 * (k0 - 1.0) / np.maximum(k1, np.float32(1e-3) / min(a, b))
    lo, hi = np.float32(z_range[0]), np.float32(z_range[1])
    cap = np.maximum(lo - Z, Z - hi)
    return np.maximum(side, cap)


def slab(P: Points, center: Vec, normal: Vec, thickness: float, curvature: float = 0.0) -> np.ndarray:
    """Thin plate around the plane through ``center`` with ``normal``, bent into a cylinder of the given
    ``curvature`` (1/mm) about the local vertical: the scapular blade. Negative within ``thickness``/2."""
    n = np.asarray(normal, dtype=np.float64)
    n = n / np.linalg.norm(n)
    u = np.cross([0.0, 0.0, 1.0], n)
    u = u / np.linalg.norm(u)
    X, Y, Z = P[0] - np.float32(center[0]), P[1] - np.float32(center[1]), P[2] - np.float32(center[2])
    along = np.float32(u[0]) * X + np.float32(u[1]) * Y + np.float32(u[2]) * Z
    across = np.float32(n[0]) * X + np.float32(n[1]) * Y + np.float32(n[2]) * Z
    return np.abs(across - np.float32(0.5 * curvature) * along**2) - np.float32(thickness / 2)


def plane(P: Points, point: Vec, normal: Vec) -> np.ndarray:
    """Signed distance to a plane, positive on the side ``normal`` points to."""
    n = np.asarray(normal, dtype=np.float64)
    n = n / np.linalg.norm(n)
    return (
        np.float32(n[0]) * (P[0] - np.float32(point[0]))
        + np.float32(n[1]) * (P[1] - np.float32(point[1]))
        + np.float32(n[2]) * (P[2] - np.float32(point[2]))
    )


def smooth_union(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Union with a fillet of about ``k`` mm (polynomial smooth minimum)."""
    k = np.float32(k)
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0, 1)
    return b + (a - b) * h - k * h * (1 - h)


def smooth_intersection(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Intersection with rounded creases of about ``k`` mm."""
    return -smooth_union(-a, -b, k)


def smooth_subtraction(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """``a`` minus ``b``, the cut edge rounded by about ``k`` mm."""
    return smooth_intersection(a, -b, k)


def carve(a: np.ndarray, other: np.ndarray, gap: float) -> np.ndarray:
    """``a`` minus ``other`` grown by ``gap`` mm: a congruent joint surface at ``gap`` from ``other``.

    This is how joints are built: each secondary bone is first made to overlap its neighbour, then cut by
    the neighbour's offset surface, so the joint space has the same thin width everywhere they meet and
    the two bones never overlap.
    """
    return np.maximum(a, np.float32(gap) - other)


class SmoothNoise:
    """A sum of a few random 3D Fourier modes: a smooth field with a given amplitude (mm or fraction).

    Low-frequency shape perturbation (wavelengths ``wavelength`` mm) for the bones, and texture for tissues.
    """

    def __init__(self, rng: np.random.Generator, amplitude: float, wavelength: tuple[float, float], modes: int = 4):
        direction = rng.normal(size=(modes, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        lengths = rng.uniform(wavelength[0], wavelength[1], size=modes)
        self.k = (2 * np.pi * direction / lengths[:, None]).astype(np.float32)
        self.phase = rng.uniform(0, 2 * np.pi, size=modes).astype(np.float32)
        weights = rng.uniform(0.5, 1.0, size=modes)
        # The peak of a sum of sines is at most the sum of weights; scale so the field stays within ±amplitude.
        self.weight = (amplitude * weights / weights.sum()).astype(np.float32)

    def __call__(self, P: Points) -> np.ndarray:
        out = None
        for k, phase, weight in zip(self.k, self.phase, self.weight):
            term = weight * np.sin(k[0] * P[0] + k[1] * P[1] + (k[2] * P[2] + phase))
            out = term if out is None else out + term
        return out
