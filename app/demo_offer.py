"""The first start: on a machine with no run yet the app builds the demo run by itself, in a background job.

:func:`autostart` starts it once per runs root (not again after it was cancelled or failed: then the first page
and the Runs page offer a button, :func:`offer_demo`). :func:`announce` says so on every page while it runs,
with its progress, and reruns the whole app each time a part of the run lands (a method's predictions, the
metrics, the latent maps, the triage), so each page fills as the run grows. The job runs in its own process
(``spar_core.runs.jobs``) and is cancelled on the Runs page. ``SPAR_DEMO_AUTOSTART=0`` turns the autostart off.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from spar_core.runs import jobs
from spar_core.training.names import DEFAULT_PRESET
from spar_core.layout.run_folder import RunFolder, run_folders
from spar_core.errors import SparError

STARTED_KEY = "_job_started"
AUTOSTART_ENV = "SPAR_DEMO_AUTOSTART"


def progress_text(event: dict | None) -> str:
    """One line for a job's progress bar: what runs now, and how far."""
    if event is None:
        return "starting…"
    label = event.get("label") or event["stage"]
    if event["stage"] == "crossval":
        text = f"unit {event['epoch']}/{event['epochs']}: {label}"
    elif event["stage"] == "phantoms":
        text = f"{label}: exam {event['step']} of {event['steps']}"
    else:
        text = f"{label}: epoch {event['epoch']}/{event['epochs']}, step {event['step']}/{event['steps']}"
    loss = event.get("values", {}).get("loss")
    return text + (f", loss {loss:.3g}" if loss is not None else "")


def progress_value(event: dict | None) -> float:
    """The bar's fill in [0, 1]: the run's overall fraction when known, else the current stage's."""
    overall = None if event is None else event.get("overall")
    value = overall if overall is not None else (event or {}).get("fraction", 0.0)
    return min(max(float(value), 0.0), 1.0)


def start_demo(runs: Path, data: Path, preset: str = DEFAULT_PRESET) -> None:
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


def autostart(runs: Path, data: Path) -> None:
    """Start the demo job when the runs root holds no run and no demo job was ever started in it."""
    if os.environ.get(AUTOSTART_ENV, "1") == "0" or run_folders(runs):
        return
    if any(job.info().get("kind") == "demo" for job in jobs.list_jobs(runs)):
        return  # started before (and cancelled, failed, or about to write run.json): the button offers it again
    try:
        jobs.start_demo_job(DEFAULT_PRESET, runs, data)
    except SparError as err:
        st.error(f"Could not start building the demo run: {err}")


def _parts(runs: Path) -> tuple[str, ...]:
    """What the pages show of the demo run so far: its predictions, uncertainty maps, metrics, latent maps,
    triage and report (the files' names)."""
    run = RunFolder(runs / jobs.DEMO_RUN)
    folders = [run.embeddings_dir, run.triage_dir, run.report_dir]
    for fold in run.folds():
        for method in run.methods(fold):
            unit = run.method_folder(fold, method)
            folders += [unit.pred_dir(), unit.pred_dir(raw=True), unit.uncertainty_dir]
    found = [run.metrics_csv] if run.metrics_csv.is_file() else []
    found += [p for folder in folders if folder.is_dir() for p in folder.iterdir()]
    return tuple(sorted(str(p.relative_to(run.root)) for p in found))


def _follow_parts(runs: Path) -> None:
    job = jobs.running_job("demo", runs)
    parts = _parts(runs)
    if job is None or parts != st.session_state.get("_demo_parts", parts):
        st.session_state["_demo_parts"] = parts
        st.rerun(scope="app")  # a part landed (or the job ended): every page reads the run again
    st.session_state["_demo_parts"] = parts
    event = jobs.read_progress(job)
    st.progress(progress_value(event), text="Building the demo run in the background: " + progress_text(event))


def announce(runs: Path) -> None:
    """While the demo job runs: a line on every page, its progress, and a rerun whenever a part of it lands."""
    if jobs.running_job("demo", runs) is None:
        return
    st.info("spar is building the demo run in the background (the four methods on the built-in ankle "
            "phantoms): each page fills as its parts finish. Cancel it on the Runs page.",
            icon=":material/hourglass_top:")
    st.fragment(_follow_parts, run_every=2.0)(runs)


def offer_demo(runs: Path, data: Path, *, key: str) -> None:
    """Without any run in ``runs`` and no demo job running: a button that builds the demo run (the autostart was
    turned off, or its job was cancelled or failed). ``key`` keeps the button distinct on each page."""
    if run_folders(runs) or jobs.running_job("demo", runs) is not None:
        return  # (a running demo job is announced on every page, see announce)
    st.info("No run yet. Build the demo run: the four methods trained and scored on the built-in ankle phantoms "
            "(about six minutes on a laptop CPU), with latent maps and outlier triage. It runs in the background; "
            "this page stays usable meanwhile.")
    if st.button("Build the demo run now", type="primary", key=key):
        start_demo(runs, data)
