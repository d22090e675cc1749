"""Outlier triage without ground truth: rank a run's exams (or new, unlabeled ones) by how suspicious their
predicted segmentation looks, so a reader opens the worst first.

Each exam gets the scores of :mod:`spar_core.triage.scores` (plausibility, recon_error, knn_distance,
components, volume_z; placement_z and intensity_z from :mod:`spar_core.triage.ood`) and of :mod:`spar_core.triage.uncertainty` (entropy, disagreement and their worst
structure, from a prediction with test-time augmentation), combined into one rank by
:mod:`spar_core.triage.ranking`; the held-out triage of a cross-validation also gets ``triage_fitted``, the
combination weighted on the other folds (nested).

Outputs: ``RUN/triage/triage_<method>.csv``, ``RUN/triage/spearman_<method>.csv``, and for ``triage_images``
``RUN/triage/images_<method>.csv`` with the raw predictions in ``RUN/triage/images_<method>/`` laid out as
``spar predict`` lays out its OUT (labels on top, uncertainty maps in ``uncertainty/``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch

from spar_core.data.nifti import NIFTI_SUFFIXES, Volume, case_id_of, load_image, read_label_volume, resolve_slice_axis
from spar_core.data.dataset import Dataset, load_dataset, load_volume
from spar_core.errors import SparError, note
from spar_core.methods import SPAR
from spar_core.postprocessing.levels import LevelCall
from spar_core.inference.ensemble import predict_ensemble
from spar_core.data.nifti import write_label_volume, write_map_volume
from spar_core.paths import DATASET_JSON, PREDICTION_FILES, read_json_object, write_csv
from spar_core.progress import Progress, ProgressEvent, silent
from spar_core.layout.run_folder import RunFolder
from spar_core.training.segmenter import load_unet
from spar_core.triage.ranking import combine_scores, fitted_combination, spearman_table
from spar_core.triage.scores import (
    MIN_TRAIN_VOLUMES,
    TrainingReference,
    load_triage_models,
    score_exam,
    training_reference,
)
from spar_core.triage.uncertainty import uncertainty_scores
from spar_core.evaluation.report import load_metrics


# ---------------------------------------------------------------------------------------------- helpers


def default_method(run: RunFolder, folds: list[int]) -> str:
    """``spar`` when trained, else the first trained method (run.json order)."""
    trained = sorted({m for f in folds for m in run.methods(f)})
    if not trained:
        raise SparError(f"{run.root}: no trained method in fold(s) {folds}")
    if SPAR in trained:
        return SPAR
    order = [m for m in run.read_config().get("methods", []) if m in trained]
    return (order or trained)[0]


def degraded_flags(dataset_dir: str | Path | None) -> dict[str, str]:
    """case → "motion" / "low_snr" / "" from a dataset.json's "subjects" metadata ({} when absent)."""
    if not dataset_dir:
        return {}
    path = Path(dataset_dir) / DATASET_JSON
    try:
        subjects = json.loads(path.read_text()).get("subjects") or []
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(s["case"]): str(s.get("degraded") or "") for s in subjects if isinstance(s, dict) and "case" in s}


def fold_reference(run: RunFolder, fold: int, models, notes: list[str]) -> TrainingReference | None:
    try:
        reference = training_reference(run, fold, models)
    except SparError as err:
        notes.append(f"fold {fold}: knn_distance and volume_z not scored ({err})")
        return None
    few = min((len(v) for v in reference.volumes.values()), default=0)
    if few < MIN_TRAIN_VOLUMES:
        notes.append(f"fold {fold}: volume_z not scored ({few} training exams; {MIN_TRAIN_VOLUMES} needed "
                     "for a standard deviation)")
    return reference


def run_structures(config: dict) -> dict[str, int]:
    labels = config.get("labels") or {}
    structures = {str(k): int(v) for k, v in labels.items() if int(v) != 0}
    if not structures:
        raise SparError("run.json has no \"labels\"; expected the dataset's label names and values")
    return structures


def _uncertainty(unet, size: int, volume: Volume, labels, structures: dict[str, int], device: torch.device,
                 precision: str, maps: dict[str, Path] | None = None) -> dict[str, float]:
    """Uncertainty scores of ``labels`` from ``unet`` with test-time augmentation; the maps written to ``maps``."""
    pred = predict_ensemble([unet], volume, size, tta=True, device=device, precision=precision)
    for kind, path in (maps or {}).items():
        write_map_volume(getattr(pred, kind), volume, path)
    return uncertainty_scores(pred, labels, structures)


def exam_row(case: str, fold: int, method: str, scored, prediction: str, degraded: str,
             uncertainty: dict[str, float] | None = None, level_doubt: float = float("nan")) -> dict:
    """One exam's row of a triage table (its scores, nan where not computed)."""
    return {"case": case, "fold": fold, "method": method, **scored.scores, **(uncertainty or {}),
            "level_doubt": level_doubt,
            "worst_slices": ";".join(str(s) for s in scored.worst_slices()), "degraded": degraded,
            "prediction": prediction}


