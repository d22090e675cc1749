"""Triage of label maps spar did not make: another model's predictions (nnU-Net's, a colleague's) ranked with a
run's shape model, so that an analyst who segments with another tool can still open the worst exams first.

Each prediction is scored by what judges a mask without the network that made it (:mod:`spar_core.triage.scores`:
plausibility by SPAR's code discriminator, recon_error and knn_distance by the fold's shape auto-encoder,
components, volume_z; :mod:`spar_core.triage.ood`: placement_z, intensity_z from the exam's image) and by the
fold's level model where the run orders a row by it (``level_doubt``). The uncertainty scores (entropy,
disagreement) need the probabilities of the model that predicted, which a label map does not hold: they are not
computed, and the table's notes say so.

An exam a fold of the run tested is scored with that fold's models (they never saw it); any other exam with the
models of ``fold`` (default 0), noted. Where the truth is at hand (the images are a dataset with labels, or a
folder of truth label maps is given), each exam's metrics are computed and the scores checked against them
(:func:`~spar_core.triage.ranking.spearman_table`).

Written: ``RUN/triage/predictions/<name>.csv`` (the ranked table), ``<name>_metrics.csv`` and
``<name>_spearman.csv`` (with the truth).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from spar_core.data.dataset import Dataset, load_dataset, load_volume
from spar_core.data.nifti import NIFTI_SUFFIXES, Volume, case_id_of, load_image, read_label_volume
from spar_core.errors import SparError
from spar_core.evaluation.rows import metric_rows
from spar_core.paths import DATASET_JSON, write_csv
from spar_core.postprocessing.run_levels import RunLevels
from spar_core.postprocessing.settings import run_settings
from spar_core.progress import Progress, ProgressEvent, silent
from spar_core.layout.run_folder import RunFolder
from spar_core.training.presets import recorded_preset
from spar_core.triage.exams import default_method, exam_row, fold_reference, image_files, run_structures
from spar_core.triage.ranking import UNCERTAINTY_SCORES, combine_scores, spearman_table
from spar_core.triage.scores import load_triage_models, score_exam

PREDICTIONS_DIR = "predictions"  # RUN/triage/predictions/


@dataclass(frozen=True)
class PredictionSet:
    """A folder of label maps ``<case>.nii.gz`` and where their exams' images (and truth) are.

    ``images``: a dataset folder (its images and, where present, labels), or a folder of images (``<case>.nii.gz``
    or nnU-Net's ``<case>_0000.nii.gz``); None: the run's own dataset. ``truth``: a folder of truth label maps,
    for the validation only. ``tag``: put before each case id (``tag/case``) when several sets are ranked
    together and their case ids repeat (the same exam moved in the field of view)."""

    predictions: Path
    images: Path | None = None
    truth: Path | None = None
    tag: str = ""


def prediction_files(folder: Path) -> dict[str, Path]:
    """Case id → label map of a folder of predictions (``.nii``/``.nii.gz``)."""
    if not folder.is_dir():
        raise SparError(f"--predictions {folder}: no such folder; expected a folder of label maps <case>.nii.gz")
    files = {case_id_of(p): p for p in sorted(folder.iterdir()) if p.is_file() and p.name.endswith(NIFTI_SUFFIXES)}
    if not files:
        raise SparError(f"--predictions {folder}: no .nii or .nii.gz label map in this folder")
    return files


class _Exams:
    """Image (and truth) of each case of a prediction set."""

    def __init__(self, source: PredictionSet, run_dataset: Dataset | None, slice_axis: int | None) -> None:
        self.slice_axis = slice_axis
        self.dataset: Dataset | None = run_dataset
        self.images: dict[str, Path] = {}
        if source.images is not None:
            root = Path(source.images)
            if (root / DATASET_JSON).is_file():
                self.dataset = load_dataset(root)
            else:
                self.dataset = None
                self.images = {case_id_of(p): p for p in image_files(root)}
        self.cases = set() if self.dataset is None else {c.case_id for c in self.dataset.cases}
        self.truth = {} if source.truth is None else prediction_files(Path(source.truth))
        self.where = str(source.images or (run_dataset.root if run_dataset is not None else "the run's dataset"))

    def exam(self, case: str) -> tuple[Volume, np.ndarray | None]:
        """The exam's image, and its truth where at hand (a truth folder's, else its dataset's label), each file
        read once."""
        truth = read_label_volume(self.truth[case])[0] if case in self.truth else None
        if case in self.images:
            return load_image(self.images[case], self.slice_axis), truth
        if case in self.cases:
            labelled = truth is None and self.dataset.case(case).label_path is not None  # type: ignore[union-attr]
            volume = load_volume(self.dataset, case, with_label=labelled)  # type: ignore[arg-type]
            return volume, volume.label if labelled else truth
        raise SparError(f"{case}: no image of this exam in {self.where}")


def triage_predictions(run: RunFolder | str | Path, sets: Sequence[PredictionSet], name: str, fold: int = 0, *,
                       device: torch.device | str = "cpu", progress: Progress = silent
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score and rank the label maps of ``sets`` together (their z's against each other); returns the ranked
    table (columns of :func:`~spar_core.triage.exams.triage_run`, ``method`` = ``name``, ``attrs["notes"]``) and
    the metrics of the exams whose truth is at hand (empty without).

    Raises:
        SparError: not a run, an empty or missing folder, a label map whose grid is not its image's, an exam
            with no image.
    """
    run = run if isinstance(run, RunFolder) else RunFolder(run)
    config = run.read_config()
    if fold not in run.folds():
        raise SparError(f"--fold: {fold} is not a fold of {run.root} (folds: {run.folds() or 'none'})")
    device = torch.device(device)
    structures = run_structures(config)
    tested = {case: f for f in run.folds() for case in run.read_split(f).test}
    try:
        run_dataset = load_dataset(config.get("dataset", ""))
    except SparError:
        run_dataset = None
    levels = RunLevels(run, run_dataset, run_settings(config), recorded_preset(config.get("preset")),
                       device=device)
    notes = [f"{', '.join(UNCERTAINTY_SCORES)}: not computed (they need the probabilities of the model that "
             "predicted; a label map holds none)"]
    loaded: dict[int, tuple] = {}
    rows, metrics, elsewhere = [], [], []
    files = [(s, case, path) for s in sets for case, path in prediction_files(Path(s.predictions)).items()]
    exams = {s: _Exams(s, run_dataset, config.get("slice_axis")) for s in sets}
    for i, (source, case, path) in enumerate(files, start=1):
        own = tested.get(case)
        if own is None:
            elsewhere.append(case)
        k = fold if own is None else own
        if k not in loaded:
            method = default_method(run, [k])
            models = load_triage_models(run, k, method, device)
            if models.discriminator is None and not any("plausibility" in n for n in notes):
                notes.append(f"fold {k}: no 'spar' model, so no code discriminator: plausibility not scored")
            loaded[k] = (models, fold_reference(run, k, models, notes))
        models, reference = loaded[k]
        volume, truth = exams[source].exam(case)
        labels, _ = read_label_volume(path, [0, *structures.values()])
        if labels.shape != volume.image.shape:
            raise SparError(f"{path}: label map of shape {labels.shape}; expected its image's grid "
                            f"{volume.image.shape}")
        scored = score_exam(labels, volume.spacing, volume.slice_axis, models, structures, reference,
                            image=volume.image)
        found = levels.evidence(k, labels, volume)
        shown = f"{source.tag}/{case}" if source.tag else case
        rows.append(exam_row(shown, k, name, scored, str(path), "", dict.fromkeys(UNCERTAINTY_SCORES, np.nan),
                             float(found[1].unknown) if found is not None else np.nan))
        if truth is not None:
            metrics += metric_rows(labels, truth, volume.spacing, structures,
                                   {"case": shown, "fold": k, "method": name}, postprocessed=True)
        progress(ProgressEvent("triage", 1, 1, i, len(files), label=f"predictions {name}"))
    if elsewhere:
        notes.append(f"{len(elsewhere)} exam(s) tested by no fold of the run ({', '.join(sorted(set(elsewhere))[:5])}"
                     f"{', …' if len(set(elsewhere)) > 5 else ''}): scored with fold {fold}'s models, which may "
                     "have trained on them")
    if all(np.isnan(r["level_doubt"]) for r in rows):
        notes.append("level_doubt: not scored (the run orders no row by a level model)")
    table = combine_scores(pd.DataFrame(rows))
    table.attrs["notes"] = notes
    return table, pd.DataFrame(metrics)


def write_triage_predictions(run: RunFolder | str | Path, sets: Sequence[PredictionSet], name: str, fold: int = 0,
                             *, device: torch.device | str = "cpu", progress: Progress = silent
                             ) -> tuple[pd.DataFrame, pd.DataFrame, list[Path]]:
    """:func:`triage_predictions` written under ``RUN/triage/predictions/``: ``<name>.csv``, and with the truth
    ``<name>_metrics.csv`` and ``<name>_spearman.csv``; returns the table, the Spearman table and the paths."""
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise SparError(f"--name {name!r}: expected a plain name for the table (letters, digits, - or _)")
    run = run if isinstance(run, RunFolder) else RunFolder(run)
    table, metrics = triage_predictions(run, sets, name, fold, device=device, progress=progress)
    folder = run.triage_dir / PREDICTIONS_DIR
    paths = [write_csv(folder / f"{name}.csv", table)]
    spearman = spearman_table(table, metrics) if not metrics.empty else pd.DataFrame()
    if not metrics.empty:
        paths += [write_csv(folder / f"{name}_metrics.csv", metrics),
                  write_csv(folder / f"{name}_spearman.csv", spearman)]
    return table, spearman, paths
