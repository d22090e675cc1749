"""What the Latent convergence page computes from a run's tables: the rows of one map, the point picker's
labels, the point a click on the scatter picked, and the slice figure and latent distances of one code pair.

The tables themselves (maps, convergence, pair distances) are read, cached, by :mod:`run_access`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

import data_access
import run_access
from run_access import Run
from spar_core.data.dataset import Dataset
from spar_core.errors import SparError
from spar_core.figures import extract_slice, in_plane_spacing
from spar_core.figures.latent import pair_slice_figure, structure_names

POINT_SEPARATOR = " · "


def structure_options(table: pd.DataFrame, run: Run) -> tuple[list[str], list[str]]:
    """(the run's structures in label order, the structures a map shows: those first, then any others it holds)."""
    structures = structure_names(run.config.get("labels") or {})
    present = set(table["structure"])
    return structures, [s for s in structures if s in present] + sorted(present - set(structures))


def map_rows(table: pd.DataFrame, kind: str, method: str, shown: list[str]) -> pd.DataFrame:
    """The embedding-table rows of one map (``kind``) of one method, for the ``shown`` structures."""
    return table[(table["embedding"] == kind) & (table["method"] == method) & table["structure"].isin(shown)]


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


def pair_slice(run: Run, allowed: Path, shown: Dataset | None, fold: int, method: str,
               point: tuple[str, int, str], post: bool) -> tuple[go.Figure, bool]:
    """The slice behind a code pair: image, true outline and ``method``'s final prediction of the pair's structure
    (:func:`spar_core.figures.latent.pair_slice_figure`); and whether the prediction exists.

    ``allowed`` and ``shown``: the data root and the sidebar's dataset (see :func:`run_access.run_dataset`).

    Raises:
        SparError: the run's dataset, the exam or the prediction cannot be read, or the dataset lacks the structure.
    """
    case, index, structure = point
    dataset = run_access.run_dataset(run, allowed, shown)
    exam = data_access.get_exam(dataset, case)
    value = dataset.structures.get(structure)
    if value is None:
        raise SparError(f"{dataset.root / 'dataset.json'}: no structure {structure!r} (the run's maps name it); was "
                        "the dataset edited since training?")
    volume = run_access.get_prediction(run, fold, method, case, raw=not post, shape=exam.image.shape)
    axis = exam.slice_axis
    figure = pair_slice_figure(
        extract_slice(exam.image, axis, index),
        extract_slice(exam.label, axis, index) if exam.label is not None else None,
        None if volume is None else extract_slice(volume, axis, index),
        value, names={v: n for n, v in dataset.structures.items()},
        spacing2d=in_plane_spacing(exam.spacing, axis), axis=axis, index=index, height=460)
    return figure, volume is not None


def pair_distances_text(distances: pd.DataFrame | None, method: str, point: tuple[str, int, str]) -> str:
    """‖ẑ − z‖ of one code pair of ``method`` at each snapshot epoch (``"epoch 1: 0.412 · epoch 5: 0.287"``);
    "" without snapshots or when the pair is in none."""
    if distances is None:
        return ""
    case, index, structure = point
    mine = distances[(distances["method"] == method) & (distances["case"] == case)
                     & (distances["slice"] == index) & (distances["structure"] == structure)]
    return " · ".join(f"epoch {e}: {d:.3f}" for e, d in
                      mine.sort_values("epoch")[["epoch", "distance"]].itertuples(index=False))
