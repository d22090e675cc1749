"""The Runs page's forms: start the demo run, a cross-validation, or the segmentation of an uploaded exam, each
as a background job (:mod:`spar_core.runs.jobs`); a started job is announced and followed by the page."""

from __future__ import annotations

import os
import re
from pathlib import Path

import streamlit as st

import data_access
import demo_offer
import run_access
from spar_core.data.splits import make_splits
from spar_core.errors import SparError
from spar_core.methods import METHODS
from spar_core.runs import jobs, uploads
from spar_core.training.names import DEFAULT_PRESET, PRESET_NAMES
from spar_core.paths import NIFTI_SUFFIX

FOLD_CHOICES = ["holdout", "loo", "2", "3", "4", "5", "10"]
UPLOAD_KEY, STAGED_KEY = "predict_upload", "_predict_staged"
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def demo_ui(runs: Path, data: Path) -> None:
    """The demo run: a preset and a button."""
    st.caption("The four methods on the built-in ankle phantoms, one hold-out split, then the report. "
               f"Written to {runs / jobs.DEMO_RUN}.")
    preset = st.selectbox("Preset", [DEFAULT_PRESET, "tiny"], key="demo_preset",
                          help="cpu: a few minutes on two cores; tiny: about a minute, a smoke run")
    if st.button("Build the demo run", key="demo_start"):
        demo_offer.start_demo(runs, data, preset)


def crossval_ui(runs: Path, data: Path) -> None:
    """A cross-validation of a dataset of the data root: methods, folds, preset and run name in one form."""
    names = data_access.list_datasets(data, data)
    if not names:
        st.info(f"No dataset in the data root {data}.")
        return
    with st.form("crossval"):
        name = st.selectbox("Dataset", names)
        methods = st.multiselect("Methods", list(METHODS), default=list(METHODS))
        folds = st.selectbox("Folds", FOLD_CHOICES, help="holdout, loo (leave one patient out) or K folds")
        preset = st.selectbox("Preset", list(PRESET_NAMES), index=PRESET_NAMES.index(DEFAULT_PRESET))
        workers = st.number_input("Worker processes", min_value=1, max_value=max(1, os.cpu_count() or 1), value=1,
                                  help="trainings side by side, each with its share of the cores: on a CPU, two "
                                       "one-thread workers train ≈ 1.3× the steps of one two-thread process")
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
                          "--preset", preset, "--out", out, "--workers", str(int(workers))],
                         title=f"Cross-validation {run_name} ({name}, {folds}, {preset})", run_dir=out, root=runs)
        demo_offer.announce_started(job)
    except SparError as err:
        st.error(str(err))


def staged_upload(runs: Path, max_mb: int) -> Path | None:
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


def predict_ui(runs: Path) -> None:
    """The segmentation of an uploaded exam by a trained model of a run (run, fold, method pickers)."""
    image = staged_upload(runs, int(st.get_option("server.maxUploadSize")))
    models = run_access.trained_models(runs)
    if not models:
        st.info("No trained model yet: build the demo run or a cross-validation first.")
        return
    run_name = st.selectbox("Run", list(models), key="predict_run")
    fold = st.selectbox("Fold", list(models[run_name]), key="predict_fold")
    method = st.selectbox("Method", models[run_name][fold], key="predict_method")
    if st.button("Segment the exam", key="predict_start", disabled=image is None):
        case = image.name.removesuffix(".gz").removesuffix(".nii")
        out = image.parent / f"{case}_{method}_fold{fold}{NIFTI_SUFFIX}"
        try:
            job = jobs.start(["predict", runs / run_name, "--method", method, "--fold", fold,
                              "--image", image, "--out", out],
                             title=f"Segment {image.name} ({run_name}, {method}, fold {fold})", output=out,
                             root=runs)
            demo_offer.announce_started(job)
        except SparError as err:
            st.error(str(err))