def _level_doubt(run: RunFolder, fold: int, method: str, case: str) -> dict[str, float]:
    """``level_doubt`` of a held-out exam from the level call the run recorded (none where it recorded none)."""
    path = run.method_folder(fold, method).level_evidence(case)
    if not path.is_file():
        return {}
    try:
        call = LevelCall.from_json(read_json_object(path, "a level call").get("call"), str(path))
    except SparError as err:
        note(f"{err}; level_doubt not scored")
        return {}
    return {"level_doubt": float(call.unknown)}


def _resolve(run: RunFolder | str | Path) -> tuple[RunFolder, dict]:
    run = run if isinstance(run, RunFolder) else RunFolder(run)
    return run, run.read_config()


# ---------------------------------------------------------------------------------------------- run exams


def _score_held_out(run: RunFolder, config: dict, fold: int, method: str, device: torch.device,
                    notes: list[str], progress: Progress) -> list[dict]:
    """Rows of ``fold``'s test exams predicted by ``method`` (raw predictions; post-processed as a fallback)."""
    if not run.model_path(fold, method).is_file():
        notes.append(f"fold {fold}: method {method!r} not trained, fold skipped")
        return []
    models = load_triage_models(run, fold, method, device)
    if models.discriminator is None:
        notes.append(f"fold {fold}: no 'spar' model, so no code discriminator: plausibility not scored")
    reference = fold_reference(run, fold, models, notes)
    structures = run_structures(config)
    flags = degraded_flags(config.get("dataset"))
    test = run.read_split(fold).test
    dataset = _dataset(config, notes)
    unet, meta = load_unet(run.model_path(fold, method), device) if dataset is not None else (None, None)
    rows = []
    for i, case in enumerate(test, start=1):
        raw = run.prediction_path(fold, method, case, raw=True)
        path = raw if raw.is_file() else run.prediction_path(fold, method, case)
        if not path.is_file():
            notes.append(f"fold {fold}: {case} has no prediction by {method!r}, not scored")
            continue
        if path != raw:
            notes.append(f"fold {fold}: {case} has no raw prediction; scored the post-processed one "
                         "(components is then 0)")
        labels, spacing = read_label_volume(path)
        volume = load_volume(dataset, case, with_label=False) if dataset is not None else None
        scored = score_exam(labels, spacing, resolve_slice_axis(spacing, config.get("slice_axis")), models,
                            structures, reference, image=None if volume is None else volume.image)
        uncertainty = None
        if volume is not None:
            maps = {k: run.uncertainty_path(fold, method, case, k) for k in ("entropy", "disagreement")}
            uncertainty = _uncertainty(unet, meta.size, volume, labels, structures, device, "auto", maps)
        rows.append({**exam_row(case, fold, method, scored, str(path.relative_to(run.root)), flags.get(case, ""),
                            uncertainty), **_level_doubt(run, fold, method, case)})
        progress(ProgressEvent("triage", 1, 1, i, len(test), label=f"{method} fold {fold}"))
    return rows


def _dataset(config: dict, notes: list[str]) -> Dataset | None:
    """The run's dataset, whose images the uncertainty scores predict again; None (with a note) when absent."""
    try:
        return load_dataset(config.get("dataset", ""))
    except SparError as err:
        if not any(n.startswith("uncertainty") for n in notes):
            notes.append(f"uncertainty scores not computed: the run's dataset is not readable ({err})")
        return None


def triage_run(run: RunFolder | str | Path, method: str | None = None, fold: int | None = None, *,
               device: torch.device | str = "cpu", progress: Progress = silent) -> pd.DataFrame:
    """Score and rank every held-out exam of the run (or of one fold) predicted by ``method``.

    Args:
        run: a run folder written by ``spar crossval`` / ``spar demo``.
        method: the method whose predictions are scored (default: ``spar`` if trained, else the first trained).
        fold: one fold, or None for every fold (cross-validation tests each exam in exactly one fold).

    Returns:
        One row per exam, sorted by rank: case, fold, method, the ``SCORES`` (nan when not available), z_<score>,
        triage_score, rank, worst_slices ("k1;k2;k3", native slice indices), degraded (dataset.json
        "subjects" flag or ""), prediction (file scored, relative to the run). ``attrs["notes"]`` lists what
        was skipped and why.

    Raises:
        SparError: not a run folder, unknown fold, method never trained.
    """
    run, config = _resolve(run)
    folds = run.folds() if fold is None else [fold]
    if fold is not None and fold not in run.folds():
        raise SparError(f"--fold: {fold} is not a fold of {run.root} (folds: {run.folds() or 'none'})")
    if not folds:
        raise SparError(f"{run.root}: no folds (folds/<k>/split.json) in this run")
    method = method or default_method(run, folds)
    trained = sorted({m for f in folds for m in run.methods(f)})
    if method not in trained:
        raise SparError(f"--method: {method!r} has no trained model in {run.root} (trained: "
                        f"{', '.join(trained) or 'none'})")
    notes: list[str] = []
    rows = [r for f in folds for r in _score_held_out(run, config, f, method, torch.device(device), notes,
                                                        progress)]
    if not rows:
        raise SparError(f"{run.root}: no held-out prediction of method {method!r} to score")
    table = combine_scores(pd.DataFrame(rows))
    table.attrs["notes"] = notes
    return table


