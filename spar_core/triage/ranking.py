"""Combining the outlier scores of the exams into one rank, and checking the scores against the truth.

Each score becomes a robust z across the scored exams, (x − median) / scale with
scale = max(1.4826·MAD, the score's smallest meaningful difference ``MIN_SCALE``), oriented so that higher =
more suspicious (plausibility is negated), and clipped to ±5 so that no single score decides alone;
``triage_score`` is the mean of the available z's and rank 1 is the most suspicious exam.

The floor matters with few exams: among four near-identical plausibilities (0.557 vs 0.575) the MAD is tiny
and noise would become z ≈ 4; and when most exams have no extra component (MAD 0), one exam with 175 islands
should be 175 units away, not "3 mean absolute deviations".

Where the truth exists, :func:`spearman_table` checks the scores against the post-processed metrics: a useful
score correlates negatively with Dice and positively with MSSD over the held-out exams.

Pure functions of tables, torch-free: the figures and the app import the score names from here.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from spar_core.scoring.identity import is_true

# The outlier scores of one exam, in display order: from the predicted masks (spar_core.triage.scores), then
# from the model's own uncertainty (spar_core.triage.uncertainty).
MASK_SCORES: tuple[str, ...] = ("plausibility", "recon_error", "knn_distance", "components", "volume_z")
# where the exam lies against the training exams (spar_core.triage.ood)
OOD_SCORES: tuple[str, ...] = ("placement_z", "intensity_z")
UNCERTAINTY_SCORES: tuple[str, ...] = ("entropy", "disagreement", "entropy_worst", "disagreement_worst")
# the level model's call on a row (spar_core.postprocessing.levels): 1 where the level is unknown, else 0; an exam
# whose level is unknown ranks before every exam whose level is known (a person must count its levels)
LEVEL_SCORES: tuple[str, ...] = ("level_doubt",)
SCORES: tuple[str, ...] = MASK_SCORES + OOD_SCORES + UNCERTAINTY_SCORES + LEVEL_SCORES
# The triage table as a reader meets it: these first, the scores, then these last (the CLI, the app).
TABLE_LEAD: tuple[str, ...] = ("rank", "case", "fold", "triage_score")
TABLE_TAIL: tuple[str, ...] = ("degraded", "worst_slices")
# +1: higher is more suspicious; -1: lower is more suspicious.
ORIENTATION = {"plausibility": -1.0, "recon_error": 1.0, "knn_distance": 1.0, "components": 1.0, "volume_z": 1.0,
               **{score: 1.0 for score in OOD_SCORES + UNCERTAINTY_SCORES + LEVEL_SCORES}}
# What a useful score does against each metric over held-out exams.
EXPECTED_SIGN = {"dice": "negative", "mssd_mm": "positive"}
# The columns of the Spearman table (RUN/triage/spearman_<method>.csv).
SPEARMAN_COLUMNS = ["method", "score", "metric", "expected", "rho", "p_value", "n"]


def _spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float, int]:
    """Spearman's rho and its p over the pairs where both are finite, and their number; rho = p = nan for fewer
    than 3 pairs or a constant side. scipy.stats is imported here: the app's start-up reads this module's names."""
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return np.nan, np.nan, int(ok.sum())
    from scipy.stats import spearmanr

    result = spearmanr(x[ok], y[ok])
    return float(result.statistic), float(result.pvalue), int(ok.sum())
Z_CLIP = 5.0
# Smallest spread of a score that means something: (absolute, relative to |median|).
MIN_SCALE = {"plausibility": (0.05, 0.0), "recon_error": (0.05, 0.0), "knn_distance": (0.0, 0.05),
             "components": (1.0, 0.0), "volume_z": (0.5, 0.0), "placement_z": (0.5, 0.0), "intensity_z": (0.5, 0.0),
             "entropy": (0.0, 0.05), "disagreement": (0.0, 0.05),
             "entropy_worst": (0.0, 0.05), "disagreement_worst": (0.0, 0.05), "level_doubt": (0.2, 0.0)}


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
    sorted by rank: exams whose level is unknown (``level_doubt`` 1) first, then by ``triage_score``; ties are
    broken by case id, exams without any score rank last.
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
    doubt = out["level_doubt"].fillna(0.0) if "level_doubt" in out else pd.Series(0.0, index=out.index)
    out = out.assign(_doubt=doubt).sort_values(["_doubt", "triage_score", "case"], ascending=[False, False, True],
                                               na_position="last", kind="stable").drop(columns="_doubt")
    out["rank"] = np.arange(1, len(out) + 1)
    return out.reset_index(drop=True)


def fitted_combination(table: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Add ``triage_fitted``: per fold, a weighted mean of the z's with weights fitted on the *other* folds'
    exams only — each score weighs max(0, −ρ), ρ its Spearman correlation with exam Dice there — so no exam
    takes part in the weights it is ranked with (nested). ``attrs["weights"]`` holds each fold's weights.
    Fewer than two folds, or no Dice, give nan.
    """
    out = table.copy()
    out["triage_fitted"] = np.nan
    weights: dict[int, dict[str, float]] = {}
    zs = [c for c in out.columns if c.startswith("z_")]
    if metrics is None or metrics.empty or out["fold"].nunique() < 2 or not zs:
        out.attrs["weights"] = weights
        return out
    merged = out.merge(exam_means(metrics), on=["method", "case"], how="left")
    for fold in sorted(out["fold"].unique()):
        fit = merged[merged["fold"] != fold]
        w = {}
        for z in zs:
            rho, _, _ = _spearman(fit[z].to_numpy(dtype=float), fit["dice"].to_numpy(dtype=float))
            w[z[2:]] = float(max(0.0, -rho)) if np.isfinite(rho) else 0.0
        weights[int(fold)] = w
        rows = out["fold"] == fold
        values = out.loc[rows, zs].to_numpy(dtype=float)
        vector = np.asarray([w[z[2:]] for z in zs])
        present = np.isfinite(values)
        total = (np.where(present, values, 0.0) * vector).sum(axis=1)
        norm = (present * vector).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.loc[rows, "triage_fitted"] = np.where(norm > 0, total / norm, np.nan)
    out.attrs["weights"] = weights
    return out


