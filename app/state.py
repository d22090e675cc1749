"""The shared sidebar (data folder, dataset, exam) and the selection it leaves in ``st.session_state``.

``main.py`` draws the sidebar once per run, before the page; pages call :func:`current` and never draw
these widgets themselves. Widget values live under the keys below, so they survive page switches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

import data_access
from spar_core.dataset import Dataset
from spar_core.errors import SparError

ROOT_KEY = "data_root"  # text input: folder holding datasets, inside the configured data root
DATASET_KEY = "dataset"  # selectbox: dataset folder name
EXAM_KEY = "exam"  # selectbox: case id
_SELECTION_KEY = "_selection"
_FRAME_KEY = "_sidebar_drawn"  # set by sidebar(), consumed by current(): did this run draw the sidebar?


@dataclass(frozen=True)
class Selection:
    """What the sidebar selected; ``error`` is the one-line reason when something could not be read."""

    root: Path  # the configured data root: nothing outside it is read
    folder: Path | None  # the folder browsed for datasets (the root or a folder inside it)
    dataset: Dataset | None
    exam: str | None
    error: str | None = None


def _keep_valid(key: str, options: list[str]) -> None:
    """Point a selectbox's stored value at an existing option (the list changes with folder / dataset)."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = options[0]


def sidebar(root: Path) -> Selection:
    """Draw the data folder, dataset and exam pickers in the sidebar; store and return the selection.

    A folder or dataset that cannot be read gives an ``st.error`` with its one-line message on the page.
    """
    selection = Selection(root, None, None, None)
    with st.sidebar:
        st.session_state.setdefault(ROOT_KEY, str(root))
        text = st.text_input("Data folder", key=ROOT_KEY, help=f"A folder inside the data root {root}")
        try:
            folder = data_access.resolve_folder(text, root)
        except SparError as err:
            selection = Selection(root, None, None, None, str(err))
        else:
            selection = _pick_dataset(root, folder)
    if selection.error:
        st.error(selection.error)
    st.session_state[_SELECTION_KEY] = selection
    st.session_state[_FRAME_KEY] = True
    return selection


def _pick_dataset(root: Path, folder: Path) -> Selection:
    names = data_access.list_datasets(folder, root)
    missing = data_access.missing_phantoms(folder)
    if missing and st.button("Generate the built-in phantom exams here", help=", ".join(missing)):
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


def current() -> Selection:
    """The selection the sidebar made in this run (pages call this); draws the sidebar if no frame ran."""
    if st.session_state.pop(_FRAME_KEY, False):
        return st.session_state[_SELECTION_KEY]
    st.set_page_config(page_title="spar", layout="wide")
    selection = sidebar(data_access.bootstrap_if_fresh())
    del st.session_state[_FRAME_KEY]
    return selection
