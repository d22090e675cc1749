"""Segmentation metrics per structure on 3D masks, distances in mm: Dice, RAVD (%), ASSD and MSSD (mm).

Surfaces and distances (MedPy 0.5.2's, computed faster): :mod:`spar_core.scoring.surface`.

Empty-mask policy (written here and in :func:`structure_metrics`, tested in ``tests/test_metrics.py``):

==========================  =====  ========  ======  ======
case                        Dice   RAVD %    ASSD    MSSD
==========================  =====  ========  ======  ======
both empty                  1      0         0       0
truth empty, prediction not 0      nan       nan     nan
prediction empty, truth not 0      100       nan     nan
==========================  =====  ========  ======  ======

Why: a structure correctly predicted absent is a perfect result. RAVD divides by the true volume, so it is
undefined (nan) when that is 0, and a missed structure has lost 100 % of its volume. A surface distance needs
two surfaces: with one missing there is nothing to measure, and any finite number (or inf) would silently bias
a mean, so it is nan, and :func:`aggregate` reports how many values were undefined instead of hiding them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from spar_core.data.checks import check_spacing
from spar_core.data.voxels import bounding_box, label_boxes, union_box, voxel_ml
from spar_core.errors import SparError
from spar_core.scoring.surface import check_pair, crop_surface_distances
from spar_core.scoring.identity import shifted_structures


METRIC_COLUMNS = ("dice", "ravd_pct", "assd_mm", "mssd_mm")
# The keys of each row of evaluate_labels, in order (spar evaluate prints them as its CSV header).
ROW_COLUMNS = ("structure", "label", *METRIC_COLUMNS, "true_ml", "pred_ml", "shifted_to")


@dataclass(frozen=True)
class StructureMetrics:
    """One structure's scores. ``dice`` in [0, 1], ``ravd`` in %, ``assd`` and ``mssd`` in mm; nan = undefined."""

    dice: float
    ravd: float
    assd: float
    mssd: float


# ---------------------------------------------------------------------------------------------- scores


def _crop_metrics(pred: np.ndarray, truth: np.ndarray, spacing: np.ndarray) -> StructureMetrics:
    """Scores of two bool masks cropped to (at least) the bounding box of their union; the policy lives here."""
    n_pred, n_true = int(np.count_nonzero(pred)), int(np.count_nonzero(truth))
    if n_pred == 0 and n_true == 0:
        return StructureMetrics(dice=1.0, ravd=0.0, assd=0.0, mssd=0.0)
    if n_true == 0:
        return StructureMetrics(dice=0.0, ravd=math.nan, assd=math.nan, mssd=math.nan)
    if n_pred == 0:
        return StructureMetrics(dice=0.0, ravd=100.0, assd=math.nan, mssd=math.nan)
    dice = 2.0 * np.count_nonzero(pred & truth) / (n_pred + n_true)
    ravd = abs(n_pred - n_true) / n_true * 100.0
    d_pt, d_tp = crop_surface_distances(pred, truth, spacing)
    assd = (d_pt.sum() + d_tp.sum()) / (d_pt.size + d_tp.size)
    mssd = max(d_pt.max(), d_tp.max())
    return StructureMetrics(dice=float(dice), ravd=float(ravd), assd=float(assd), mssd=float(mssd))


def structure_metrics(pred_mask: np.ndarray, true_mask: np.ndarray, spacing: Sequence[float]) -> StructureMetrics:
    """Dice, RAVD (%), ASSD (mm) and MSSD (mm) of one structure.

    Args:
        pred_mask: (X, Y, Z) predicted mask; nonzero = structure.
        true_mask: (X, Y, Z) reference mask.
        spacing: voxel size in mm along X, Y, Z.
    Returns:
        :class:`StructureMetrics`; empty masks follow the policy in the module docstring
        (both empty: 1, 0, 0, 0; truth empty: 0, nan, nan, nan; prediction empty: 0, 100, nan, nan).
    Raises:
        SparError: shapes differ (both named), not 3D, or spacing not three positive numbers.
    """
    pred, truth = check_pair(pred_mask, true_mask, "structure_metrics")
    spacing = np.asarray(check_spacing(spacing))
    pred, truth = pred.astype(bool, copy=False), truth.astype(bool, copy=False)
    box = union_box(bounding_box(pred), bounding_box(truth))
    if box is None:
        return _crop_metrics(pred[:0], truth[:0], spacing)
    return _crop_metrics(pred[box], truth[box], spacing)


