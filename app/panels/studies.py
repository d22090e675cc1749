"""The Results page's Studies view: the run's robustness curves, and the data-efficiency curves of the studies
in the runs folder; a click on a point of a data-efficiency curve opens that cell's run in the compare page."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import state
import studies_access
from run_access import Run
from spar_core.data.corruptions import CORRUPTIONS
from spar_core.errors import SparError
from spar_core.evaluation.significance import METRICS
from spar_core.figures.studies import efficiency_curves, robustness_curves
from spar_core.layout.study_folder import StudyFolder

METRIC_KEY, CORRUPTION_KEY, STUDY_KEY = "studies_metric", "studies_corruption", "studies_study"
CURVE_KEY = "studies_curve"


def _metric_ui() -> str:
    labels = {m.name: m.label for m in METRICS}
    return st.segmented_control("Metric", list(labels), format_func=labels.get, default="dice_pct",
                                key=METRIC_KEY, required=True) or "dice_pct"


def studies_ui(run: Run, runs_folder: Path | None, allowed: Path) -> None:
    """Both studies' curves, or what command writes them."""
    metric = _metric_ui()
    st.markdown("**Robustness** — this run's models on their held-out exams, corrupted")
    try:
        table = studies_access.robustness_table(run)
    except SparError as err:
        st.error(str(err))
        table = None
    if table is None:
        st.info(f"No robustness study of this run yet: `spar study robustness {run.root}` writes it.")
    else:
        kinds = [k for k in CORRUPTIONS if k in set(table["corruption"])]
        kind = st.segmented_control("Corruption", kinds, default=kinds[0], key=CORRUPTION_KEY, required=True)
        kind = kind or kinds[0]
        st.plotly_chart(robustness_curves(table, kind, metric), width="stretch")
        st.caption("Mean over the held-out exams, band: 95 % bootstrap interval over exams; baseline dashed. "
                   "The paired differences to the baseline and their Holm-corrected p are in "
                   f"{StudyFolder.robustness(run.folder).table_csv}.")
    st.markdown("**Data efficiency** — the studies in the runs folder")
    studies = studies_access.data_efficiency_studies(runs_folder, allowed)
    if not studies:
        st.info("No data-efficiency study in the runs folder: `spar study data-efficiency --dataset DIR "
                "--out RUNS/my_study` writes one.")
        return
    study = st.selectbox("Study", studies, key=STUDY_KEY, format_func=lambda p: p.name)
    table = studies_access.study_table(study)
    if table is None:
        st.info(f"{study.name} is not complete yet: run the command again (it resumes) or its other shards.")
        return
    figure = efficiency_curves(table, metric, title=study.name)
    event = st.plotly_chart(figure, width="stretch", on_select="rerun", selection_mode="points", key=CURVE_KEY)
    st.caption("Click a point to open that cell's run (first draw of that size) in the compare page.")
    points = event.selection.points if event else []
    if points:
        folder, name = studies_access.cell_of(study, float(points[0]["x"]))
        state.open_run(folder, name)
        st.switch_page("views/compare.py")
