"""The volume viewer's scenes the pages show (:func:`spar_core.figures.volume_scene.volume_scene`), packed once per
exam and setting and cached: an exam with its truth, the four methods over the truth, a triaged exam with its
uncertainty maps.

Each scene is keyed by the files it is made of and their modification times, so a rewritten prediction or map
is packed again; the volumes themselves come from the caches of :mod:`data_access` and :mod:`run_access`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import streamlit as st

import data_access
import run_access
from data_access import Exam
from run_access import Run
from spar_core.data.dataset import Dataset
from spar_core.figures.volume_scene import Panel, volume_scene
from spar_core.methods import display_name
from spar_core.paths import DATASET_JSON

TRUTH = "truth"


@st.cache_data(max_entries=6, show_spinner="Packing the exam for the viewer…")
def _cached(key: tuple, _build: Callable[[], bytes]) -> bytes:
    # Keyed by ``key`` alone (files and their mtimes); the underscored builder stays out of the hash.
    return _build()


def _stamp(paths: list[Path | None]) -> tuple[tuple[str, int], ...]:
    return tuple((str(p), 0 if p is None else data_access.mtime(p)) for p in paths)


def _focus(exam: Exam, index: int | None = None) -> tuple[int, int, int]:
    """The voxel the viewer starts on: the centre of the exam, on slice ``index`` (default: its busiest)."""
    focus = [s // 2 for s in exam.image.shape]
    focus[exam.slice_axis] = exam.first_slice if index is None else index
    return tuple(focus)


def _scene(exam: Exam, names: dict[int, str], layers: dict[str, np.ndarray], panels: list[Panel], title: str, *,
           maps: dict[str, np.ndarray] | None = None, map_max: float | None = None, index: int | None = None) -> bytes:
    # the stored intensities, windowed at first on the exam's 0.5th-99.5th percentiles (what the other figures'
    # per-exam normalization shows); the hover readout gives the file's values
    return volume_scene(exam.stored, exam.affine, layers=layers, panels=panels, names=names, maps=maps,
                        map_max=map_max, slice_axis=exam.slice_axis, focus=_focus(exam, index), title=title,
                        exam=exam.case_id)


def exam_scene(dataset: Dataset, exam: Exam) -> bytes:
    """One exam (from :func:`data_access.get_exam`) and its truth, drawn filled, outline or hidden from the
    viewer's toolbar."""
    case = dataset.case(exam.case_id)
    names = {value: name for name, value in dataset.structures.items()}
    layers = {} if exam.label is None else {TRUTH: exam.label}
    panels = [Panel(exam.case_id, fill=TRUTH if layers else None)]
    key = ("exam", _stamp([dataset.root / DATASET_JSON, case.image_path, case.label_path]))
    return _cached(key, lambda: _scene(exam, names, layers, panels, ""))


def compare_scene(run: Run, dataset: Dataset, exam: Exam, post: bool, titles: dict[str, str],
                  uncertainty: bool = False) -> tuple[bytes, list[str]]:
    """A tested exam's truth and every method's prediction, linked on one cursor and window; returns the scene
    and the methods that have no prediction (or, with ``uncertainty``, no entropy map) yet.

    ``titles``: method -> panel title. With ``uncertainty`` each method's panel shows its entropy map as heat
    with its (raw) prediction outlined, instead of the filled prediction over the truth. The volumes are read
    only when the scene is not cached yet (which files exist decides what is missing).

    Raises:
        SparError: unreadable prediction or map, or one on another grid.
    """
    case, fold = dataset.case(exam.case_id), run.tested[exam.case_id]
    raw = uncertainty or not post
    files = {method: (run.folder.prediction_path(fold, method, exam.case_id, raw),
                      run.folder.uncertainty_path(fold, method, exam.case_id, "entropy") if uncertainty else None)
             for method in run.methods}
    shown = [m for m, (pred, entropy) in files.items() if pred.is_file() and (entropy is None or entropy.is_file())]
    has_truth = exam.label is not None

    def build() -> bytes:
        names = {value: name for name, value in dataset.structures.items()}
        layers = {TRUTH: exam.label} if has_truth else {}
        maps, panels = {}, [Panel("Ground truth", fill=TRUTH if has_truth else None)]
        for method in shown:
            name = display_name(method)
            layers[name] = run_access.get_prediction(run, fold, method, exam.case_id, raw=raw,
                                                     shape=exam.image.shape)
            if uncertainty:
                maps[name] = run_access.get_uncertainty(run, fold, method, exam.case_id, "entropy",
                                                        shape=exam.image.shape)
                panels.append(Panel(f"{titles.get(method, name)}: entropy", outline=name, heat=name))
            else:
                panels.append(Panel(titles.get(method, name), fill=name, outline=TRUTH if has_truth else None))
        top = max((float(m.max()) for m in maps.values()), default=None)  # one scale for every method
        return _scene(exam, names, layers, panels, title, maps=maps, map_max=top)

    title = f"{exam.case_id}, fold {fold}: " + (
        "entropy of each method's test-time shifts, its raw prediction outlined" if uncertainty else
        f"{'post-processed' if post else 'raw'} predictions" + (" (white outline: ground truth)" if has_truth else ""))
    key = ("compare", str(run.root), exam.case_id, post, uncertainty, tuple(sorted(titles.items())),
           _stamp([dataset.root / DATASET_JSON, case.image_path, case.label_path,
                   *(p for pair in files.values() for p in pair if p is not None)]))
    return _cached(key, build), [m for m in run.methods if m not in shown]


def triage_scene(run: Run, exam: Exam, names: dict[int, str], prediction: np.ndarray, prediction_path: Path,
                 method: str, fold: int, index: int | None) -> tuple[bytes, list[str]]:
    """A triaged exam: ``method``'s prediction over the truth beside its entropy and disagreement maps (where
    ``spar triage`` wrote them), starting on slice ``index``; returns the scene and the missing map kinds.

    Raises:
        SparError: an unreadable map, or one on another grid.
    """
    paths = {kind: run.folder.uncertainty_path(fold, method, exam.case_id, kind) for kind in ("entropy", "disagreement")}
    kinds = [kind for kind, path in paths.items() if path.is_file()]

    def build() -> bytes:
        layers = {"prediction": prediction, **({} if exam.label is None else {TRUTH: exam.label})}
        panels = [Panel(f"{display_name(method)}: prediction", fill="prediction",
                        outline=TRUTH if exam.label is not None else None)]
        maps = {}
        for kind in kinds:
            maps[kind] = run_access.get_uncertainty(run, fold, method, exam.case_id, kind, shape=exam.image.shape)
            panels.append(Panel(kind, outline="prediction", heat=kind))
        title = f"{exam.case_id}, fold {fold}: {display_name(method)}'s prediction and where it hesitated"
        return _scene(exam, names, layers, panels, title, maps=maps, index=index)

    key = ("triage", str(run.root), exam.case_id, method, index, _stamp([prediction_path, *paths.values()]))
    return _cached(key, build), [kind for kind in paths if kind not in kinds]
