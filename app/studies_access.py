"""The Results page's Studies view: where a run's robustness study and the runs folder's data-efficiency studies
are, and their tables (cached under the file's modification time)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from data_access import mtime
from run_access import Run
from spar_core.errors import SparError
from spar_core.paths import is_within
from spar_core.layout.study_folder import ALL, STUDY_FILE, StudyFolder


@st.cache_data(max_entries=8, show_spinner=False)
def _read_table(path: str, stamp: float) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise SparError(f"{path}: unreadable study table ({err})") from None


def robustness_table(run: Run) -> pd.DataFrame | None:
    """The run's robustness table, None until ``spar study robustness`` has finished it."""
    path = StudyFolder.robustness(run.folder).table_csv
    return _read_table(str(path), mtime(path)) if path.is_file() and is_within(path, run.root) else None


def data_efficiency_studies(folder: Path | None, allowed: Path) -> list[Path]:
    """Data-efficiency study folders (holding a study.json of that kind) directly in the runs folder."""
    if folder is None or not folder.is_dir():
        return []
    found = []
    for path in sorted(p for p in folder.iterdir() if (p / STUDY_FILE).is_file() and is_within(p, allowed)):
        try:
            kind = json.loads((path / STUDY_FILE).read_text()).get("kind")
        except (OSError, ValueError, AttributeError):
            continue
        if kind == "data-efficiency":
            found.append(path)
    return found


def study_table(study: Path) -> pd.DataFrame | None:
    """A data-efficiency study's table, None until every cell is complete."""
    path = StudyFolder(study).table_csv
    return _read_table(str(path), mtime(path)) if path.is_file() else None


def cell_of(study: Path, size: float) -> tuple[Path, str]:
    """(the cells folder, the cell's run name) of a point of the curve (the first repeat of that size)."""
    cell = StudyFolder(study).cell(None if int(size) == ALL else int(size), 0)
    return cell.root.parent, cell.root.name
