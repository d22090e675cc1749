"""The level model on one prediction: crops centred on each predicted body of the row and one gap beyond each end,
their log-probabilities as :class:`~spar_core.postprocessing.levels.LevelEvidence` (what the ordering of the row
weighs, and what says whether the level is known). The one step of post-processing that runs a network."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from spar_core.data.level_crops import INSET_GAPS, inside
from spar_core.data.slicing import normalize_intensity
from spar_core.postprocessing.chain import Chain, row_bodies
from spar_core.postprocessing.levels import LevelEvidence
from spar_core.training.level import LevelModel


def row_evidence(model: LevelModel, image: np.ndarray, spacing: Sequence[float], labels: np.ndarray,
                 chain: Chain) -> LevelEvidence:
    """The level model's evidence for the row that ``labels`` (a raw prediction over ``image``) holds.

    The crops beyond the ends continue the row by the vector between its two end bodies (one body: by the model's
    mean gap along the axis); a crop whose centre lies outside the image along the row, or within
    :data:`~spar_core.data.level_crops.INSET_GAPS` of a gap of its border, has no evidence."""
    found = row_bodies(labels, chain)
    if found is None:
        return LevelEvidence((), (None, None))
    bodies = found.centroids
    if len(bodies) >= 2:
        before, after = 2 * bodies[0] - bodies[1], 2 * bodies[-1] - bodies[-2]
    else:
        step = np.zeros(3)
        step[chain.axis] = (1 if chain.ascending else -1) * model.geometry.gap_mm / float(spacing[chain.axis])
        before, after = bodies[0] - step, bodies[0] + step
    centres = np.vstack([before, bodies, after])
    inset = INSET_GAPS * model.geometry.gap_mm / float(spacing[chain.axis])
    seen = inside(centres, labels.shape, chain.axis, inset)
    log_probs: list[tuple[float, ...] | None] = [None] * len(centres)
    if seen.any():
        values = model.log_probs(normalize_intensity(image), spacing, centres[seen])
        for i, row in zip(np.flatnonzero(seen), values):
            log_probs[i] = tuple(float(v) for v in np.minimum(row, 0.0))
    # how far the image reaches from each crop's centre toward the row's first and last end, in mean gaps
    gap = model.geometry.gap_mm / float(spacing[chain.axis])
    low, high = centres[:, chain.axis], labels.shape[chain.axis] - 1 - centres[:, chain.axis]
    toward_first, toward_last = (low, high) if chain.ascending else (high, low)
    room = tuple((float(a / gap), float(b / gap)) for a, b in zip(toward_first, toward_last))
    return LevelEvidence(tuple(float(p) for p in bodies[:, chain.axis]), tuple(log_probs), room)
