"""Out-of-distribution scores of one exam: does it lie where the model was trained? (no ground truth needed)

A model trained on one protocol meets, on the next patients, another placement of the field of view or another
contrast, and may then fail in a way its own masks do not betray (every vertebra one level off looks like a
fine spine). Two scores compare the exam with the training exams of its fold:

- ``placement_z``: where the predicted structures sit in the field of view. The centroid of every predicted
  structure together (label-free, so a row labelled one level off still sits where it is), in mm from the centre
  of the field of view along each voxel axis, against the training exams' true ones: the largest |z| over the
  axes, each spread at least :data:`PLACEMENT_SD_FLOOR` mm.
- ``intensity_z``: what the image looks like after the network's own normalization
  (:func:`~spar_core.data.slicing.normalize_intensity`): its deciles and its sharpness (the mean gradient
  magnitude per mm), against the training exams': the largest |z| over these features, each spread at least
  :data:`INTENSITY_SD_FLOOR`. A darker, brighter, lower-contrast or blurrier exam stands out.

Both are sized for a handful of training exams (fewer than :data:`MIN_TRAIN_EXAMS`: not scored).
"""

from __future__ import annotations

import numpy as np

from spar_core.data.slicing import normalize_intensity
from spar_core.triage.ranking import OOD_SCORES

MIN_TRAIN_EXAMS = 3
PLACEMENT_SD_FLOOR = 2.0  # mm
INTENSITY_SD_FLOOR = 0.01  # normalized intensity (deciles) and its gradient per mm
DECILES = tuple(range(10, 100, 10))
_SAMPLE = 1 << 20  # voxels the deciles are read from (a strided sample of a larger image)


def placement(labels: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """(3,) the centroid of every nonzero voxel, in mm from the centre of the field of view; nan when empty."""
    labels = np.asarray(labels)
    shape = np.array(labels.shape, dtype=float)
    sums = [np.count_nonzero(labels, axis=tuple(a for a in range(3) if a != k)) for k in range(3)]
    total = float(sums[0].sum())
    if total == 0:
        return np.full(3, np.nan)
    centroid = np.array([float((np.arange(len(s)) * s).sum()) / total for s in sums])
    return (centroid - (shape - 1) / 2) * np.asarray(spacing, dtype=float)


def intensity_features(image: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """(len(DECILES) + 1,) the deciles of the normalized image and its mean gradient magnitude per mm."""
    norm = normalize_intensity(image)
    step = max(1, int(np.ceil(norm.size / _SAMPLE)))
    deciles = np.percentile(norm.ravel()[::step], DECILES)
    grads = np.gradient(norm, *[float(s) for s in spacing])
    sharpness = float(np.mean(np.sqrt(sum(g.astype(np.float64) ** 2 for g in grads))))
    return np.array([*deciles, sharpness], dtype=float)


def _max_abs_z(value: np.ndarray, reference: np.ndarray, floor: float) -> float:
    reference = np.asarray(reference, dtype=float)
    if reference.ndim != 2 or len(reference) < MIN_TRAIN_EXAMS or not np.all(np.isfinite(value)):
        return float("nan")
    sd = np.maximum(np.nanstd(reference, axis=0, ddof=1), floor)
    return float(np.nanmax(np.abs(value - np.nanmean(reference, axis=0)) / sd))


def ood_scores(image: np.ndarray | None, labels: np.ndarray, spacing: tuple[float, float, float],
               train_placement: np.ndarray, train_intensity: np.ndarray) -> dict[str, float]:
    """``placement_z`` of the predicted ``labels`` and ``intensity_z`` of ``image`` (nan without an image)
    against the training exams' rows of ``train_placement`` (N, 3) and ``train_intensity`` (N, features)."""
    where = _max_abs_z(placement(labels, spacing), train_placement, PLACEMENT_SD_FLOOR)
    looks = float("nan") if image is None else _max_abs_z(intensity_features(image, spacing), train_intensity,
                                                          INTENSITY_SD_FLOOR)
    return dict(zip(OOD_SCORES, (where, looks)))
