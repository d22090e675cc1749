"""3D post-processing of a predicted label volume: per structure, keep the largest connected component, then
close small gaps with a ball of a radius in mm (the paper's last inference step).

Every function is pure: inputs are never modified, a new array is returned. Morphology runs on each
structure's bounding box (plus the structuring element's half-width), not on the whole volume.

Closing is computed as if the volume extended with background beyond its border (the crop is zero-padded by
the element's half-width), so an object touching the border is not eroded there. Closing may only turn
*background* into a structure: a voxel of another structure is never taken, and a background voxel that the
closings of two structures both claim stays background, so neighbouring bones never grow into each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage

from spar_core.data.checks import check_3d, check_spacing
from spar_core.data.voxels import Box, bounding_box, label_array, within
from spar_core.errors import SparError
from spar_core.postprocessing.settings import (DEFAULT_CLOSING_MM, DEFAULT_CONNECTIVITY, check_connectivity,
                                               check_radius)
from spar_core.postprocessing.chain import Chain, relabel_chain
from spar_core.postprocessing.components import connected_components, largest_of
from spar_core.postprocessing.levels import LevelEvidence

# The largest structuring element built (voxels): 2**22 is a 161-voxel ball, 2 mm on 0.025 mm voxels.
MAX_ELEMENT_VOXELS = 2**22


@dataclass(frozen=True)
class PostprocessConfig:
    """Which steps run, and their sizes.

    Args:
        largest_component: keep only the largest 3D connected component of each structure.
        closing_mm: radius in mm of the ellipsoidal closing element; 0 switches closing off.
        connectivity: 1 (faces, 6-neighbourhood), 2 (+edges, 18) or 3 (+corners, 26), for the components.
        parts: label → how many components to keep (structures with a left and a right part, from the
            training labels: :mod:`spar_core.postprocessing.components`); any other label keeps its largest.
        chain: structures in a row (:mod:`spar_core.postprocessing.chain`), relabelled in order before the other
            steps (``"ordered"``: it did better than ``"majority"`` on held-out spine exams,
            bench/results/recipe/); None: no ordering.
        largest_for: the labels whose components are filtered (None: every label), as decided from
            cross-validated predictions (:mod:`spar_core.postprocessing.choice`).

    Built from a run's settings and decisions by :func:`spar_core.postprocessing.decision.postprocess_config`.
    """

    largest_component: bool = True
    closing_mm: float = DEFAULT_CLOSING_MM
    connectivity: int = DEFAULT_CONNECTIVITY
    parts: tuple[tuple[int, int], ...] = ()
    chain: Chain | None = None
    largest_for: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.largest_component, (bool, np.bool_)):
            raise SparError(f"largest_component: expected True or False, got {self.largest_component!r}")
        check_radius(self.closing_mm)
        check_connectivity(self.connectivity)


# ---------------------------------------------------------------------------------------------- primitives


def ball_mm(spacing: Sequence[float], radius_mm: float) -> np.ndarray:
    """Ellipsoidal structuring element: voxels whose centre lies within ``radius_mm`` of the centre, in mm.

    Half-width per axis is floor(radius / spacing): spacing (0.5, 0.5, 3) and radius 2 mm give 4 voxels
    in-plane and 0 along the third axis, i.e. a (9, 9, 1) flat disc. Returns a bool array of odd sizes.
    """
    spacing = check_spacing(spacing)
    radius = check_radius(radius_mm)
    # Relative slack for spacings read from float32 headers (0.6 mm is stored as 0.6000000238).
    slack = 1 + 1e-6
    half = [int(math.floor(radius / s * slack)) for s in spacing]
    size = math.prod(2 * h + 1 for h in half)
    if size > MAX_ELEMENT_VOXELS:
        raise SparError(f"closing of {radius:g} mm on voxels of {tuple(round(s, 6) for s in spacing)} mm: a "
                        f"{' × '.join(str(2 * h + 1) for h in half)} element ({size:,} voxels); expected at most "
                        f"{MAX_ELEMENT_VOXELS:,}: check the exam's voxel sizes, or lower --closing-mm")
    grids = np.ogrid[tuple(slice(-h, h + 1) for h in half)]
    dist2 = sum((g * s) ** 2 for g, s in zip(grids, spacing))
    return dist2 <= (radius * slack) ** 2


def closing_mm(mask: np.ndarray, spacing: Sequence[float], radius_mm: float) -> np.ndarray:
    """3D binary closing (dilation, then erosion) with :func:`ball_mm`; returns a bool mask of the same shape.

    The volume is treated as surrounded by background, so closing never removes a voxel of ``mask`` (not
    even at the border). ``radius_mm`` = 0 returns a copy.
    """
    mask = check_3d(mask, "mask").astype(bool)  # a copy: the input stays untouched
    ball = ball_mm(spacing, radius_mm)
    box = bounding_box(mask)
    if box is not None and ball.size > 1:
        mask[box] |= _close_crop(mask[box], ball)
    return mask


def _close_crop(crop: np.ndarray, ball: np.ndarray) -> np.ndarray:
    """Closing of a mask cropped to its bounding box, as if surrounded by background (same shape as ``crop``).

    A closing never leaves the object's bounding box, so zero-padding the box by the element's half-width
    gives exactly the closing on an unbounded background.
    """
    half = [n // 2 for n in ball.shape]
    padded = np.pad(crop, [(h, h) for h in half])
    closed = ndimage.binary_erosion(ndimage.binary_dilation(padded, ball), ball)
    return closed[tuple(slice(h, n - h) for h, n in zip(half, closed.shape))]


# ---------------------------------------------------------------------------------------------- pipeline


def postprocess(
    labels: np.ndarray, spacing: Sequence[float], cfg: PostprocessConfig = PostprocessConfig(),
    evidence: LevelEvidence | None = None,
) -> np.ndarray:
    """Post-process a 3D label volume structure by structure; returns a new array of the same shape and dtype.

    Args:
        labels: (X, Y, Z) integer label volume, 0 = background.
        spacing: voxel size in mm along X, Y, Z (the closing radius is converted per axis).
        cfg: which steps run (see :class:`PostprocessConfig`).
        evidence: the level model's evidence on ``labels`` (:mod:`spar_core.postprocessing.level_evidence`), which
            orders a chain of the ``level`` prior (without it, such a chain is ordered by the votes alone).

    Steps: with ``cfg.chain``, the chain's bodies relabelled in order; then, for every nonzero label value
    present, keep the largest connected component (the ``cfg.parts`` largest for a structure of several parts;
    islands become background); then close with a ball of ``cfg.closing_mm`` mm, adding only background voxels
    that no other structure's closing also claims.

    Raises:
        SparError: not 3D, non-integer or negative labels, bad spacing.
    """
    source = check_3d(labels, "labels")
    values = label_array(source)
    spacing = check_spacing(spacing)
    out = np.array(source, copy=True)
    if cfg.chain is not None:
        out[...] = relabel_chain(values, cfg.chain, "ordered", spacing, evidence=evidence)
        values = label_array(out)
    present = [(v, box) for v, box in enumerate(ndimage.find_objects(values), start=1) if box is not None]

    if cfg.largest_component:
        kept = dict(cfg.parts)
        shrunk = []
        for value, box in present:
            if cfg.largest_for is not None and value not in cfg.largest_for:
                shrunk.append((value, box))
                continue
            components, n = connected_components(values[box] == value, cfg.connectivity)
            k = kept.get(value, 1)
            if n > k:
                keep = largest_of(components, k)
                out[box][(components > 0) & ~keep] = 0
                box = within(bounding_box(keep), box)
            shrunk.append((value, box))
        present = shrunk

    ball = ball_mm(spacing, cfg.closing_mm)
    if ball.size == 1 or not present:
        return out
    # Pass 1: the background voxels each structure's closing would add, and how many structures claim each
    # voxel (saturated at 2). Pass 2: add only the voxels claimed by exactly one structure.
    claims = np.zeros(out.shape, dtype=np.uint8)
    added: list[tuple[int, Box, np.ndarray]] = []
    for value, box in present:
        crop = out[box]
        new = _close_crop(crop == value, ball) & (crop == 0)
        if new.any():
            count = claims[box]
            count += new
            np.minimum(count, 2, out=count)
            added.append((value, box, new))
    for value, box, new in added:
        out[box][new & (claims[box] == 1)] = value
    return out
