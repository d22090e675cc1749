"""The table of a study: per cell of its grid (a training-set size, a corruption and severity) and method, the
exam-mean metrics with bootstrap 95 % intervals, and each regularizer's paired difference to the baseline with
its Wilcoxon p, Holm-corrected over the whole grid.

The statistics are those of Table 1 (:mod:`spar_core.evaluation.significance`): exams are the unit (a bootstrap
resamples exams, the Wilcoxon test pairs per-exam means). Rows of an exam seen in several repeats of a cell
(data-efficiency draws) are averaged first, so each exam counts once.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from spar_core.evaluation.report import select
from spar_core.evaluation.significance import ALPHA, METRICS, bootstrap_ci, holm, paired_test
from spar_core.methods import BASELINE, display_name

STUDY_COLUMNS = ["method", "display", "n_exams", "metric", "mean", "ci_low", "ci_high", "diff", "diff_ci_low",
                 "diff_ci_high", "p_value", "p_holm", "significant"]


def study_table(rows: pd.DataFrame, cell: Sequence[str], *, baseline: str = BASELINE, n_boot: int = 2000,
                seed: int = 0) -> pd.DataFrame:
    """One row per (cell, method, metric) of post-processed metric ``rows`` (metrics.csv columns plus the
    ``cell`` columns): ``mean`` over exams (display units) with its bootstrap interval, and for methods other
    than ``baseline`` the paired difference (``diff``, its interval, Wilcoxon ``p_value``, ``p_holm`` over every
    test of the table, ``significant`` at α = 0.05)."""
    out = []
    keys = list(cell)
    for values, part in rows.groupby(keys, sort=True, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        # an exam seen in several repeats counts once: its rows averaged per (method, case, structure)
        merged = (part.groupby(["method", "case", "structure", "label"], as_index=False)
                  [[m.source for m in METRICS]].mean())
        merged["postprocessed"], merged["fold"] = True, 0
        sel = select(merged)
        for method in [str(m) for m in sel["method"].cat.categories if (sel["method"] == m).any()]:
            own = sel[sel["method"] == method]
            for metric in METRICS:
                per_exam = own.groupby("case", observed=True)[metric.name].mean().dropna().to_numpy(float)
                lo, hi = bootstrap_ci(per_exam, np.ones(len(per_exam)), n_boot, seed)
                row = {**dict(zip(keys, values)), "method": method, "display": display_name(method),
                       "n_exams": len(per_exam), "metric": metric.name,
                       "mean": float(per_exam.mean()) if len(per_exam) else np.nan, "ci_low": lo, "ci_high": hi,
                       "diff": np.nan, "diff_ci_low": np.nan, "diff_ci_high": np.nan, "p_value": np.nan}
                if method != baseline and (sel["method"] == baseline).any():
                    test = paired_test(sel, method, metric, baseline, n_boot=n_boot, seed=seed)
                    row.update(diff=test["mean_diff"], diff_ci_low=test["ci_low"], diff_ci_high=test["ci_high"],
                               p_value=test["p_value"])
                out.append(row)
    table = pd.DataFrame(out, columns=[*keys, *STUDY_COLUMNS[:-2]])
    table["p_holm"] = holm(table["p_value"]) if len(table) else []
    table["significant"] = table["p_holm"] < ALPHA
    return table
