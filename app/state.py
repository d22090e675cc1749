"""The shared sidebar (run, method, data folder, dataset, exam, runs folder) and the selection it leaves in
``st.session_state``.

``main.py`` draws the sidebar once per run, before the page; pages call :func:`current` (or
:func:`require_run`) and never draw these widgets themselves. Widget values live under the keys below, so
they survive page switches.

Choosing a run moves the data pickers to the run's dataset (run.json "dataset") when it lies inside the data
root, and to one of its tested exams; the pickers stay free to browse anything else afterwards.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import streamlit as st
from streamlit.errors import StreamlitAPIException

import data_access
import demo_offer
import run_access
from run_access import Run
from spar_core.data.dataset import Dataset
from spar_core.errors import SparError
from spar_core.methods import display_name
from spar_core.paths import DATASET_JSON, RUNS_ROOT_ENV, is_within, runs_root
from spar_core.runs import jobs

ROOT_KEY = "data_root"  # text input: folder holding datasets, inside the configured data root
DATASET_KEY = "dataset"  # selectbox: dataset folder name
EXAM_KEY = "exam"  # selectbox: case id
RUNS_ROOT_KEY = "runs_root"  # text input: folder holding run folders, inside the configured runs root
RUN_KEY = "run"  # selectbox: run folder name
METHOD_KEY = "method"  # selectbox: method key, shown by its display name
_FOLLOWED_KEY = "_run_followed"  # the run whose dataset the data pickers were last moved to
_SELECTION_KEY = "_selection"
_FRAME_KEY = "_sidebar_drawn"  # set by sidebar(), consumed by current(): did this run draw the sidebar?
_OPEN_KEY = "_open_run"  # (runs folder, run name) another page asked for, applied before the pickers are drawn


@dataclass(frozen=True)
class Selection:
    """What the sidebar selected; ``error`` is the one-line reason when something could not be read."""

    root: Path  # the configured data root: nothing outside it is read
    folder: Path | None  # the folder browsed for datasets (the root or a folder inside it)
    dataset: Dataset | None
    exam: str | None
    error: str | None = None
    run: Run | None = None  # the chosen run folder (config, methods, tested exams)
    method: str | None = None  # a method key of the run ("spar")
    run_error: str | None = None  # why no run could be read (a bad runs folder, an unreadable run.json)
    runs_folder: Path | None = None  # the folder browsed for runs (the runs root or a folder inside it)


def _keep_valid(key: str, options: list[str]) -> None:
    """Point a selectbox's stored value at an existing option (the list changes with folder / dataset)."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = options[0]


def open_run(folder: Path, name: str) -> None:
    """Ask the sidebar to show run ``name`` of runs folder ``folder`` from the next rerun on (a study's cell);
    the caller then switches page."""
    st.session_state[_OPEN_KEY] = (str(folder), name)


def sidebar(root: Path) -> Selection:
    """Draw the run, method, data folder, dataset, exam and runs folder pickers; store and return the selection.

    A folder, dataset or run that cannot be read gives an ``st.error`` with its one-line message on the page.
    """
    pending = st.session_state.pop(_OPEN_KEY, None)
    if pending is not None:  # widgets' values may change only before they are drawn
        st.session_state[RUNS_ROOT_KEY], st.session_state[RUN_KEY] = pending
    with st.sidebar:
        # Drawn top to bottom: run pickers, data pickers, runs folder. Filled in another order: the runs folder
        # decides the runs offered, and a new run moves the data pickers before they are drawn.
        run_box, data_box, folder_box = st.container(), st.container(), st.container()
    with folder_box:
        runs_folder, run_error = _runs_folder(runs_root())
    run, method = None, None
    if runs_folder is not None:
        with run_box:
            run, method, run_error = _pick_run(runs_folder)
    if run is not None:
        _follow(run, root)
    with data_box:
        st.session_state.setdefault(ROOT_KEY, str(root))
        text = st.text_input("Data folder", key=ROOT_KEY, help=f"A folder inside the data root {root}")
        try:
            folder = data_access.resolve_folder(text, root)
        except SparError as err:
            selection = Selection(root, None, None, None, str(err))
        else:
            selection = _pick_dataset(root, folder)
    selection = replace(selection, run=run, method=method, run_error=run_error, runs_folder=runs_folder)
    for error in (selection.error, selection.run_error):
        if error:
            st.error(error)
    st.session_state[_SELECTION_KEY] = selection
    st.session_state[_FRAME_KEY] = True
    return selection


def _pick_dataset(root: Path, folder: Path) -> Selection:
    names = data_access.list_datasets(folder, root)
    missing = data_access.missing_phantoms(folder)
    running = data_access.phantom_job(folder, start=False)
    if (running is not None and not running.done) or (
            missing and st.button("Generate the built-in phantom exams here", help=", ".join(missing))):
        data_access.generate_phantoms_ui(folder)
        names = data_access.list_datasets(folder, root)
    if not names:
        return Selection(root, folder, None, None, f"{folder}: no dataset folder (with a dataset.json) in it")
    _keep_valid(DATASET_KEY, names)
    name = st.selectbox("Dataset", names, key=DATASET_KEY)
    try:
        dataset = data_access.get_dataset(folder / name, root)
    except SparError as err:
        return Selection(root, folder, None, None, str(err))
    cases = [case.case_id for case in dataset.cases]
    _keep_valid(EXAM_KEY, cases)
    exam = st.selectbox("Exam", cases, key=EXAM_KEY)
    st.caption(f"{dataset.name}: {len(cases)} exams, structures {', '.join(dataset.structures)}")
    return Selection(root, folder, dataset, exam)


