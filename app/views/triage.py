"""Outlier triage: the run's held-out exams ranked by how suspicious their predictions look (no label needed),
then for one exam its worst slices, its shape codes in the latent map and its bones in 3D against the truth."""

import streamlit as st

import run_access
import state
import triage_access
from panels import triage_exam, triage_ranking
from spar_core.methods import display_name

st.title("Outlier triage")
selection = state.current()
run = state.require_run(selection)

triaged = run_access.triage_tables(run, "triage")
if not triaged:
    triage_ranking.no_triage_ui(run)
    st.stop()
method = triage_access.shown_method(triaged, selection.method)
with state.shown_errors():
    table = run_access.get_triage_table(run, "triage", method)
    spearman = run_access.get_triage_table(run, "spearman", method)
if table.empty:
    st.info(f"{triaged[method]} ranks no exam; run `spar triage {run.root}` again.")
    st.stop()

triage_ranking.summary_ui(run, table, method, selection.method)
triage_ranking.ranking_ui(run, table, method)
triage_ranking.spearman_ui(spearman)
triage_ranking.new_exams_ui(run)

st.subheader("One exam")
case, post = triage_exam.pickers_ui(table)
row = table.set_index("case").loc[case]
fold = int(row["fold"])
view = triage_access.exam_view(run, selection.root, selection.dataset, method, case, fold, post)
masks = f"{display_name(method)}, {'post-processed' if post else 'raw'}"

slices_tab, uncertainty_tab, latent_tab, surface_tab = st.tabs(["Worst slices", "Uncertainty", "Latent map",
                                                                "3D surface"])
with slices_tab:
    triage_exam.worst_slices_ui(run, view, case, row["worst_slices"], masks)
with uncertainty_tab:
    triage_exam.uncertainty_ui(run, view, case, fold, method, row["worst_slices"])
with latent_tab:
    triage_exam.latent_ui(run, view, case, fold, method)
with surface_tab:
    triage_exam.surface_ui(run, view, case, masks)
