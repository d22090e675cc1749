"""What the Compare methods page computes from a run's metrics: one exam's rows, each method's panel title and
the metrics table under the figure. metrics.csv itself is read, cached, by :mod:`run_access`."""

from __future__ import annotations

import pandas as pd

import run_access
from run_access import Run
from spar_core.evaluation.report import select
from spar_core.evaluation.significance import METRICS
from spar_core.methods import display_name


def exam_metric_rows(run: Run, case_id: str, postprocessed: bool) -> pd.DataFrame | None:
    """Every method's metrics.csv rows of one exam in display units (:func:`spar_core.evaluation.report.select`:
    method, display, case, fold, structure, dice_pct, ...); None without metrics.csv.

    Raises:
        SparError: an unreadable or invalid metrics.csv.
    """
    metrics = run_access.get_metrics(run)
    return None if metrics is None else select(metrics[metrics["case"] == case_id], postprocessed)


def panel_title(rows: pd.DataFrame | None, method: str) -> str:
    """A method's panel title: its display name, with its mean Dice on the exam when ``rows`` hold it."""
    mine = None if rows is None else rows[rows["method"] == method]
    if mine is None or mine.empty:
        return display_name(method)
    return f"{display_name(method)} · Dice {mine['dice_pct'].mean():.1f} % on this exam"


def metric_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One exam's rows as the page lists them: method (display name), structure, one column per metric (its label)."""
    table = rows[["display", "structure", *(m.name for m in METRICS)]].rename(
        columns={"display": "method", **{m.name: m.label for m in METRICS}})
    table["structure"] = table["structure"].astype(str)
    return table
