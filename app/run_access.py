"""Everything the app reads from a run folder, cached, and only inside the runs root.

Every path of a run comes from :class:`spar_core.layout.run_folder.RunFolder` (``run.folder``): this module
spells none. Run folders are listed and read only inside the runs root (``$SPAR_RUNS_ROOT``, default ``./runs``),
and every file of a run only inside its folder (symlinks resolved, :func:`inside`); anything else is a
:class:`SparError` the pages show as a message.

Caching: each loader is keyed by file path and modification time, so a run that is still training (or a rerun
of ``spar embed`` / ``spar triage``) shows its new files on the next rerun, and a widget change only rebuilds a
figure.

Sections: the run (listing, config, tested exams, its dataset), metrics and report, histories, predictions,
latent maps and convergence, triage tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import numpy as np
import pandas as pd
import streamlit as st

from data_access import get_dataset, mtime
from spar_core.data.dataset import Dataset
from spar_core.errors import SparError
from spar_core.methods import method_order
from spar_core.paths import DATASET_JSON, DATA_ROOT_ENV, is_within, read_jsonl
from spar_core.postprocessing.settings import describe, run_settings
from spar_core.layout.run_folder import MethodFolder, RunFolder, run_folders
from spar_core.triage.ranking import SPEARMAN_COLUMNS

if TYPE_CHECKING:  # the report module pulls in scipy; imported where a report is built
    from spar_core.evaluation.report import Report

# Columns a triage table must hold (RUN/triage/<table>_<method>.csv), and those read as text.
TRIAGE_COLUMNS = {"triage": ("case", "fold", "rank", "triage_score"), "images": ("case", "rank", "triage_score"),
                  "spearman": tuple(SPEARMAN_COLUMNS[1:])}
TEXT_COLUMNS = {"case": str, "method": str, "worst_slices": str, "degraded": str, "prediction": str}
T = TypeVar("T")


# ---------------------------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class Run:
    """One run folder as the pages need it: config, methods in registry order, and which fold tested what."""

    root: Path
    allowed: Path  # the runs root it was read inside
    config: dict[str, Any]  # run.json
    methods: tuple[str, ...]  # registry order (baseline, adversarial, shape, spar)
    tested: dict[str, int]  # case id -> the fold whose test set holds it
    dataset: Path | None  # run.json "dataset", resolved; None when it names none

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def folder(self) -> RunFolder:
        """Every path of the run."""
        return RunFolder(self.root)


def list_runs(folder: Path, allowed: Path) -> list[str]:
    """Names of the run folders (:func:`spar_core.layout.run_folder.run_folders`) in ``folder`` that lie inside
    ``allowed`` (also through symlinks); an unreadable folder has none."""
    try:
        return [path.name for path in run_folders(folder) if is_within(path, allowed)]
    except OSError:
        return []


def inside(run: Run, path: Path) -> Path:
    """``path``, checked to lie inside the run folder (symlinks resolved).

    Raises:
        SparError: outside the run folder.
    """
    if not is_within(path, run.root):
        raise SparError(f"{path}: outside the run folder {run.root}; the app reads only inside it")
    return path


def _read(run: Run, path: Path, loader: Callable[..., T], *args: Any) -> T | None:
    """``loader(path, mtime, *args)`` (a cached reader, keyed by the file's modification time) on a file of the
    run, checked to lie inside the run folder; None while the file does not exist."""
    if not path.is_file():
        return None
    return loader(str(inside(run, path)), mtime(path), *args)


def relative(run: Run, path: Path) -> str:
    """``path`` as messages name it: relative to the run folder (``folds/0/spar/pred/ankle_000.nii.gz``)."""
    return str(path.relative_to(run.root))


def pred_folder(raw: bool) -> str:
    """How messages name a method's prediction folder: ``pred/`` (post-processed) or ``pred_raw/``."""
    return MethodFolder(Path()).pred_dir(raw).name + "/"


def postprocess_text(run: Run) -> str:
    """What the run's post-processed masks went through, in the words of
    :func:`spar_core.postprocessing.settings.describe`, with the folder they are in."""
    try:
        what = describe(run_settings(run.config, str(run.folder.config_path)))
    except SparError as err:
        what = f"post-processing that run.json does not say ({err})"
    return f"{what[0].upper()}{what[1:]} ({pred_folder(raw=False)})"


def prediction_name(run: Run, fold: int, method: str, case_id: str, raw: bool = False) -> str:
    """How messages name one prediction of a method: ``pred/<case>.nii.gz`` or ``pred_raw/<case>.nii.gz``."""
    folder = run.folder.method_folder(fold, method)
    return str(folder.prediction(case_id, raw).relative_to(folder.path))


def _run_stamp(folder: RunFolder) -> tuple[int, ...]:
    """Modification times of run.json and of every split: a new fold or an edited config invalidates."""
    return (mtime(folder.config_path), *(mtime(folder.split_path(fold)) for fold in folder.folds()))


@st.cache_data(max_entries=16, show_spinner=False)
def _load_run(root: str, allowed: str, stamp: tuple[int, ...]) -> Run:
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
        return _load_run(str(root.resolve()), str(allowed), _run_stamp(RunFolder(root)))
    except (OSError, ValueError, KeyError) as err:
        raise SparError(f"{root}: unreadable run folder ({err})") from None


def is_run_dataset(run: Run, dataset: Dataset | None) -> bool:
    """Is ``dataset`` (the sidebar's) the one the run was trained on?"""
    return dataset is not None and dataset.root.resolve() == run.dataset


def run_dataset(run: Run, allowed: Path, shown: Dataset | None = None) -> Dataset:
    """The dataset the run was trained on, read only when it lies inside the data root ``allowed``.

    ``shown`` is the sidebar's dataset: when it is the run's (the sidebar follows the run), it is returned as it is.

    Raises:
        SparError: run.json names no dataset, it lies outside the data root, is gone, or is unreadable.
    """
    if is_run_dataset(run, shown):
        return shown
    if run.dataset is None:
        raise SparError(f"{run.folder.config_path}: names no dataset; the predictions cannot be shown over images")
    if not is_within(run.dataset, allowed):
        raise SparError(
            f"Run {run.name!r} was trained on {run.dataset}, outside the data root {allowed}; the app reads "
            f"images only inside it. Start the app with {DATA_ROOT_ENV}= a folder holding that dataset to see "
            "its images and predictions (the Results page works without them)."
        )
    if not (run.dataset / DATASET_JSON).is_file():
        raise SparError(f"Run {run.name!r} was trained on {run.dataset}, which holds no dataset.json any more "
                        "(moved or deleted?)")
    return get_dataset(run.dataset, allowed)


def trained_models(runs: Path) -> dict[str, dict[int, list[str]]]:
    """Run name -> fold -> methods with a trained model, for the runs in ``runs`` that have any."""
    found = {}
    for name in list_runs(runs, runs):
        folder = RunFolder(runs / name)
        by_fold = {fold: methods for fold in folder.folds() if (methods := folder.methods(fold))}
        if by_fold:
            found[name] = by_fold
    return found


# ---------------------------------------------------------------------------------------------- metrics


@st.cache_data(max_entries=8, show_spinner=False)
def _load_metrics(path: str, stamp: int) -> pd.DataFrame:
    from spar_core.evaluation.report import load_metrics

    return load_metrics(path)


def get_metrics(run: Run) -> pd.DataFrame | None:
    """``metrics.csv`` validated (:func:`spar_core.evaluation.report.load_metrics`); None while it does not exist.

    Raises:
        SparError: an unreadable or invalid table, or a file outside the run folder.
    """
    return _read(run, run.folder.metrics_csv, _load_metrics)


@st.cache_data(max_entries=8, show_spinner="Computing the report (bootstrap and paired tests)…")
def _build_report(path: str, stamp: int, postprocessed: bool) -> Report:
    from spar_core.evaluation.report import build_report, load_metrics

    return build_report(load_metrics(path), postprocessed=postprocessed)


def get_report(run: Run, postprocessed: bool) -> Report | None:
    """The report's tables (:func:`spar_core.evaluation.report.build_report`); None without metrics.csv.

    Raises:
        SparError: an invalid table, or no rows for ``postprocessed``.
    """
    return _read(run, run.folder.metrics_csv, _build_report, postprocessed)


# ---------------------------------------------------------------------------------------------- histories


@st.cache_data(max_entries=8, show_spinner=False)
def _load_histories(stamp: tuple[tuple[int, str, str, int], ...]) -> dict[str, list[dict[str, Any]]]:
    histories: dict[str, list[dict[str, Any]]] = {}
    for fold, method, path, _ in stamp:
        histories.setdefault(method, []).extend({**row, "fold": fold} for row in read_jsonl(path))
    return histories


def get_histories(run: Run) -> dict[str, list[dict[str, Any]]]:
    """Method -> the rows of its ``history.jsonl`` files over all folds, each with its ``fold`` added.

    Files outside the run folder are left out.

    Raises:
        SparError: a history line that is not JSON.
    """
    stamp = tuple((fold, method, str(path), mtime(path)) for fold, method, path in run.folder.history_files()
                  if is_within(path, run.root))
    try:
        return _load_histories(stamp)
    except (OSError, ValueError) as err:  # (json.JSONDecodeError is a ValueError)
        raise SparError(f"{run.root}: unreadable history.jsonl ({err})") from None


# ---------------------------------------------------------------------------------------------- predictions


@st.cache_data(max_entries=32, show_spinner=False)
def _load_prediction(path: str, stamp: int) -> np.ndarray:
    from spar_core.data.nifti import read_label_volume  # nibabel: once a prediction is shown

    labels, _ = read_label_volume(path)
    return np.ascontiguousarray(labels)  # C order: fast slicing (see data_access._load_exam)


def get_prediction(run: Run, fold: int, method: str, case_id: str, raw: bool = False,
                   shape: tuple[int, ...] | None = None) -> np.ndarray | None:
    """One predicted label volume (X, Y, Z) of the run, cached; None when the run has not written it (yet).

    ``shape``: the exam's, which the prediction must have.

    Raises:
        SparError: the file lies outside the run folder (a symlink), cannot be read, or has another shape.
    """
    path = run.folder.prediction_path(fold, method, case_id, raw)
    volume = _read(run, path, _load_prediction)
    if volume is not None and shape is not None and volume.shape != tuple(shape):
        raise SparError(f"{path}: shape {volume.shape}, expected the exam's {tuple(shape)}")
    return volume


@st.cache_data(max_entries=16, show_spinner=False)
def _load_map(path: str, stamp: int) -> np.ndarray:
    import nibabel  # once a map is shown

    return np.ascontiguousarray(np.asarray(nibabel.load(path).dataobj, dtype=np.float32))


def get_uncertainty(run: Run, fold: int, method: str, case_id: str, kind: str,
                    shape: tuple[int, ...] | None = None) -> np.ndarray | None:
    """A held-out exam's uncertainty map (``kind`` "entropy" or "disagreement", nats), cached; None when
    ``spar triage`` has not written it.

    Raises:
        SparError: the file lies outside the run folder, cannot be read, or has another shape than ``shape``.
    """
    path = run.folder.uncertainty_path(fold, method, case_id, kind)
    try:
        volume = _read(run, path, _load_map)
    except (OSError, ValueError) as err:
        raise SparError(f"{path}: unreadable uncertainty map ({err})") from None
    if volume is not None and shape is not None and volume.shape != tuple(shape):
        raise SparError(f"{path}: shape {volume.shape}, expected the exam's {tuple(shape)}")
    return volume


# ---------------------------------------------------------------------------------------------- latent


@st.cache_data(max_entries=8, show_spinner=False)
def _load_embeddings(path: str, stamp: int) -> pd.DataFrame:
    from spar_core.latent.embedding import read_embeddings

    return read_embeddings(path)


def get_embeddings(run: Run, fold: int) -> pd.DataFrame | None:
    """The fold's embedding table (:data:`spar_core.latent.embedding.COLUMNS`); None until ``spar embed`` wrote it.

    Raises:
        SparError: the file lies outside the run folder, or is unreadable / lacks columns.
    """
    return _read(run, run.folder.embeddings_path(fold), _load_embeddings)


def _snapshot_stamp(run: Run, fold: int) -> tuple[tuple[str, int], ...]:
    """(path, mtime) of each latent snapshot of ``fold``: a new epoch invalidates."""
    return tuple((str(inside(run, path)), mtime(path)) for path in run.folder.snapshot_files(fold))


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
    table = _read(run, run.folder.convergence_path(fold), _load_convergence)
    if table is not None:
        return table
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


# ---------------------------------------------------------------------------------------------- triage


def triage_tables(run: Run, table: str) -> dict[str, Path]:
    """Method -> its ``triage/<table>_<method>.csv`` (``table`` "triage", "spearman" or "images") for every
    method ``spar triage`` has written one; files outside the run folder are left out."""
    return {method: path for method, path in run.folder.triage_tables(table).items() if is_within(path, run.root)}


@st.cache_data(max_entries=16, show_spinner=False)
def _read_triage(path: str, stamp: int) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=TEXT_COLUMNS)
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise SparError(f"{path}: unreadable triage table ({err})") from None
    for column in TEXT_COLUMNS:
        if column in table:
            table[column] = table[column].fillna("").astype(str)
    return table


def get_triage_table(run: Run, table: str, method: str) -> pd.DataFrame | None:
    """``triage/<table>_<method>.csv`` (text columns as str, "" when empty), sorted by rank when it ranks exams
    ("triage", "images"); None while absent. "spearman": score, metric, expected, rho, p_value, n.

    Raises:
        SparError: unreadable, outside the run folder, or missing columns.
    """
    path = run.folder.triage_table(table, method)
    frame = _read(run, path, _read_triage)
    if frame is None:
        return None
    needed = TRIAGE_COLUMNS[table]
    missing = [c for c in needed if c not in frame]
    if missing:
        raise SparError(f"{path}: missing column(s) {', '.join(missing)}; written by another spar version? "
                        f"Run `spar triage {run.root}` again")
    if "rank" in needed:
        frame = frame.sort_values("rank", kind="stable").reset_index(drop=True)
    return frame
