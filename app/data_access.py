"""What the app reads, cached, and the built-in phantom cohorts it writes on a fresh machine.

Everything the app reads lies inside the data root (``$SPAR_DATA_ROOT``, default ``./data``): folder names
typed in the sidebar, dataset folders (also through symlinks) and the image / label paths that a
``dataset.json`` lists are all checked with :func:`spar_core.paths.is_within`; anything outside is a
:class:`SparError` the app shows as a message.

Caching: datasets and exams go through ``st.cache_data`` keyed by path and file modification times, so an
edited or regenerated dataset is read again, and a slider move only rebuilds the figure.

Bootstrap: when the data root holds no dataset at all, the app writes the ankle and shoulder phantom cohorts
(``phantoms_ankle/``, ``phantoms_shoulder/``, seed 0) into it before the first page renders. Set
``SPAR_PHANTOM_SUBJECTS=N`` to generate N exams per cohort instead of the paper's cohort sizes (tests, CI).
A root that already holds datasets (yours) is left alone; the sidebar then offers the phantoms on request.

Runs: run folders (``run.json`` and the rest of the layout in :mod:`spar_core.runs.run_folder`) are read only inside
the runs root (``$SPAR_RUNS_ROOT``, default ``./runs``), the same way. A run's config, metrics, report,
histories and predictions are cached keyed by path and modification times, so a run that is still training
shows its new files on the next rerun.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd
import streamlit as st

from spar_core.data.dataset import Dataset, load_dataset, load_volume
from spar_core.errors import SparError
from spar_core.figures import busiest_slice
from spar_core.methods import method_order
from spar_core.paths import DATA_ROOT_ENV, data_root, is_within

if TYPE_CHECKING:  # the report module pulls in scipy; imported where a run is read
    from spar_core.evaluation.report import Report

PHANTOM_COHORTS: dict[str, str] = {"phantoms_ankle": "ankle", "phantoms_shoulder": "shoulder"}
SUBJECTS_ENV = "SPAR_PHANTOM_SUBJECTS"

_BOOTSTRAP_LOCK = threading.Lock()  # one generation at a time, across the sessions of this server


# ---------------------------------------------------------------------------------------------- folders


def resolve_folder(text: str, allowed: Path, *, what: str = "data root", env: str = DATA_ROOT_ENV) -> Path:
    """The folder typed in the sidebar, resolved (relative to ``allowed``), and checked to lie inside it.

    ``what`` and ``env`` name the root in messages ("runs root", ``SPAR_RUNS_ROOT`` for the runs folder).

    Raises:
        SparError: outside ``allowed`` (also through ``..`` or symlinks), or not an existing folder.
    """
    path = Path(text.strip() or allowed).expanduser()
    path = (path if path.is_absolute() else allowed / path).resolve()
    if not is_within(path, allowed):
        raise SparError(
            f"{path}: outside the {what} {allowed}; the app reads only inside it "
            f"(start it with {env}=... to browse another folder)"
        )
    if not path.is_dir():
        raise SparError(f"{path}: no such folder inside the {what} {allowed}")
    return path


def _folders_with(marker: str, folder: Path, allowed: Path) -> list[str]:
    """Names of the sub-folders of ``folder`` (one level deep) holding ``marker``, sorted.

    Hidden folders (a cohort being generated) and folders that resolve outside ``allowed`` are left out; a
    missing folder has none.
    """
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    return [
        entry.name
        for entry in entries
        if not entry.name.startswith(".") and (entry / marker).is_file() and is_within(entry, allowed)
    ]


def list_datasets(folder: Path, allowed: Path) -> list[str]:
    """Dataset folders (holding a ``dataset.json``) under ``folder``."""
    return _folders_with("dataset.json", folder, allowed)


# ---------------------------------------------------------------------------------------------- datasets


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


@st.cache_data(max_entries=64, show_spinner=False)
def _load_dataset(folder: str, stamp: int) -> Dataset:  # stamp: dataset.json's mtime, so an edit invalidates
    return load_dataset(folder)


def get_dataset(folder: Path, allowed: Path) -> Dataset:
    """The parsed ``dataset.json`` of ``folder``, with every listed file checked to lie inside ``allowed``.

    Raises:
        SparError: unreadable or invalid dataset, or a listed file outside the data root.
    """
    if not is_within(folder, allowed):
        raise SparError(f"{folder}: outside the data root {allowed}; the app reads only inside it")
    dataset = _load_dataset(str(folder), _mtime(folder / "dataset.json"))
    for case in dataset.cases:
        for path in (case.image_path, case.label_path):
            if path is not None and not is_within(path, allowed):
                raise SparError(
                    f"{dataset.root / 'dataset.json'}: case {case.case_id!r} points to {path}, "
                    f"outside the data root {allowed}; the app reads only inside it"
                )
    return dataset


@dataclass(frozen=True)
class Exam:
    """One exam ready for browsing: intensities normalized per exam, label, geometry and volumes."""

    case_id: str
    image: np.ndarray  # (X, Y, Z) float32 in [0, 1], per-exam percentile normalization
    label: np.ndarray | None  # (X, Y, Z) integer labels, or None for an unlabeled exam
    spacing: tuple[float, float, float]  # mm
    slice_axis: int
    first_slice: int  # the slice with most labelled voxels: where browsing starts
    volumes_ml: dict[str, float]  # structure name -> volume in mL (empty without a label)


@st.cache_data(max_entries=8, show_spinner="Reading the exam…")
def _load_exam(_dataset: Dataset, folder: str, case_id: str, stamp: tuple[int, int, int]) -> Exam:
    # Keyed by (folder, case_id, stamp); the leading underscore keeps the dataset itself out of the hash.
    # Imported here: spar_core.data.slicing pulls in torch (about a second), needed only once an exam is shown.
    from spar_core.data.slicing import normalize_intensity

    volume = load_volume(_dataset, case_id)
    volumes: dict[str, float] = {}
    if volume.label is not None:
        counts = np.bincount(volume.label.ravel(), minlength=max(_dataset.labels.values()) + 1)
        ml_per_voxel = float(np.prod(volume.spacing)) / 1000.0  # mm³ -> mL
        volumes = {name: float(counts[value]) * ml_per_voxel for name, value in _dataset.structures.items()}
    # C order: nibabel gives Fortran-ordered arrays, on which np.take (extract_slice) along the last axis is
    # about 100 times slower (~10 ms a 224×224 slice) than on a C-ordered copy.
    return Exam(
        case_id=case_id,
        image=np.ascontiguousarray(normalize_intensity(volume.image)),
        label=None if volume.label is None else np.ascontiguousarray(volume.label),
        spacing=volume.spacing,
        slice_axis=volume.slice_axis,
        first_slice=busiest_slice(volume.label, volume.slice_axis),
        volumes_ml=volumes,
    )


def get_exam(dataset: Dataset, case_id: str) -> Exam:
    """One exam of ``dataset`` (from :func:`get_dataset`, so its paths are already checked), cached.

    Raises:
        SparError: unknown case, unreadable or inconsistent image / label files.
    """
    case = dataset.case(case_id)
    files = (dataset.root / "dataset.json", case.image_path, case.label_path)
    stamp = tuple(_mtime(path) if path is not None else 0 for path in files)
    return _load_exam(dataset, str(dataset.root), case_id, stamp)


# ---------------------------------------------------------------------------------------------- runs


def list_runs(folder: Path, allowed: Path) -> list[str]:
    """Run folders (holding a ``run.json``) under ``folder``."""
    return _folders_with("run.json", folder, allowed)


@dataclass(frozen=True)
class Run:
    """One run folder as the pages need it: config, methods in registry order, and which fold tested what."""

    root: Path
    allowed: Path  # the runs root it was read inside: files it points to must lie there too
    config: dict[str, Any]  # run.json
    methods: tuple[str, ...]  # registry order (baseline, adversarial, shape, spar)
    tested: dict[str, int]  # case id -> the fold whose test set holds it
    dataset: Path | None  # run.json "dataset", resolved; None when it names none

    @property
    def name(self) -> str:
        return self.root.name


def _run_stamp(root: Path) -> tuple[int, ...]:
    """Modification times of run.json and of every split.json: a new fold or an edited config invalidates."""
    return (_mtime(root / "run.json"), *(_mtime(p) for p in sorted(root.glob("folds/*/split.json"))))


@st.cache_data(max_entries=16, show_spinner=False)
def _load_run(root: str, allowed: str, stamp: tuple[int, ...]) -> Run:
    from spar_core.runs.run_folder import RunFolder  # imports torch (for the versions it writes)

    folder = RunFolder(Path(root))
    config = folder.read_config()
    tested: dict[str, int] = {}
    for fold in folder.folds():
        for case in folder.read_split(fold).test:
            tested.setdefault(str(case), fold)
    methods = config.get("methods") or sorted({m for fold in folder.folds() for m in folder.methods(fold)})
    dataset = config.get("dataset")
    return Run(
        root=Path(root),
        allowed=Path(allowed),
        config=config,
        methods=tuple(method_order([str(m) for m in methods])),
        tested=dict(sorted(tested.items())),
        dataset=Path(str(dataset)).expanduser().resolve() if dataset else None,
    )


def get_run(root: Path, allowed: Path) -> Run:
    """The run folder ``root``, checked to lie inside ``allowed`` (the runs root), cached.

    Raises:
        SparError: outside the runs root, no or unreadable ``run.json``, or an unreadable split.
    """
    if not is_within(root, allowed):
        raise SparError(f"{root}: outside the runs root {allowed}; the app reads only inside it")
    try:
        return _load_run(str(root.resolve()), str(allowed), _run_stamp(root))
    except (OSError, ValueError, KeyError) as err:
        raise SparError(f"{root}: unreadable run folder ({err})") from None


def run_dataset(run: Run, allowed: Path) -> Dataset:
    """The dataset the run was trained on, read only when it lies inside the data root ``allowed``.

    Raises:
        SparError: run.json names no dataset, it lies outside the data root, is gone, or is unreadable.
    """
    if run.dataset is None:
        raise SparError(f"{run.root / 'run.json'}: names no dataset; the predictions cannot be shown over images")
    if not is_within(run.dataset, allowed):
        raise SparError(
            f"Run {run.name!r} was trained on {run.dataset}, outside the data root {allowed}; the app reads "
            f"images only inside it. Start the app with {DATA_ROOT_ENV}= a folder holding that dataset to see "
            "its images and predictions (the Results page works without them)."
        )
    if not (run.dataset / "dataset.json").is_file():
        raise SparError(f"Run {run.name!r} was trained on {run.dataset}, which holds no dataset.json any more "
                        "(moved or deleted?)")
    return get_dataset(run.dataset, allowed)


@st.cache_data(max_entries=8, show_spinner=False)
def _load_metrics(path: str, stamp: int) -> pd.DataFrame:
    from spar_core.evaluation.report import load_metrics

    return load_metrics(path)


def get_metrics(run: Run) -> pd.DataFrame | None:
    """``RUN/metrics.csv`` validated (:func:`spar_core.evaluation.report.load_metrics`); None while it does not exist.

    Raises:
        SparError: an unreadable or invalid table.
    """
    path = run.root / "metrics.csv"
    if not path.is_file():
        return None
    return _load_metrics(str(path), _mtime(path))


@st.cache_data(max_entries=8, show_spinner="Computing the report (bootstrap and paired tests)…")
def _build_report(path: str, stamp: int, postprocessed: bool) -> Report:
    from spar_core.evaluation.report import build_report, load_metrics

    return build_report(load_metrics(path), postprocessed=postprocessed)


def get_report(run: Run, postprocessed: bool) -> Report | None:
    """The report's tables (:func:`spar_core.evaluation.report.build_report`) of the run; None without metrics.csv.

    Raises:
        SparError: an invalid table, or no rows for ``postprocessed``.
    """
    path = run.root / "metrics.csv"
    if not path.is_file():
        return None
    return _build_report(str(path), _mtime(path), postprocessed)


@st.cache_data(max_entries=8, show_spinner=False)
def _load_histories(root: str, stamp: tuple[tuple[str, int], ...]) -> dict[str, list[dict[str, Any]]]:
    histories: dict[str, list[dict[str, Any]]] = {}
    for name, _ in stamp:
        path = Path(root) / name
        fold, method = int(path.parts[-3]), path.parts[-2]
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        histories.setdefault(method, []).extend({**row, "fold": fold} for row in rows)
    return histories


def get_histories(run: Run) -> dict[str, list[dict[str, Any]]]:
    """Method -> the rows of its ``history.jsonl`` files over all folds, each with its ``fold`` added.

    Raises:
        SparError: a history line that is not JSON.
    """
    files = sorted(run.root.glob("folds/*/*/history.jsonl"))
    stamp = tuple((str(p.relative_to(run.root)), _mtime(p)) for p in files
                  if p.parts[-3].isdigit() and is_within(p, run.allowed))
    try:
        return _load_histories(str(run.root), stamp)
    except (OSError, json.JSONDecodeError) as err:
        raise SparError(f"{run.root}: unreadable history.jsonl ({err})") from None


def prediction_path(run: Run, fold: int, method: str, case_id: str, raw: bool = False) -> Path:
    """Where the run keeps a prediction: ``pred/`` post-processed, ``pred_raw/`` the stacked 2D outputs."""
    return run.root / "folds" / str(fold) / method / ("pred_raw" if raw else "pred") / f"{case_id}.nii.gz"


@st.cache_data(max_entries=32, show_spinner=False)
def _load_prediction(path: str, stamp: int) -> np.ndarray:
    import nibabel

    try:
        return np.ascontiguousarray(nibabel.load(path).dataobj)  # C order: fast slicing (see _load_exam)
    except Exception as err:  # nibabel raises many types for a truncated or foreign file
        raise SparError(f"{path}: unreadable prediction ({type(err).__name__}: {err})") from None


def get_prediction(run: Run, fold: int, method: str, case_id: str, raw: bool = False) -> np.ndarray | None:
    """One predicted label volume (X, Y, Z) of the run, cached; None when the run has not written it (yet).

    Raises:
        SparError: the file lies outside the runs root (a symlink) or cannot be read.
    """
    path = prediction_path(run, fold, method, case_id, raw)
    if not path.is_file():
        return None
    if not is_within(path, run.allowed):
        raise SparError(f"{path}: outside the runs root {run.allowed}; the app reads only inside it")
    return _load_prediction(str(path), _mtime(path))


# ---------------------------------------------------------------------------------------------- phantoms


def phantom_subjects() -> int | None:
    """Exams per phantom cohort from ``$SPAR_PHANTOM_SUBJECTS``; None (the default sizes) when unset.

    Raises:
        SparError: the variable is set but not a positive integer.
    """
    raw = os.environ.get(SUBJECTS_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise SparError(f"{SUBJECTS_ENV}={raw!r}: expected a positive integer (exams per phantom cohort)")
    return int(raw)


def missing_phantoms(folder: Path) -> list[str]:
    """The phantom cohort folders (of :data:`PHANTOM_COHORTS`) not yet in ``folder``."""
    return [name for name in PHANTOM_COHORTS if not (folder / name / "dataset.json").is_file()]


def generate_phantoms(folder: Path, progress: Callable[[str, int, int], None] | None = None) -> list[Path]:
    """Write the missing phantom cohorts into ``folder``; returns the folders written.

    Each cohort is generated into a hidden ``.<name>.partial`` folder and renamed when complete, so an
    interrupted start never leaves a half cohort that looks like a dataset. ``progress(name, done, total)``
    is called after each exam.

    Raises:
        SparError: a non-empty ``phantoms_*`` folder without ``dataset.json`` is in the way, or a bad
            ``$SPAR_PHANTOM_SUBJECTS``.
    """
    from spar_core.data.phantoms import generate_cohort

    subjects = phantom_subjects()
    written: list[Path] = []
    with _BOOTSTRAP_LOCK:
        for name in missing_phantoms(folder):
            target = folder / name
            if target.exists() and (not target.is_dir() or any(target.iterdir())):
                raise SparError(f"{target}: exists but holds no dataset.json; move it away to generate the phantoms")
            partial = folder / f".{name}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            report = None if progress is None else (lambda done, total, name=name: progress(name, done, total))
            generate_cohort(PHANTOM_COHORTS[name], partial, subjects=subjects, seed=0, progress=report)
            os.replace(partial, target)  # onto a missing or empty folder: one step
            written.append(target)
    return written


def generate_phantoms_ui(folder: Path) -> None:
    """:func:`generate_phantoms` behind an ``st.status`` box with a progress bar per cohort."""
    with st.status("Generating the built-in phantom exams (first start, under a minute)…", expanded=True) as box:
        bar = st.progress(0.0)

        def report(name: str, done: int, total: int) -> None:
            bar.progress(done / total, text=f"{name}: exam {done} of {total}")

        try:
            written = generate_phantoms(folder, report)
        except SparError as err:
            box.update(label="Could not generate the phantom exams", state="error")
            st.error(str(err))
            return
        names = ", ".join(path.name for path in written) or "nothing to do"
        box.update(label=f"Phantom exams ready ({names})", state="complete", expanded=False)


def bootstrap_if_fresh() -> Path:
    """The configured data root, created and filled with the phantom cohorts when it holds no dataset."""
    root = data_root()
    if not list_datasets(root, root):
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            st.error(f"{root}: cannot create the data root ({err.strerror}); set SPAR_DATA_ROOT to a writable folder")
            return root
        generate_phantoms_ui(root)
    return root
