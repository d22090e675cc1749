"""Runs: start the demo, a cross-validation or the segmentation of an uploaded exam as a background job,
and watch the jobs (progress bar, log, cancel). Jobs run in their own processes (``spar_core.runs.jobs``), so they
go on when the page is left or the app stops."""

import streamlit as st

import demo_offer
import state
from panels import job_list, run_forms
from spar_core.paths import runs_root

st.title("Runs")
selection = state.current()
data, runs = selection.root, runs_root()
if demo_offer.STARTED_KEY in st.session_state:
    st.toast(f"Started: {st.session_state.pop(demo_offer.STARTED_KEY)}", icon=":material/play_circle:")

demo_offer.offer_demo(runs, data, key="demo_first")

demo_tab, crossval_tab, predict_tab = st.tabs(["Demo", "Cross-validation", "Segment an exam"])
with demo_tab:
    run_forms.demo_ui(runs, data)
with crossval_tab:
    run_forms.crossval_ui(runs, data)
with predict_tab:
    run_forms.predict_ui(runs)

st.subheader("Jobs")
job_list.jobs_ui(runs)
