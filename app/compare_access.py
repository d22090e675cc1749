"""What the Compare methods page computes from a run's metrics: one exam's rows, each method's panel title and
the metrics table under the figure. metrics.csv itself is read, cached, by :mod:`run_access`."""

from __future__ import annotations

import pandas as pd

import run_access
from run_access import Run
from spar_core.errors import SparError
from spar_core.evaluation.report import select
from spar_core.paths import read_json_object
from spar_core.postprocessing.levels import LevelCall
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


def level_lines(run: Run, fold: int, case_id: str) -> list[tuple[str, str, bool]]:
    """(method's display name, what its level call says, whether the level is unknown) for each method whose
    prediction of the exam the run ordered by its level model; a record it cannot read says so in its line."""
    names = [str(n) for n in run.config.get("labels", {}) if str(n) != "background"]
    first, last = (names[0], names[-1]) if len(names) > 1 else ("the first", "the last")
    lines = []
    for method in run.methods:
        path = run.folder.method_folder(fold, method).level_evidence(case_id)
        if not path.is_file():
            continue
        try:
            call = LevelCall.from_json(read_json_object(path, "a level call").get("call"), str(path))
        except SparError as err:
            lines.append((display_name(method), f"level call unreadable: {err}", True))
            continue
        lines.append((display_name(method), call.describe(first, last), call.unknown))
    return lines