def evaluate_labels(
    pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float], structures: dict[str, int]
) -> list[dict]:
    """One row of scores per structure of two 3D label volumes.

    Args:
        pred: (X, Y, Z) predicted label volume (integers, 0 = background).
        truth: (X, Y, Z) reference label volume on the same grid.
        spacing: voxel size in mm along X, Y, Z (from the truth's header).
        structures: name -> label value; value 0 (background) is skipped, so ``Dataset.labels`` can be passed.
    Returns:
        Rows ``{"structure", "label", "dice", "ravd_pct", "assd_mm", "mssd_mm", "true_ml", "pred_ml",
        "shifted_to"}`` in the order of ``structures``; volumes in ml; ``shifted_to`` names the structure whose
        truth the prediction overlaps more than its own ("" if none, :mod:`spar_core.scoring.identity`).
        Empty structures follow the module's policy (nan = undefined).
    Raises:
        SparError: shapes differ (both named), not 3D, non-integer labels, bad spacing or label values.
    """
    pred, truth = check_pair(pred, truth, "evaluate_labels")
    spacing = np.asarray(check_spacing(spacing))
    for name, value in structures.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise SparError(f"structures: label {name!r} has value {value!r}; expected an integer ≥ 0")
    wanted = {name: int(v) for name, v in structures.items() if v != 0}
    top = max(wanted.values(), default=0)
    pred_boxes, true_boxes = label_boxes(pred, top), label_boxes(truth, top)
    ml_per_voxel = voxel_ml(spacing)
    shifted = shifted_structures(pred, truth, wanted)
    rows = []
    for name, value in wanted.items():
        box = union_box(pred_boxes[value - 1], true_boxes[value - 1])
        if box is None:
            p = t = np.zeros((0, 0, 0), dtype=bool)
        else:
            p, t = pred[box] == value, truth[box] == value
        m = _crop_metrics(p, t, spacing)
        rows.append({
            "structure": name, "label": value, "dice": m.dice, "ravd_pct": m.ravd, "assd_mm": m.assd,
            "mssd_mm": m.mssd, "true_ml": np.count_nonzero(t) * ml_per_voxel,
            "pred_ml": np.count_nonzero(p) * ml_per_voxel, "shifted_to": shifted[name],
        })
    return rows


def aggregate(rows: Iterable[dict], by: str = "structure") -> list[dict]:
    """Mean and standard deviation of each metric per group (default: per structure), nan handled explicitly.

    Undefined values (nan, see the empty-mask policy) are left out of the mean and counted:
    ``<metric>_n`` is the number of defined values, ``<metric>_undefined`` the number left out, ``n`` the number
    of rows. A group whose values are all undefined has mean and std nan. Std is the sample std (ddof 1; nan
    for one value).
    """
    groups: dict[object, list[dict]] = {}
    for row in rows:
        groups.setdefault(row[by], []).append(row)
    out = []
    for key, members in groups.items():
        summary: dict = {by: key, "n": len(members)}
        for column in METRIC_COLUMNS:
            values = np.asarray([float(r[column]) for r in members], dtype=np.float64)
            defined = values[~np.isnan(values)]
            summary[f"{column}_mean"] = float(defined.mean()) if defined.size else math.nan
            summary[f"{column}_std"] = float(defined.std(ddof=1)) if defined.size > 1 else math.nan
            summary[f"{column}_n"] = int(defined.size)
            summary[f"{column}_undefined"] = int(values.size - defined.size)
        out.append(summary)
    return out

