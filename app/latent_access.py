"""What the Latent convergence page reads, cached: a run fold's latent maps, its convergence table and the
latent distance of every code pair.

Like :mod:`data_access`, every loader is keyed by file path and modification time, so a fold that ``spar
embed`` (re)writes is read again on the next rerun, and a widget change only rebuilds a figure. Every file
read lies inside the run folder (symlinks resolved); anything else is a :class:`SparError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from data_access import Run, _mtime
from spar_core.errors import SparError
from spar_core.paths import is_within

POINT_SEPARATOR = " · "


def _inside(path: Path, run: Run) -> Path:
    if not is_within(path, run.root):
        raise SparError(f"{path}: outside the run folder {run.root}; the app reads only inside it")
    return path


def run_folds(run: Run) -> list[int]:
    """The run's folds (``folds/<k>/split.json``), in order."""
    from spar_core.runs.run_folder import RunFolder

    return RunFolder(run.root).folds()


def embeddings_file(run: Run, fold: int) -> Path:
    """``RUN/embeddings/fold_<fold>.csv``, written by ``spar embed``."""
    from spar_core.runs.run_folder import RunFolder

    return RunFolder(run.root).embeddings_path(fold)


def _snapshot_stamp(run: Run, fold: int) -> tuple[tuple[str, int], ...]:
    """(path relative to the run, mtime) of each latent snapshot of ``fold``: a new epoch invalidates."""
    paths = sorted(run.root.glob(f"folds/{fold}/*/latent/epoch_*.npz"))
    return tuple((str(_inside(p, run).relative_to(run.root)), _mtime(p)) for p in paths)


@st.cache_data(max_entries=8, show_spinner=False)
def _load_embeddings(path: str, stamp: int) -> pd.DataFrame:
    from spar_core.latent.embedding import read_embeddings

    return read_embeddings(path)


def get_embeddings(run: Run, fold: int) -> pd.DataFrame | None:
    """The fold's embedding table (:data:`spar_core.latent.embedding.COLUMNS`); None until ``spar embed`` wrote it.

    Raises:
        SparError: the file lies outside the run folder, or is unreadable / lacks columns.
    """
    path = embeddings_file(run, fold)
    if not path.is_file():
        return None
    return _load_embeddings(str(_inside(path, run)), _mtime(path))


@st.cache_data(max_entries=8, show_spinner=False)
def _load_convergence(path: str, stamp: int) -> pd.DataFrame:
    from spar_core.latent.convergence import read_convergence

    return read_convergence(path)


@st.cache_data(max_entries=8, show_spinner="Reading the latent snapshots…")
def _snapshot_tables(root: str, fold: int, stamp: tuple[tuple[str, int], ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    from spar_core.latent.convergence import convergence_from_snapshots, pair_distances
    from spar_core.latent.embedding import load_snapshots

    snaps = load_snapshots(root, fold)
    pairs = snaps.frame[["method", "epoch", "structure", "case", "slice"]].assign(distance=pair_distances(snaps))
    return convergence_from_snapshots(snaps), pairs


def get_convergence(run: Run, fold: int) -> pd.DataFrame | None:
    """The fold's convergence table (:data:`spar_core.latent.convergence.COLUMNS`): the csv ``spar embed`` wrote, or
    computed from the snapshots (a fraction of a second) when there is none yet; None without snapshots.

    Raises:
        SparError: a file outside the run folder, an unreadable table or snapshot.
    """
    from spar_core.runs.run_folder import RunFolder

    path = RunFolder(run.root).convergence_path(fold)
    if path.is_file():
        return _load_convergence(str(_inside(path, run)), _mtime(path))
    stamp = _snapshot_stamp(run, fold)
    return _snapshot_tables(str(run.root), fold, stamp)[0] if stamp else None


def get_pair_distances(run: Run, fold: int) -> pd.DataFrame | None:
    """‖ẑ − z‖ of every code pair of every snapshot of ``fold``: method, epoch, structure, case, slice,
    distance (latent units); None without snapshots.

    Raises:
        SparError: a snapshot outside the run folder or unreadable.
    """
    stamp = _snapshot_stamp(run, fold)
    return _snapshot_tables(str(run.root), fold, stamp)[1] if stamp else None


def point_label(case: str, index: int, structure: str) -> str:
    """How the point picker shows a code pair: ``"ankle_000 · slice 12 · talus"``."""
    return POINT_SEPARATOR.join([str(case), f"slice {int(index)}", str(structure)])


def point_options(rows: pd.DataFrame) -> dict[str, tuple[str, int, str]]:
    """Label -> (case, slice, structure) of every code pair in some embedding-table rows, in table order."""
    pairs = rows[["case", "slice", "structure"]].drop_duplicates()
    return {point_label(c, s, b): (str(c), int(s), str(b)) for c, s, b in pairs.itertuples(index=False)}


def clicked_point(state: Any) -> tuple[str, int] | None:
    """(point label, epoch) of the first point of a ``st.plotly_chart`` selection state, or None.

    The scatter's points carry customdata (case, slice, structure, origin, epoch).
    """
    try:
        points = state["selection"]["points"]
        case, index, structure, _, epoch = points[0]["customdata"]
        return point_label(case, int(index), structure), int(epoch)
    except (KeyError, IndexError, TypeError, ValueError):
        return None