# ---------------------------------------------------------------------------------------------- new images


def image_files(images_dir: str | Path) -> list[Path]:
    """NIfTI files of a folder, or of its ``imagesTr/`` when it is a dataset folder (labels not needed)."""
    root = Path(images_dir)
    if not root.is_dir():
        raise SparError(f"--images {root}: no such folder; expected a folder of .nii/.nii.gz exams")
    folder = root / "imagesTr" if (root / "imagesTr").is_dir() else root
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(NIFTI_SUFFIXES))
    if not files:
        raise SparError(f"--images {folder}: no .nii or .nii.gz file in this folder")
    return files


def triage_images(run: RunFolder | str | Path, images_dir: str | Path, method: str | None = None, fold: int = 0,
                  *, device: torch.device | str = "cpu", precision: str = "auto", progress: Progress = silent
                  ) -> pd.DataFrame:
    """Predict unlabeled exams with ``fold``'s model of ``method`` and rank them (no label needed anywhere).

    The z's are taken against the images together with the fold's held-out exams (when their predictions
    exist), so that a single new exam is still compared with typical ones. Raw predictions are written to
    ``RUN/triage/images_<method>/<case>.nii.gz`` for viewing.

    Returns:
        The columns of :func:`triage_run`, one row per image, sorted by rank among the images.
    """
    run, config = _resolve(run)
    method = method or default_method(run, [fold])
    model = run.model_path(fold, method)
    if not model.is_file():
        raise SparError(f"--method: {method!r} has no trained model in fold {fold} of {run.root} "
                        f"(trained: {', '.join(run.methods(fold)) or 'none'})")
    files = image_files(images_dir)
    device = torch.device(device)
    notes: list[str] = []
    models = load_triage_models(run, fold, method, device)
    if models.discriminator is None:
        notes.append(f"fold {fold}: no 'spar' model, so no code discriminator: plausibility not scored")
    reference = fold_reference(run, fold, models, notes)
    unet, meta = load_unet(model, device)
    flags = degraded_flags(images_dir)
    structures = run_structures(config)
    out_dir = run.triage_images_dir(method)
    rows = []
    for i, path in enumerate(files, start=1):
        volume = load_image(path, config.get("slice_axis"))
        # labels as the held-out exams' were predicted (one pass), uncertainty from the shifted copies
        labels = predict_ensemble([unet], volume, meta.size, device=device, precision=precision).labels
        written = write_label_volume(labels, volume, out_dir / PREDICTION_FILES["labels"].format(case=volume.case_id))
        maps = {k: out_dir / PREDICTION_FILES[k].format(case=volume.case_id) for k in ("entropy", "disagreement")}
        uncertainty = _uncertainty(unet, meta.size, volume, labels, structures, device, precision, maps)
        scored = score_exam(labels, volume.spacing, volume.slice_axis, models, structures, reference,
                            image=volume.image)
        rows.append(exam_row(case_id_of(path), fold, method, scored, str(written.relative_to(run.root)),
                         flags.get(volume.case_id, ""), uncertainty))
        progress(ProgressEvent("triage", 1, 1, i, len(files), label=f"images {method} fold {fold}"))
    images = pd.DataFrame(rows)
    held_out = pd.DataFrame(_score_held_out(run, config, fold, method, device, [], silent))
    table = combine_scores(images, reference=pd.concat([images, held_out], ignore_index=True))
    table.attrs["notes"] = notes
    return table


# ---------------------------------------------------------------------------------------------- files


def write_triage(run: RunFolder | str | Path, method: str | None = None, fold: int | None = None, *,
                 device: torch.device | str = "cpu", progress: Progress = silent
                 ) -> tuple[pd.DataFrame, pd.DataFrame, Path, Path]:
    """:func:`triage_run` and :func:`spearman_table`, written to ``RUN/triage/{triage,spearman}_<method>.csv``."""
    run, _ = _resolve(run)
    table = triage_run(run, method, fold, device=device, progress=progress)
    method = str(table["method"].iloc[0])
    metrics = load_metrics(run.metrics_csv) if run.metrics_csv.is_file() else pd.DataFrame()
    notes = table.attrs.get("notes", [])
    table = fitted_combination(table, metrics)
    table.attrs["notes"] = notes
    spearman = spearman_table(table, metrics)
    spearman.attrs = {}
    return (table, spearman, write_csv(run.triage_table("triage", method), table),
            write_csv(run.triage_table("spearman", method), spearman))


def write_triage_images(run: RunFolder | str | Path, images_dir: str | Path, method: str | None = None,
                        fold: int = 0, *, device: torch.device | str = "cpu", precision: str = "auto",
                        progress: Progress = silent) -> tuple[pd.DataFrame, Path]:
    """:func:`triage_images`, written to ``RUN/triage/images_<method>.csv``."""
    run, _ = _resolve(run)
    table = triage_images(run, images_dir, method, fold, device=device, precision=precision, progress=progress)
    method = str(table["method"].iloc[0])
    return table, write_csv(run.triage_table("images", method), table)
