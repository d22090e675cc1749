"""The Runs page's job list: the latest jobs of the runs root with their progress, result, log and a cancel
button, polled once a second while any runs."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import demo_offer
from spar_core.runs import jobs

MAX_JOBS_SHOWN = 10
LOG_LINES = 40
RUNNING_KEY = "_jobs_running"


def job_ui(job: jobs.Job) -> None:
    """One job: title, state, progress or result (a download when it wrote a file), cancel button and log."""
    info, status = job.info(), jobs.job_status(job)
    with st.container(border=True):
        head, action = st.columns([6, 1])
        head.markdown(f"**{info.get('title', job.id)}**  \nstarted {info.get('started_at', '?')} · {status.message}")
        if not status.done:
            if action.button("Cancel", key=f"cancel_{job.id}"):
                jobs.cancel(job)
                st.rerun()
            event = jobs.read_progress(job)
            st.progress(demo_offer.progress_value(event), text=demo_offer.progress_text(event))
        elif status.state == jobs.OK:
            seconds = info.get("ended", info.get("started", 0.0)) - info.get("started", 0.0)
            where = f" · run {info['run_dir']}" if info.get("run_dir") else ""
            st.progress(1.0, text=f"finished in {seconds:.0f} s{where}")
            output = Path(info["output"]) if info.get("output") else None
            if output is not None and output.is_file():
                action.download_button("Download", data=output.read_bytes, file_name=output.name,
                                       mime="application/gzip", key=f"download_{job.id}")
        elif status.state == jobs.CANCELLED:
            st.warning("Cancelled.")
        else:
            st.error(status.message)
        with st.expander("Log"):
            st.code(jobs.tail_log(job, LOG_LINES) or "(nothing written yet)", language=None)


def _running(shown: list[jobs.Job]) -> set[str]:
    return {job.id for job in shown if not jobs.job_status(job).done}


def _jobs_panel(runs: Path) -> None:
    shown = jobs.list_jobs(runs)[:MAX_JOBS_SHOWN]
    running = _running(shown)
    if running != st.session_state.get(RUNNING_KEY):
        # A job started or ended: rerun the whole page, so polling starts or stops and the sidebar's run
        # list shows a finished run.
        st.session_state[RUNNING_KEY] = running
        st.rerun()
    if not shown:
        st.caption("No job yet.")
    for job in shown:
        job_ui(job)


def jobs_ui(runs: Path) -> set[str]:
    """The job list of ``runs``, rerun every second while a job runs; returns the ids of the running jobs."""
    st.session_state[RUNNING_KEY] = _running(jobs.list_jobs(runs)[:MAX_JOBS_SHOWN])
    st.fragment(_jobs_panel, run_every=1.0 if st.session_state[RUNNING_KEY] else None)(runs)
    return st.session_state[RUNNING_KEY]
