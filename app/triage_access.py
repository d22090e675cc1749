"""What the Outlier triage page computes from a run's tables: the ranked table with each exam's metrics, the
Spearman table with its agreement flags, one exam's image, truth and prediction, the 3D surface figure (the one
slow thing on the page, cached per prediction file and bone choice), and the triage run in this process.

The triage tables, metrics, maps and predictions themselves are read, cached, by :mod:`run_access`.
:mod:`spar_core.triage.exams` imports torch: it is imported only where the triage runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import data_access
import run_access
from data_access import Exam
from run_access import Run
from spar_core.data.dataset import Dataset
from spar_core.errors import SparError
from spar_core.methods import SPAR
from spar_core.triage.ranking import SCORES, SPEARMAN_COLUMNS, TABLE_LEAD, TABLE_TAIL, exam_means


def shown_method(triaged: dict[str, Path] | list[str], sidebar_method: str | None) -> str:
    """The method whose triage the page shows: the sidebar's when it has been triaged, else SPAR, else the first."""
    return next(m for m in (sidebar_method, SPAR, *triaged) if m in triaged)


def per_exam_means(run: Run, method: str) -> pd.DataFrame | None:
    """Per exam of ``method``: mean post-processed Dice (%) and MSSD (mm) over bones; None without metrics.csv.

    Columns case, dice_pct, mssd_mm (:func:`spar_core.triage.ranking.exam_means`, as the Spearman table uses).

    Raises:
        SparError: an unreadable or invalid metrics.csv.
    """
    metrics = run_access.get_metrics(run)
    if metrics is None:
        return None
    means = exam_means(metrics)
    per = means.loc[means["method"].astype(str) == method, ["case", "dice", "mssd_mm"]].reset_index(drop=True)
    return per.assign(dice=per["dice"] * 100.0).rename(columns={"dice": "dice_pct"})


def ranked_with_metrics(table: pd.DataFrame, per_exam: pd.DataFrame | None) -> pd.DataFrame:
    """The triage table as the page lists it: rank, case, fold, triage score, the exam's Dice and MSSD (when the
    run has metrics), the scores, degraded, worst slices."""
    shown = table.merge(per_exam, on="case", how="left") if per_exam is not None else table.copy()
    columns = [*TABLE_LEAD, *(["dice_pct", "mssd_mm"] if per_exam is not None else []),
               *(s for s in SCORES if s in shown), *TABLE_TAIL]
    return shown[columns]


def spearman_with_agreement(spearman: pd.DataFrame) -> pd.DataFrame:
    """The Spearman table's score, metric, expected, rho, p_value, n and ``as_expected``: whether ρ has the
    expected sign (None where ρ is undefined)."""
    agrees = [None if pd.isna(r) else bool(r < 0 if e == "negative" else r > 0)
              for r, e in zip(spearman["rho"], spearman["expected"])]
    return spearman[SPEARMAN_COLUMNS[1:]].assign(as_expected=agrees)


def parse_slices(text: str) -> list[int]:
    """A triage table's ``worst_slices`` ("12;3;7") as ints; [] when empty."""
    return [int(part) for part in str(text).split(";") if part.strip().lstrip("-").isdigit()]


# ---------------------------------------------------------------------------------------------- one exam


@dataclass(frozen=True)
class ExamView:
    """One triaged exam as its tabs need it; ``error`` says why the image or the prediction cannot be shown."""

    exam: Exam | None  # image and truth, from the run's dataset
    names: dict[int, str]  # label value -> bone name (from the dataset, else from run.json)
    volume: np.ndarray | None  # the prediction, None when absent or unreadable
    where: Path  # the prediction's file
    truth_path: Path | None  # the truth's file (a cache key of the surface figure)
    error: str | None


def exam_view(run: Run, allowed: Path, shown: Dataset | None, method: str, case: str, fold: int,
              post: bool) -> ExamView:
    """Image, truth and ``method``'s prediction of one exam (``allowed``, ``shown``: the data root and the sidebar's
    dataset); the latent map needs none of them, so a failure is returned as ``error``, not raised."""
    exam, truth_path, error = None, None, None
    names = {int(v): str(k) for k, v in (run.config.get("labels") or {}).items() if int(v)}
    try:
        dataset = run_access.run_dataset(run, allowed, shown)
        exam = data_access.get_exam(dataset, case)
        names = {value: name for name, value in dataset.structures.items()}
        truth_path = dataset.case(case).label_path
    except SparError as err:
        error = str(err)
    try:
        volume = run_access.get_prediction(run, fold, method, case, raw=not post,
                                           shape=None if exam is None else exam.image.shape)
    except SparError as err:
        volume, error = None, str(err)
    return ExamView(exam, names, volume, run.folder.prediction_path(fold, method, case, raw=not post), truth_path,
                    error)


# ---------------------------------------------------------------------------------------------- 3D surface


@st.cache_data(max_entries=8, show_spinner="Meshing the bones and measuring their distance to the truth…")
def _surface(_labels: np.ndarray, _truth: np.ndarray | None, spacing: tuple[float, float, float],
             names: tuple[tuple[int, str], ...], structures: tuple[int, ...], key: tuple) -> go.Figure:
    # Keyed by (spacing, names, structures, key); the underscored volumes stay out of the hash (slow to hash).
    from spar_core.figures.surface import surface_mesh_figure

    return surface_mesh_figure(_labels, spacing, dict(names), _truth, structures=list(structures))


def surface_figure(view: ExamView, structures: list[int]) -> go.Figure:
    """:func:`spar_core.figures.surface.surface_mesh_figure` of the view's prediction against its truth, cached
    under the two files and their modification times."""
    exam = view.exam
    key = tuple((str(p), data_access.mtime(p)) if p is not None else ("", 0) for p in (view.where, view.truth_path))
    return _surface(view.volume, exam.label, tuple(float(s) for s in exam.spacing), tuple(sorted(view.names.items())),
                    tuple(sorted(structures)), key)


# ---------------------------------------------------------------------------------------------- running


def run_triage(run: Run) -> str:
    """``spar triage RUN`` in this process (default method); returns the table's path. For small runs.

    Raises:
        SparError: anything :func:`spar_core.triage.exams.write_triage` refuses (nothing trained, no prediction).
    """
    from spar_core.triage.exams import write_triage  # imports torch and the models

    _, _, path, _ = write_triage(run.root)
    return str(path)
