"""Outlier triage without ground truth: rank a run's exams (or new, unlabeled ones) by how suspicious their
predicted segmentation looks, so a reader opens the worst first.

Each exam gets the scores of :mod:`spar_core.triage.scores` (plausibility, recon_error, knn_distance,
components, volume_z). Each score becomes a robust z across the scored exams, (x − median) / scale with
scale = max(1.4826·MAD, the score's smallest meaningful difference ``MIN_SCALE``), oriented so that higher =
more suspicious (plausibility is negated), and clipped to ±5 so that no single score decides alone;
``triage_score`` is the mean of the available z's and rank 1 is the most suspicious exam.

The floor matters with few exams: among four near-identical plausibilities (0.557 vs 0.575) the MAD is tiny
and noise would become z ≈ 4; and when most exams have no extra component (MAD 0), one exam with 175 islands
should be 175 units away, not "3 mean absolute deviations".

Where the truth exists, :func:`spearman_table` checks the scores against the post-processed metrics: a useful
score correlates negatively with Dice and positively with MSSD over the held-out exams.

Outputs: ``RUN/triage/triage_<method>.csv``, ``RUN/triage/spearman_<method>.csv``, and for ``triage_images``
``RUN/triage/images_<method>.csv`` with the raw predictions in ``RUN/triage/images_<method>/``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from spar_core.data.dataset import NIFTI_SUFFIXES, case_id_of, load_image, read_label_volume, resolve_slice_axis
from spar_core.errors import SparError
from spar_core.methods import SPAR
from spar_core.evaluation.inference import predict_volume, write_label_volume
from spar_core.paths import write_csv
from spar_core.progress import Progress, ProgressEvent, silent
from spar_core.runs.run_folder import RunFolder
from spar_core.training.segmenter import load_unet
from spar_core.triage.scores import (
    MIN_TRAIN_VOLUMES,
    SCORES,
    TrainingReference,
    load_triage_models,
    score_exam,
    training_reference,
)

# +1: higher is more suspicious; -1: lower is more suspicious.
ORIENTATION = {"plausibility": -1.0, "recon_error": 1.0, "knn_distance": 1.0, "components": 1.0, "volume_z": 1.0}
# What a useful score does against each metric over held-out exams.
EXPECTED_SIGN = {"dice": "negative", "mssd_mm": "positive"}
Z_CLIP = 5.0
# Smallest spread of a score that means something: (absolute, relative to |median|).
MIN_SCALE = {"plausibility": (0.05, 0.0), "recon_error": (0.05, 0.0), "knn_distance": (0.0, 0.05),
             "components": (1.0, 0.0), "volume_z": (0.5, 0.0)}


# ---------------------------------------------------------------------------------------------- combining


def robust_z(values: np.ndarray, reference: np.ndarray | None = None, min_scale: float = 0.0,
             rel_scale: float = 0.0) -> np.ndarray:
    """(x − median) / scale of ``values`` against ``reference`` (default: the values); nan stays nan.

    scale = max(1.4826·MAD, ``min_scale``, ``rel_scale``·|median|). Without a floor, MAD 0 falls back to
    1.2533 × the mean absolute deviation from the median; if that is 0 too, every finite value gets z = 0
    (the score does not separate the exams).
    """
    values = np.asarray(values, dtype=np.float64)
    ref = np.asarray(values if reference is None else reference, dtype=np.float64)
    ref = ref[np.isfinite(ref)]
    if ref.size == 0:
        return np.full(values.shape, np.nan)
    median = np.median(ref)
    scale = max(1.4826 * np.median(np.abs(ref - median)), min_scale, rel_scale * abs(median))
    if not scale > 0:
        scale = 1.2533 * np.mean(np.abs(ref - median))
    if not scale > 0:
        return np.where(np.isfinite(values), 0.0, np.nan)
    return (values - median) / scale


def combine_scores(frame: pd.DataFrame, reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """Add ``z_<score>`` (oriented, clipped to ±``Z_CLIP``), ``triage_score`` (mean of the available z's) and
    ``rank`` (1 = most suspicious).

    ``reference`` (default: ``frame``) holds the exams whose median and MAD define the z's. Returns a copy
    sorted by rank; ties are broken by case id, exams without any score rank last.
    """
    out = frame.copy()
    reference = frame if reference is None else reference
    zs = []
    for score, sign in ORIENTATION.items():
        if score in out and np.isfinite(out[score].to_numpy(dtype=float)).any():
            floor, relative = MIN_SCALE.get(score, (0.0, 0.0))
            z = sign * robust_z(out[score].to_numpy(dtype=float), reference[score].to_numpy(dtype=float),
                                floor, relative)
            out[f"z_{score}"] = np.clip(z, -Z_CLIP, Z_CLIP)
            zs.append(f"z_{score}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan rows
        out["triage_score"] = np.nanmean(out[zs].to_numpy(dtype=float), axis=1) if zs else np.nan
    out = out.sort_values(["triage_score", "case"], ascending=[False, True], na_position="last", kind="stable")
    out["rank"] = np.arange(1, len(out) + 1)
    return out.reset_index(drop=True)


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
    path = Path(dataset_dir) / "dataset.json"
    try:
        subjects = json.loads(path.read_text()).get("subjects") or []
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(s["case"]): str(s.get("degraded") or "") for s in subjects if isinstance(s, dict) and "case" in s}


def _fold_reference(run: RunFolder, fold: int, models, notes: list[str]) -> TrainingReference | None:
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


def _structures(config: dict) -> dict[str, int]:
    labels = config.get("labels") or {}
    structures = {str(k): int(v) for k, v in labels.items() if int(v) != 0}
    if not structures:
        raise SparError("run.json has no \"labels\"; expected the dataset's label names and values")
    return structures


def _row(case: str, fold: int, method: str, scored, prediction: str, degraded: str) -> dict:
    return {"case": case, "fold": fold, "method": method, **scored.scores,
            "worst_slices": ";".join(str(s) for s in scored.worst_slices()), "degraded": degraded,
            "prediction": prediction}


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
    reference = _fold_reference(run, fold, models, notes)
    structures = _structures(config)
    flags = degraded_flags(config.get("dataset"))
    test = run.read_split(fold).test
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
        scored = score_exam(labels, spacing, resolve_slice_axis(spacing, config.get("slice_axis")), models,
                            structures, reference)
        rows.append(_row(case, fold, method, scored, str(path.relative_to(run.root)), flags.get(case, "")))
        progress(ProgressEvent("triage", 1, 1, i, len(test), label=f"{method} fold {fold}"))
    return rows


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
                  *, device: torch.device | str = "cpu", progress: Progress = silent) -> pd.DataFrame:
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
    reference = _fold_reference(run, fold, models, notes)
    unet, meta = load_unet(model, device)
    flags = degraded_flags(images_dir)
    structures = _structures(config)
    out_dir = run.triage_images_dir(method)
    rows = []
    for i, path in enumerate(files, start=1):
        volume = load_image(path, config.get("slice_axis"))
        labels = predict_volume(unet, volume, meta["size"], device=device)
        written = write_label_volume(labels, volume, out_dir / f"{volume.case_id}.nii.gz")
        scored = score_exam(labels, volume.spacing, volume.slice_axis, models, structures, reference)
        rows.append(_row(case_id_of(path), fold, method, scored, str(written.relative_to(run.root)),
                         flags.get(volume.case_id, "")))
        progress(ProgressEvent("triage", 1, 1, i, len(files), label=f"images {method} fold {fold}"))
    images = pd.DataFrame(rows)
    held_out = pd.DataFrame(_score_held_out(run, config, fold, method, device, [], silent))
    table = combine_scores(images, reference=pd.concat([images, held_out], ignore_index=True))
    table.attrs["notes"] = notes
    return table


# ---------------------------------------------------------------------------------------------- validation


def spearman_table(triage_df: pd.DataFrame, metrics_df: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlation of each score and of ``triage_score`` with the exam's mean Dice and mean MSSD.

    Metrics are the post-processed rows of the same method, averaged over structures per exam (nan-skipping).
    Pairs with a missing value are left out; ``n`` counts the rest; fewer than 3, or a constant column, give
    rho = nan.

    Returns:
        Columns method, score, metric ("dice" / "mssd_mm"), expected ("negative" / "positive"), rho, p_value, n.
    """
    columns = ["method", "score", "metric", "expected", "rho", "p_value", "n"]
    if triage_df.empty or metrics_df is None or metrics_df.empty:
        return pd.DataFrame(columns=columns)
    metrics = metrics_df
    if "postprocessed" in metrics:
        metrics = metrics[metrics["postprocessed"].astype(str).str.lower() == "true"]
    per_exam = (metrics.groupby(["method", "case"])[list(EXPECTED_SIGN)].mean().reset_index())
    merged = triage_df.merge(per_exam, on=["method", "case"], how="left")
    rows = []
    for method, group in merged.groupby("method", sort=True):
        for score in [*SCORES, "triage_score"]:
            if score not in group:
                continue
            for metric, expected in EXPECTED_SIGN.items():
                x, y = group[score].to_numpy(dtype=float), group[metric].to_numpy(dtype=float)
                ok = np.isfinite(x) & np.isfinite(y)
                rho = p = np.nan
                if ok.sum() >= 3 and np.ptp(x[ok]) > 0 and np.ptp(y[ok]) > 0:
                    result = spearmanr(x[ok], y[ok])
                    rho, p = float(result.statistic), float(result.pvalue)
                rows.append({"method": method, "score": score, "metric": metric, "expected": expected,
                             "rho": rho, "p_value": p, "n": int(ok.sum())})
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------------------------------------- files


def write_triage(run: RunFolder | str | Path, method: str | None = None, fold: int | None = None, *,
                 device: torch.device | str = "cpu", progress: Progress = silent
                 ) -> tuple[pd.DataFrame, pd.DataFrame, Path, Path]:
    """:func:`triage_run` and :func:`spearman_table`, written to ``RUN/triage/{triage,spearman}_<method>.csv``."""
    run, _ = _resolve(run)
    table = triage_run(run, method, fold, device=device, progress=progress)
    method = str(table["method"].iloc[0])
    metrics = pd.read_csv(run.metrics_csv) if run.metrics_csv.is_file() else pd.DataFrame()
    spearman = spearman_table(table, metrics)
    spearman.attrs = {}
    return (table, spearman, write_csv(run.triage_table("triage", method), table),
            write_csv(run.triage_table("spearman", method), spearman))


def write_triage_images(run: RunFolder | str | Path, images_dir: str | Path, method: str | None = None,
                        fold: int = 0, *, device: torch.device | str = "cpu", progress: Progress = silent
                        ) -> tuple[pd.DataFrame, Path]:
    """:func:`triage_images`, written to ``RUN/triage/images_<method>.csv``."""
    run, _ = _resolve(run)
    table = triage_images(run, images_dir, method, fold, device=device, progress=progress)
    method = str(table["method"].iloc[0])
    return table, write_csv(run.triage_table("images", method), table)
