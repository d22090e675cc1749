"""Runs: start the demo, a cross-validation or the segmentation of an uploaded exam as a background job,
and watch the jobs (progress bar, log, cancel). Jobs run in their own processes (``spar_core.runs.jobs``), so they
go on when the page is left or the app stops."""

import re
from pathlib import Path

import streamlit as st

import data_access
import demo_offer
import state
from spar_core.runs import jobs, uploads
from spar_core.errors import SparError
from spar_core.paths import runs_root
from spar_core.training.presets import PRESETS
from spar_core.methods import METHODS
from spar_core.runs.run_folder import RunFolder, run_folders
from spar_core.data.splits import make_splits

MAX_JOBS_SHOWN = 10
LOG_LINES = 40
FOLD_CHOICES = ["holdout", "loo", "2", "3", "4", "5", "10"]
UPLOAD_KEY, STAGED_KEY, RUNNING_KEY = "predict_upload", "_predict_staged", "_jobs_running"
STARTED_KEY = demo_offer.STARTED_KEY
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

st.title("Runs")
selection = state.current()
data = selection.root
runs = runs_root()
if STARTED_KEY in st.session_state:
    st.toast(f"Started: {st.session_state.pop(STARTED_KEY)}", icon=":material/play_circle:")


# ---------------------------------------------------------------------------------------------- start


def demo_ui() -> None:
    st.caption("The four methods on the built-in ankle phantoms, one hold-out split, then the report. "
               f"Written to {runs / jobs.DEMO_RUN}.")
    preset = st.selectbox("Preset", ["cpu", "tiny"], key="demo_preset",
                          help="cpu: a few minutes on two cores; tiny: about a minute, a smoke run")
    if st.button("Build the demo run", key="demo_start"):
        demo_offer.start_demo(runs, data, preset)


def crossval_ui() -> None:
    names = data_access.list_datasets(data, data)
    if not names:
        st.info(f"No dataset in the data root {data}.")
        return
    with st.form("crossval"):
        name = st.selectbox("Dataset", names)
        methods = st.multiselect("Methods", list(METHODS), default=list(METHODS))
        folds = st.selectbox("Folds", FOLD_CHOICES, help="holdout, loo (leave one patient out) or K folds")
        preset = st.selectbox("Preset", list(PRESETS), index=list(PRESETS).index("cpu"))
        run_name = st.text_input("Run name", placeholder="default: <dataset>-<preset>",
                                 help=f"a folder in the runs root {runs}; an existing run is continued")
        submitted = st.form_submit_button("Start the cross-validation")
    if not submitted:
        return
    run_name = run_name.strip() or f"{name}-{preset}"
    if not methods:
        st.error("Methods: pick at least one method.")
        return
    if not _RUN_NAME.fullmatch(run_name):
        st.error(f"Run name {run_name!r}: use letters, digits, '.', '_' and '-' (not starting with '.' or '-').")
        return
    try:
        dataset = data_access.get_dataset(data / name, data)
        make_splits([case.case_id for case in dataset.cases], folds)  # a bad K fails here, not in the job
        out = runs / run_name
        job = jobs.start(["crossval", "--dataset", dataset.root, "--methods", ",".join(methods), "--folds", folds,
                          "--preset", preset, "--out", out],
                         title=f"Cross-validation {run_name} ({name}, {folds}, {preset})", run_dir=out, root=runs)
        demo_offer.announce_started(job)
    except SparError as err:
        st.error(str(err))


def trained_models() -> dict[str, dict[int, list[str]]]:
    """run name -> fold -> methods with a trained model, for the runs that have any."""
    found = {}
    for path in run_folders(runs):
        run = RunFolder(path)
        by_fold = {fold: run.methods(fold) for fold in run.folds()}
        by_fold = {fold: methods for fold, methods in by_fold.items() if methods}
        if by_fold:
            found[path.name] = by_fold
    return found


def staged_upload(max_mb: int) -> Path | None:
    """The uploaded exam, saved and validated once per upload; an ``st.error`` when it is not usable."""
    upload = st.file_uploader("Exam to segment (3D NIfTI)", type=["nii", "nii.gz"], key=UPLOAD_KEY,
                              help=f"up to {max_mb} MB; saved under {runs / uploads.UPLOADS_FOLDER}")
    if upload is None:
        return None
    file_id, result = st.session_state.get(STAGED_KEY, (None, None))
    if file_id != upload.file_id:
        try:
            result = uploads.stage_upload(upload.name, upload.getvalue(), runs, max_bytes=max_mb * 2**20)
        except SparError as err:
            result = str(err)
        st.session_state[STAGED_KEY] = (upload.file_id, result)
    if isinstance(result, str):
        st.error(result)
        return None
    st.caption(f"{upload.name}: a valid NIfTI image, saved as {result}")
    return result


def predict_ui() -> None:
    image = staged_upload(int(st.get_option("server.maxUploadSize")))
    models = trained_models()
    if not models:
        st.info("No trained model yet: build the demo run or a cross-validation first.")
        return
    run_name = st.selectbox("Run", list(models), key="predict_run")
    fold = st.selectbox("Fold", list(models[run_name]), key="predict_fold")
    method = st.selectbox("Method", models[run_name][fold], key="predict_method")
    if st.button("Segment the exam", key="predict_start", disabled=image is None):
        case = image.name.removesuffix(".gz").removesuffix(".nii")
        out = image.parent / f"{case}_{method}_fold{fold}.nii.gz"
        try:
            job = jobs.start(["predict", "--run", runs / run_name, "--method", method, "--fold", fold,
                              "--image", image, "--out", out],
                             title=f"Segment {image.name} ({run_name}, {method}, fold {fold})", output=out,
                             root=runs)
            demo_offer.announce_started(job)
        except SparError as err:
            st.error(str(err))


demo_offer.offer_demo(runs, data, key="demo_first", follow=False)

demo_tab, crossval_tab, predict_tab = st.tabs(["Demo", "Cross-validation", "Segment an exam"])
with demo_tab:
    demo_ui()
with crossval_tab:
    crossval_ui()
with predict_tab:
    predict_ui()


# ---------------------------------------------------------------------------------------------- watch


def job_ui(job: jobs.Job) -> None:
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


def jobs_panel() -> None:
    shown = jobs.list_jobs(runs)[:MAX_JOBS_SHOWN]
    running = {job.id for job in shown if not jobs.job_status(job).done}
    if running != st.session_state.get(RUNNING_KEY):
        # A job started or ended: rerun the whole page, so polling starts or stops and the sidebar's run
        # list shows a finished run.
        st.session_state[RUNNING_KEY] = running
        st.rerun()
    if not shown:
        st.caption("No job yet.")
    for job in shown:
        job_ui(job)


st.subheader("Jobs")
st.session_state[RUNNING_KEY] = {job.id for job in jobs.list_jobs(runs)[:MAX_JOBS_SHOWN]
                                 if not jobs.job_status(job).done}
st.fragment(jobs_panel, run_every=1.0 if st.session_state[RUNNING_KEY] else None)()
