"""Structure identity: is a predicted structure where *another* structure truly is?

When structures look alike and differ by position (vertebrae L1–L5, left and right bones labelled apart), a
correct shape in the wrong place is the dominant error: the prediction of L3 sits on the true L2, its Dice is 0
and its surface distances one vertebral height, though the shape is right. A structure is **shifted** when its
prediction overlaps the truth of another structure by more voxels than its own truth; an empty prediction is
missing, not shifted.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from spar_core.methods import method_order


def overlap_matrix(pred: np.ndarray, truth: np.ndarray, top: int) -> np.ndarray:
    """M[p, t]: voxels predicted p whose truth is t, for label values 0..top; (top + 1, top + 1) int64."""
    p = np.asarray(pred).ravel()
    t = np.asarray(truth).ravel()
    keep = (p > 0) & (p <= top) & (t <= top)
    joint = p[keep].astype(np.int64) * (top + 1) + t[keep].astype(np.int64)
    return np.bincount(joint, minlength=(top + 1) ** 2).reshape(top + 1, top + 1)


def shifted_structures(pred: np.ndarray, truth: np.ndarray, structures: Mapping[str, int]) -> dict[str, str]:
    """Structure name -> the name of the structure whose truth its prediction overlaps more than its own, or
    "" when it is not shifted (or not predicted at all). Volumes on the same grid, label values as in
    ``structures`` (background 0 skipped)."""
    wanted = {name: int(v) for name, v in structures.items() if int(v) != 0}
    if not wanted:
        return {}
    # the structures' values ranked 1..n (everything else 0): the matrix is (n + 1)², whatever the values
    order = sorted(set(wanted.values()))
    rank = {v: i + 1 for i, v in enumerate(order)}
    matrix = overlap_matrix(_ranked(pred, order), _ranked(truth, order), len(order))
    names = {rank[v]: n for n, v in wanted.items()}
    out = {}
    for name, value in wanted.items():
        own = rank[value]
        others = {r: matrix[own, r] for r in names if r != own}
        best = max(others, key=lambda r: (others[r], -abs(order[r - 1] - value)), default=None)
        out[name] = names[best] if best is not None and others[best] > matrix[own, own] else ""
    return out


def _ranked(labels: np.ndarray, order: list[int]) -> np.ndarray:
    """``labels`` with the values of ``order`` replaced by their rank 1..n and every other value by 0."""
    labels = np.asarray(labels)
    out = np.zeros(labels.shape, dtype=np.int64)
    for i, value in enumerate(order, start=1):
        out[labels == value] = i
    return out


def identity_table(metrics: pd.DataFrame, postprocessed: bool = True) -> pd.DataFrame:
    """Per method: how many (exam, structure) pairs were shifted, over how many, and in how many exams.

    Args:
        metrics: rows of ``metrics.csv`` with a ``shifted_to`` column (empty or nan = not shifted).

    Returns:
        Columns method, pairs, shifted, shifted_pct, exams, exams_with_shift, shifted_exams ("case: L3→L2, …"
        per exam, ";"-separated); where the rows carry the level model's call (``level_unknown``), also
        level_unknown (exams flagged), shifted_flagged and shifted_confident (exams with a shift, flagged or not:
        the second is what must not happen); where they carry the truth's anchors in view (``anchor_in_view``),
        shifted_last_in_view and shifted_first_in_view (exams with a shift though the structure beyond that end
        of the row was in view). Empty when the table has no ``shifted_to`` column (an older run).
    """
    columns = ["method", "pairs", "shifted", "shifted_pct", "exams", "exams_with_shift", "shifted_exams"]
    flags = "level_unknown" in metrics
    anchors = "anchor_in_view" in metrics
    if flags:
        columns += ["level_unknown", "shifted_flagged", "shifted_confident"]
    if anchors:
        columns += ["shifted_last_in_view", "shifted_first_in_view"]
    if "shifted_to" not in metrics:
        return pd.DataFrame(columns=columns)
    rows = metrics[metrics["postprocessed"] == postprocessed] if "postprocessed" in metrics else metrics
    raw = rows["shifted_to"].astype(object)  # all-empty columns read back from csv as float nan
    target = raw.where(raw.notna(), "").astype(str).str.strip()
    rows = rows.assign(shifted_to=target, is_shifted=target != "")
    out = []
    for method in method_order([str(m) for m in rows["method"].unique()]):
        group = rows[rows["method"].astype(str) == method]
        hits = group[group["is_shifted"]]
        per_exam = {case: ", ".join(f"{s}→{t}" for s, t in zip(g["structure"], g["shifted_to"]))
                    for case, g in hits.groupby("case", sort=True)}
        row = {"method": method, "pairs": len(group), "shifted": len(hits),
               "shifted_pct": 100.0 * len(hits) / len(group) if len(group) else float("nan"),
               "exams": group["case"].nunique(), "exams_with_shift": hits["case"].nunique(),
               "shifted_exams": "; ".join(f"{c}: {v}" for c, v in per_exam.items())}
        shifted = set(hits["case"])
        if flags:
            flagged = set(group.loc[group["level_unknown"].map(is_true), "case"])
            row.update(level_unknown=len(flagged), shifted_flagged=len(shifted & flagged),
                       shifted_confident=len(shifted - flagged))
        if anchors:
            seen = group.drop_duplicates("case").set_index("case")["anchor_in_view"].astype(str)
            row.update(shifted_last_in_view=sum(seen.get(c) in ("last", "both") for c in shifted),
                       shifted_first_in_view=sum(seen.get(c) in ("first", "both") for c in shifted))
        out.append(row)
    return pd.DataFrame(out, columns=columns)


def is_true(value: object) -> bool:
    """A flag as a table holds it: True, 1 or the text true / 1 / 1.0 / yes (any case); empty, NaN or anything
    else is false."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "1.0", "yes")
    try:
        return bool(value == 1)  # True, 1, 1.0 (a NaN is not 1)
    except (TypeError, ValueError):
        return False