def _runs_folder(allowed: Path) -> tuple[Path | None, str | None]:
    """The runs folder typed in the sidebar, checked; (None, None) while the default runs root does not exist."""
    st.divider()
    st.session_state.setdefault(RUNS_ROOT_KEY, str(allowed))
    text = st.text_input("Runs folder", key=RUNS_ROOT_KEY, help=f"A folder inside the runs root {allowed} "
                         f"(set {RUNS_ROOT_ENV} to choose another root)")
    if not allowed.exists() and Path(text.strip() or allowed).expanduser().resolve() == allowed:
        return None, None  # a fresh machine: no run yet, nothing wrong
    try:
        return data_access.resolve_folder(text, allowed, what="runs root", env=RUNS_ROOT_ENV), None
    except SparError as err:
        return None, str(err)


def _pick_run(folder: Path) -> tuple[Run | None, str | None, str | None]:
    """Run and method pickers; returns (run, method, error)."""
    names = run_access.list_runs(folder, runs_root())
    if not names:
        st.caption(f"No run in {folder} yet.")
        return None, None, None
    _keep_valid(RUN_KEY, names)
    name = st.selectbox("Run", names, key=RUN_KEY)
    try:
        run = run_access.get_run(folder / name, runs_root())
    except SparError as err:
        return None, None, str(err)
    method = None
    if run.methods:
        _keep_valid(METHOD_KEY, list(run.methods))
        method = st.selectbox("Method", run.methods, key=METHOD_KEY, format_func=display_name)
    config = run.config
    st.caption(f"{config.get('dataset_name') or (run.dataset.name if run.dataset else '?')}, preset "
               f"{config.get('preset', '?')}, folds {config.get('folds', '?')}, {len(run.tested)} tested exams, "
               f"{config.get('status', 'status unknown')}")
    st.divider()
    return run, method, None


def _follow(run: Run, root: Path) -> None:
    """Once per newly chosen run: point the data pickers at its dataset and a tested exam, if readable."""
    if st.session_state.get(_FOLLOWED_KEY) == str(run.root):
        return
    st.session_state[_FOLLOWED_KEY] = str(run.root)
    if run.dataset is None or not is_within(run.dataset, root) or not (run.dataset / DATASET_JSON).is_file():
        return  # pages that need images say why
    st.session_state[ROOT_KEY] = str(run.dataset.parent)
    st.session_state[DATASET_KEY] = run.dataset.name
    if run.tested and st.session_state.get(EXAM_KEY) not in run.tested:
        st.session_state[EXAM_KEY] = next(iter(run.tested))


@contextmanager
def shown_errors(stop: bool = True) -> Iterator[None]:
    """A :class:`SparError` in the block becomes the page's error message (one line, no traceback), and the page
    stops there; with ``stop`` False it goes on after the block."""
    try:
        yield
    except SparError as err:
        st.error(str(err))
        if stop:
            st.stop()


def require_run(selection: Selection) -> Run:
    """The selected run; without one, the page explains how to get one and stops."""
    if selection.run is not None:
        return selection.run
    if selection.run_error is None and jobs.running_job("demo", runs_root()) is not None:
        st.caption("This page fills as soon as the demo run's first parts land (see the progress above).")
    elif selection.run_error is None:  # (an error is already on the page)
        where = selection.runs_folder or runs_root()
        st.info(f"This page needs a run, and there is none in {where} yet. Build the demo run below, or start one "
                f"from a terminal: `spar demo` (writes {runs_root() / 'demo'}) or "
                f"`spar crossval --dataset DIR --out {runs_root()}/NAME`.")
        demo_offer.offer_demo(runs_root(), selection.root, key="demo_offer_required")
        _link_runs_page()  # or from the app, where it has a Runs page
    st.stop()


def _link_runs_page() -> None:
    """A link to the Runs page, when the app has one."""
    if not (Path(__file__).parent / "views" / "runs.py").is_file():
        return
    try:
        st.page_link("views/runs.py", label="Open the Runs page", icon=":material/play_circle:")
    except StreamlitAPIException:  # the file exists but the router does not list it
        pass


def current() -> Selection:
    """The selection the sidebar made in this run (pages call this); draws the sidebar if no frame ran."""
    if st.session_state.pop(_FRAME_KEY, False):
        return st.session_state[_SELECTION_KEY]
    st.set_page_config(page_title="spar", layout="wide")
    selection = sidebar(data_access.bootstrap_if_fresh())
    del st.session_state[_FRAME_KEY]
    return selection
