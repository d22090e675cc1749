"""The first-launch offer: on a machine with no run yet, build the demo run in a background job and follow it.

Shown on the first page and on the Runs page. The job runs in its own process (``spar_core.runs.jobs``); the
offer polls its progress file once a second in a fragment and reruns the whole app when the run is done,
so the new run appears in the sidebar.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from spar_core.runs import jobs
from spar_core.runs.run_folder import run_folders
from spar_core.errors import SparError

STARTED_KEY = "_job_started"


def progress_text(event: dict | None) -> str:
    """One line for a job's progress bar: what runs now, and how far."""
    if event is None:
        return "starting…"
    label = event.get("label") or event["stage"]
    if event["stage"] == "crossval":
        text = f"unit {event['epoch']}/{event['epochs']}: {label}"
    else:
        text = f"{label}: epoch {event['epoch']}/{event['epochs']}, step {event['step']}/{event['steps']}"
    loss = event.get("values", {}).get("loss")
    return text + (f", loss {loss:.3g}" if loss is not None else "")


def progress_value(event: dict | None) -> float:
    """The bar's fill in [0, 1]: the run's overall fraction when known, else the current stage's."""
    overall = None if event is None else event.get("overall")
    value = overall if overall is not None else (event or {}).get("fraction", 0.0)
    return min(max(float(value), 0.0), 1.0)


def start_demo(runs: Path, data: Path, preset: str = "cpu") -> None:
    """Start the demo job and rerun the page, which then follows it (an error stays on the page)."""
    try:
        job = jobs.start_demo_job(preset, runs, data)
    except SparError as err:
        st.error(str(err))
        return
    announce_started(job)


def announce_started(job: jobs.Job) -> None:
    """Rerun the page once a job started; the next run shows a notice of it (``STARTED_KEY``) and follows it."""
    st.session_state[STARTED_KEY] = job.info().get("title", job.id)
    st.rerun()


def _follow(runs: Path) -> None:
    job = jobs.running_job("demo", runs)
    if job is None:  # it ended: rerun everything, so the sidebar lists the run (or the Runs page the failure)
        st.rerun(scope="app")
    event = jobs.read_progress(job)
    st.progress(progress_value(event), text="Building the demo run: " + progress_text(event))


def offer_demo(runs: Path, data: Path, *, key: str, follow: bool = True) -> None:
    """Without any run in ``runs``: a button that builds the demo run, or the live progress of the one building.

    Does nothing once a run exists. ``key`` keeps the button distinct on each page; ``follow=False`` leaves the
    progress bar to a page that shows its jobs itself.
    """
    if run_folders(runs):
        return
    if jobs.running_job("demo", runs) is not None:
        st.info("The demo run is being built in the background; it appears in the sidebar's run list when it is "
                "done." + (" Its log is on the Runs page." if follow else " See Jobs below."))
        if follow:
            st.fragment(_follow, run_every=1.0)(runs)
        return
    st.info("No run yet. Build the demo run: the four methods trained and scored on the built-in ankle phantoms "
            "(about six minutes on a laptop CPU), with latent maps and outlier triage. It runs in the background; "
            "this page stays usable meanwhile.")
    if st.button("Build the demo run now", type="primary", key=key):
        start_demo(runs, data)
