"""Uncertainty scores of one exam: how unsure the model was where it put the structures.

The exam is predicted again with test-time augmentation (the fold's model on the slice and four copies shifted
by ±5 % of its side: :mod:`spar_core.inference.ensemble`), which gives per voxel the predictive entropy and
the disagreement (mutual information) between the five members. Averaged inside the predicted structures:

- ``entropy``: mean predictive entropy (nats) over every voxel of every predicted structure;
- ``disagreement``: mean mutual information (nats) over the same voxels;
- ``entropy_worst`` / ``disagreement_worst``: the largest per-structure mean (one doubtful vertebra in an
  otherwise confident exam);
- per structure ``entropy:<name>`` and ``disagreement:<name>`` for drilling down.

An exam whose structures are all missing has nan scores. For held-out exams of a cross-validation only the
fold's own model is used: the other folds' models were trained on the exam.
"""

from __future__ import annotations

import numpy as np

from spar_core.inference.ensemble import EnsemblePrediction


def uncertainty_scores(pred: EnsemblePrediction, labels: np.ndarray, structures: dict[str, int]) -> dict[str, float]:
    """The scores of the module docstring for the structures in ``labels`` (the scored prediction, on the
    same grid as ``pred``'s maps)."""
    out: dict[str, float] = {}
    inside = labels > 0
    for key, values in (("entropy", pred.entropy), ("disagreement", pred.disagreement)):
        out[key] = float(values[inside].mean()) if inside.any() else np.nan
        per = {}
        for name, value in structures.items():
            mask = labels == value
            per[name] = float(values[mask].mean()) if mask.any() else np.nan
            out[f"{key}:{name}"] = per[name]
        finite = [v for v in per.values() if np.isfinite(v)]
        out[f"{key}_worst"] = float(max(finite)) if finite else np.nan
    return out