# ---------------------------------------------------------------------------------------------- validation


def exam_means(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per (method, exam): the post-processed Dice and MSSD averaged over its structures, nan-skipping.

    Columns method, case, dice (a fraction), mssd_mm. ``metrics`` holds rows of ``metrics.csv``.
    """
    if "postprocessed" in metrics:
        metrics = metrics[metrics["postprocessed"].map(is_true)]
    return metrics.groupby(["method", "case"])[list(EXPECTED_SIGN)].mean().reset_index()


def spearman_table(triage_df: pd.DataFrame, metrics_df: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlation of each score and of ``triage_score`` with the exam's mean Dice and mean MSSD.

    Metrics are the post-processed rows of the same method, averaged over structures per exam (nan-skipping).
    Pairs with a missing value are left out; ``n`` counts the rest; fewer than 3, or a constant column, give
    rho = nan.

    Returns:
        Columns method, score, metric ("dice" / "mssd_mm"), expected ("negative" / "positive"), rho, p_value, n.
    """
    columns = SPEARMAN_COLUMNS
    if triage_df.empty or metrics_df is None or metrics_df.empty:
        return pd.DataFrame(columns=columns)
    merged = triage_df.merge(exam_means(metrics_df), on=["method", "case"], how="left")
    rows = []
    for method, group in merged.groupby("method", sort=True):
        for score in [*SCORES, "triage_score", "triage_fitted"]:
            if score not in group:
                continue
            for metric, expected in EXPECTED_SIGN.items():
                rho, p, n = _spearman(group[score].to_numpy(dtype=float), group[metric].to_numpy(dtype=float))
                rows.append({"method": method, "score": score, "metric": metric, "expected": expected,
                             "rho": rho, "p_value": p, "n": n})
    return pd.DataFrame(rows, columns=columns)
