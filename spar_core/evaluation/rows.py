"""The metric rows of one exam, as every run, study and bench writes them to ``metrics.csv``: the keys that say
where the exam was scored (case, fold, method, ...), then one row per structure of
:func:`~spar_core.scoring.metrics.evaluate_labels`."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from spar_core.scoring.metrics import evaluate_labels
from spar_core.postprocessing.settings import DEFAULT_CONNECTIVITY
from spar_core.postprocessing.components import count_components


def metric_rows(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float], structures: Mapping[str, int],
                keys: Mapping[str, Any], *, postprocessed: bool | None = None, raw: np.ndarray | None = None,
                connectivity: int = DEFAULT_CONNECTIVITY) -> list[dict[str, Any]]:
    """``keys`` followed by the metrics of each structure of ``pred`` against ``truth`` (mm from ``spacing``);
    with ``postprocessed``, that flag; with ``raw`` (the prediction before post-processing), how many connected
    components (``connectivity`` 1–3) each structure had there (``n_components_raw``)."""
    rows = []
    for row in evaluate_labels(pred, truth, spacing, dict(structures)):
        out = {**keys, **row}
        if postprocessed is not None:
            out["postprocessed"] = postprocessed
        if raw is not None:
            out["n_components_raw"] = count_components(raw == row["label"], connectivity)
        rows.append(out)
    return rows
