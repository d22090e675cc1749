"""The data side of the app: data-root folders, datasets and exams, cached, and the built-in phantom cohorts it
writes on a fresh machine.

Everything the app reads lies inside the data root (``$SPAR_DATA_ROOT``, default ``./data``): folder names
typed in the sidebar, dataset folders (also through symlinks) and the image / label paths that a
``dataset.json`` lists are all checked with :func:`spar_core.paths.is_within`; anything outside is a
:class:`SparError` the app shows as a message.

Caching: datasets and exams go through ``st.cache_data`` keyed by path and file modification times, so an
edited or regenerated dataset is read again, and a slider move only rebuilds the figure.

Bootstrap: when the data root holds no dataset at all, the app writes the ankle and shoulder phantom cohorts
(``phantoms_ankle/``, ``phantoms_shoulder/``, seed 0) into it in a thread of the server, once, and every page
follows that generation until they are there. Set
``SPAR_PHANTOM_SUBJECTS=N`` to generate N exams per cohort instead of the paper's cohort sizes (tests, CI).
A root that already holds datasets (yours) is left alone; the sidebar then offers the phantoms on request.

Runs are read by :mod:`run_access`, with the same checks against the runs root.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from spar_core.data.dataset import Dataset, load_dataset, load_volume
from spar_core.data.voxels import voxel_ml
from spar_core.errors import SparError, os_error_line
from spar_core.figures import busiest_slice
from spar_core.paths import DATASET_JSON, DATA_ROOT_ENV, PHANTOM_FOLDERS, data_root, is_within
from spar_core.paths import missing_phantoms as paths_missing_phantoms

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


def list_datasets(folder: Path, allowed: Path) -> list[str]:
    """Names of the dataset folders (holding a ``dataset.json``) directly in ``folder``, sorted.

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
        if not entry.name.startswith(".") and (entry / DATASET_JSON).is_file() and is_within(entry, allowed)
    ]


# ---------------------------------------------------------------------------------------------- datasets


def mtime(path: Path) -> int:
    """``path``'s modification time (ns), 0 when it does not exist: the stamp that keys the caches."""
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
    dataset = _load_dataset(str(folder), mtime(folder / DATASET_JSON))
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
    stored: np.ndarray  # (X, Y, Z) float32, the intensities as the file stores them (the viewer shows these)
    label: np.ndarray | None  # (X, Y, Z) integer labels, or None for an unlabeled exam
    spacing: tuple[float, float, float]  # mm
    affine: np.ndarray  # (4, 4) voxel -> world (mm)
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
        ml_per_voxel = voxel_ml(volume.spacing)
        volumes = {name: float(counts[value]) * ml_per_voxel for name, value in _dataset.structures.items()}
    # C order: nibabel gives Fortran-ordered arrays, on which np.take (extract_slice) along the last axis is
    # about 100 times slower (~10 ms a 224×224 slice) than on a C-ordered copy.
    return Exam(
        case_id=case_id,
        image=np.ascontiguousarray(normalize_intensity(volume.image)),
        stored=np.asarray(volume.image, dtype=np.float32),
        label=None if volume.label is None else np.ascontiguousarray(volume.label),
        spacing=volume.spacing,
        affine=volume.affine,
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
    files = (dataset.root / DATASET_JSON, case.image_path, case.label_path)
    stamp = tuple(mtime(path) if path is not None else 0 for path in files)
    return _load_exam(dataset, str(dataset.root), case_id, stamp)


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
    """The phantom cohort folders not yet in ``folder``."""
    return [PHANTOM_FOLDERS[anatomy] for anatomy in paths_missing_phantoms(folder)]


@dataclass
class PhantomJob:
    """The generation of a folder's missing cohorts in a thread of this server: one per folder, shared by every
    rerun and session, so that opening another page meanwhile neither stops nor restarts it."""

    folder: Path
    text: str = "starting…"
    fraction: float = 0.0
    error: str | None = None
    done: bool = False

    def run(self) -> None:
        from spar_core.pipeline.demo import ensure_phantoms

        def report(event) -> None:
            self.text = f"{event.label}: exam {event.step} of {event.steps}"
            self.fraction = ((event.epoch - 1) + event.step / max(event.steps, 1)) / max(event.epochs, 1)

        try:
            ensure_phantoms(self.folder, report, subjects=phantom_subjects())
        except SparError as err:
            self.error = str(err)
        except OSError as err:
            self.error = f"{self.folder}: {os_error_line(err)}"
        finally:
            self.done = True


_PHANTOM_JOBS: dict[Path, PhantomJob] = {}


def phantom_job(folder: Path, *, start: bool = True) -> PhantomJob | None:
    """The folder's generation in this server: the one running or finished, else (``start``) a new one started in
    a thread; also a new one when a finished one succeeded but cohorts are missing again (removed since). A failed
    one is dropped once its error was shown, so that asking again starts again."""
    folder = folder.resolve()
    with _BOOTSTRAP_LOCK:
        job = _PHANTOM_JOBS.get(folder)
        stale = job is not None and job.done and job.error is None and bool(missing_phantoms(folder))
        if start and (job is None or stale):
            job = _PHANTOM_JOBS[folder] = PhantomJob(folder)
            threading.Thread(target=job.run, name=f"spar phantoms {folder.name}", daemon=True).start()
        return job


def _follow_phantoms(job: PhantomJob) -> None:
    st.progress(job.fraction, text=f"Generating the built-in phantom exams in the background: {job.text}")
    if job.done:
        st.rerun(scope="app")


def generate_phantoms_ui(folder: Path) -> None:
    """Generate the folder's missing phantom cohorts in the background and follow them; the page stops here until
    they are there (another page opened meanwhile follows the same generation). A failure is shown once, and
    asking again starts again."""
    job = phantom_job(folder)
    if job.done:
        if job.error is not None:
            st.error(f"Could not generate the phantom exams: {job.error}")
            with _BOOTSTRAP_LOCK:  # shown: the next request tries again
                _PHANTOM_JOBS.pop(job.folder, None)
        return
    st.info("spar is writing its built-in phantom exams (an ankle and a shoulder cohort) into "
            f"{folder}: under a minute on a first start. The page opens when they are there.",
            icon=":material/hourglass_top:")
    st.fragment(_follow_phantoms, run_every=1.0)(job)
    st.stop()


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
