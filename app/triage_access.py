"""What the Outlier triage page reads from a run, cached: the triage tables ``spar triage`` writes
(``RUN/triage/``), the latent maps of ``spar embed`` (``RUN/embeddings/``), per-exam metrics, and the 3D surface
figure (the one slow thing on the page, cached per prediction file and bone choice).

Every file is read only inside the run folder (also through symlinks), and tables are cached keyed by path and
modification time, as in :mod:`data_access`, so a rerun of ``spar triage`` shows on the next rerun of the page.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from data_access import Run, _mtime, get_metrics
from spar_core.errors import SparError
from spar_core.paths import is_within

TRIAGE_DIR, EMBEDDINGS_DIR = "triage", "embeddings"  # spar_core.triage.ranking / spar_core.latent.embedding (they import torch)
TEXT_COLUMNS = {"case": str, "method": str, "worst_slices": str, "degraded": str, "prediction": str}


def _inside(run: Run, path: Path) -> Path:
    if not is_within(path, run.root):
        raise SparError(f"{path}: outside the run folder {run.root}; the app reads only inside it")
    return path


def _tables(run: Run, prefix: str) -> dict[str, Path]:
    folder = run.root / TRIAGE_DIR
    files = sorted(folder.glob(f"{prefix}_*.csv")) if folder.is_dir() else []
    return {p.stem.removeprefix(f"{prefix}_"): p for p in files if is_within(p, run.root)}


def triage_methods(run: Run) -> dict[str, Path]:
    """Method → ``RUN/triage/triage_<method>.csv`` for every method ``spar triage`` has ranked."""
    return _tables(run, "triage")


def image_tables(run: Run) -> dict[str, Path]:
    """Method → ``RUN/triage/images_<method>.csv`` (new exams ranked by ``spar triage RUN --images DIR``)."""
    return _tables(run, "images")


@st.cache_data(max_entries=16, show_spinner=False)
def _read_table(path: str, stamp: int) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=TEXT_COLUMNS)
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise SparError(f"{path}: unreadable triage table ({err})") from None
    for column in TEXT_COLUMNS:
        if column in table:
            table[column] = table[column].fillna("").astype(str)
    return table


def _read(run: Run, path: Path, needed: tuple[str, ...]) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    table = _read_table(str(_inside(run, path)), _mtime(path))
    missing = [c for c in needed if c not in table]
    if missing:
        raise SparError(f"{path}: missing column(s) {', '.join(missing)}; written by another spar version? "
                        f"Run `spar triage {run.root}` again")
    return table


def get_triage(run: Run, method: str) -> pd.DataFrame | None:
    """``RUN/triage/triage_<method>.csv`` sorted by rank (text columns as str, "" when empty); None if absent.

    Raises:
        SparError: unreadable, outside the run, or missing columns.
    """
    table = _read(run, run.root / TRIAGE_DIR / f"triage_{method}.csv", ("case", "fold", "rank", "triage_score"))
    return None if table is None else table.sort_values("rank", kind="stable").reset_index(drop=True)


def get_images_triage(run: Run, method: str) -> pd.DataFrame | None:
    """``RUN/triage/images_<method>.csv`` sorted by rank; None if absent."""
    table = _read(run, run.root / TRIAGE_DIR / f"images_{method}.csv", ("case", "rank", "triage_score"))
    return None if table is None else table.sort_values("rank", kind="stable").reset_index(drop=True)


def get_spearman(run: Run, method: str) -> pd.DataFrame | None:
    """``RUN/triage/spearman_<method>.csv`` (score, metric, expected, rho, p_value, n); None if absent."""
    return _read(run, run.root / TRIAGE_DIR / f"spearman_{method}.csv", ("score", "metric", "rho", "n"))


def exam_metrics(run: Run, method: str) -> pd.DataFrame | None:
    """Per exam of ``method``: mean post-processed Dice (%) and MSSD (mm) over bones; None without metrics.csv.

    Columns case, dice_pct, mssd_mm (nan-skipping means, as :func:`spar_core.triage.ranking.spearman_table` uses).
    """
    metrics = get_metrics(run)
    if metrics is None:
        return None
    rows = metrics[(metrics["method"].astype(str) == method) & metrics["postprocessed"]]
    per = rows.groupby("case")[["dice", "mssd_mm"]].mean().reset_index()
    per["dice"] = per["dice"] * 100.0
    return per.rename(columns={"dice": "dice_pct"})


def parse_slices(text: str) -> list[int]:
    """A triage table's ``worst_slices`` ("12;3;7") as ints; [] when empty."""
    return [int(part) for part in str(text).split(";") if part.strip().lstrip("-").isdigit()]


# ---------------------------------------------------------------------------------------------- embeddings


@st.cache_data(max_entries=8, show_spinner=False)
def _read_embeddings(path: str, stamp: int) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype={"case": str, "structure": str, "method": str, "embedding": str,
                                        "origin": str})
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise SparError(f"{path}: unreadable embeddings table ({err})") from None


def get_embeddings(run: Run, fold: int) -> pd.DataFrame | None:
    """``RUN/embeddings/fold_<fold>.csv`` (:func:`spar_core.latent.embedding.embed_fold`); None before ``spar embed``."""
    path = run.root / EMBEDDINGS_DIR / f"fold_{fold}.csv"
    if not path.is_file():
        return None
    return _read_embeddings(str(_inside(run, path)), _mtime(path))


# ---------------------------------------------------------------------------------------------- 3D surface


@st.cache_data(max_entries=8, show_spinner="Meshing the bones and measuring their distance to the truth…")
def _surface(_labels: np.ndarray, _truth: np.ndarray | None, spacing: tuple[float, float, float],
             names: tuple[tuple[int, str], ...], structures: tuple[int, ...], key: tuple) -> go.Figure:
    # Keyed by (spacing, names, structures, key); the underscored volumes stay out of the hash (slow to hash).
    from spar_core.figures.triage import surface_mesh_figure

    return surface_mesh_figure(_labels, spacing, dict(names), _truth, structures=list(structures))


def surface_figure(labels: np.ndarray, truth: np.ndarray | None, spacing: tuple[float, float, float],
                   names: dict[int, str], structures: list[int], key: tuple) -> go.Figure:
    """:func:`spar_core.figures.triage.surface_mesh_figure`, cached under ``key`` (which must name the files and
    their modification times the volumes came from)."""
    return _surface(labels, truth, tuple(float(s) for s in spacing), tuple(sorted(names.items())),
                    tuple(sorted(structures)), key)


def file_key(*paths: Path | None) -> tuple:
    """(path, mtime) of each file: a cache key that changes when a file is rewritten."""
    return tuple((str(p), _mtime(p)) if p is not None else ("", 0) for p in paths)


# ---------------------------------------------------------------------------------------------- running


def run_triage(run: Run) -> str:
    """``spar triage RUN`` in this process (default method); returns the table's path. For small runs.

    Raises:
        SparError: anything :func:`spar_core.triage.ranking.write_triage` refuses (nothing trained, no prediction).
    """
    from spar_core.triage.ranking import write_triage  # imports torch and the models

    _, _, path, _ = write_triage(run.root)
    return str(path)
