"""Post-processing decided from the data, as nnU-Net does: a step is kept only where it raises the Dice of
cross-validated predictions.

The steps are those of :func:`~spar_core.postprocessing.steps.postprocess`: relabelling structures in a row
(the chain, when the training labels form one), keeping each structure's largest component (or its k parts),
and the closing. The chain and the closing are chosen for the whole volume, the component step per
structure, each added to what is kept so far, starting from raw. A step is kept when, over the deciding
exams, it raises the per-exam Dice beyond chance (one-sided paired Wilcoxon test, p < ``ALPHA``), or leaves
the Dice not significantly lower and lowers the MSSD beyond chance: removing an island moves the Dice by a
hair and the maximum surface distance by centimetres. Choosing on the mean Dice alone (as nnU-Net does)
chased noise on the spine's 32 deciding exams (bench/results/postprocess/).
The decision for a fold is made on the *out-of-fold* raw predictions of its training exams — each predicted
by the fold in which it was a test exam — so no exam a fold reports on takes part in its own choice.

Modes of ``--postprocess``: ``auto`` (decided so), ``largest`` (the paper's: every step, for every structure),
``none`` (the stacked 2D predictions as they are).
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any, Sequence

import numpy as np
from scipy.stats import wilcoxon

from spar_core.errors import SparError
from spar_core.evaluation.metrics import evaluate_labels
from spar_core.postprocessing.steps import PostprocessConfig, postprocess

MODES = ("auto", "largest", "none")
ALPHA = 0.05  # a step must help beyond chance: one-sided paired Wilcoxon test over the deciding exams
RAW = PostprocessConfig(largest_component=False, closing_mm=0.0)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise SparError(f"--postprocess {mode!r}: expected one of {', '.join(MODES)}")
    return mode


def _variant(base: PostprocessConfig, chain: bool, closing: bool, largest: bool) -> PostprocessConfig:
    return replace(base, chain=base.chain if chain else None, closing_mm=base.closing_mm if closing else 0.0,
                   largest_component=largest)


def exam_scores(exams: Sequence[tuple[np.ndarray, np.ndarray, tuple[float, float, float]]], values: Sequence[int],
                cfg: PostprocessConfig | None) -> np.ndarray:
    """(exams, structures, 2): Dice and MSSD (mm, nan where undefined) after ``cfg`` (None: raw)."""
    structures = {str(v): int(v) for v in values}
    rows = []
    for pred, truth, spacing in exams:
        labels = pred if cfg is None else postprocess(pred, spacing, cfg)
        rows.append([(r["dice"], r["mssd_mm"]) for r in evaluate_labels(labels, truth, spacing, structures)])
    return np.asarray(rows, dtype=float)


def _one_sided(d: np.ndarray) -> float:
    """p of a paired Wilcoxon signed-rank test that the differences ``d`` are positive (1 when none differ)."""
    d = d[np.isfinite(d)]
    if d.size == 0 or not np.any(d != 0):
        return 1.0
    return float(wilcoxon(d, alternative="greater", zero_method="wilcox").pvalue)


def _helps(candidate: np.ndarray, current: np.ndarray) -> tuple[bool, float, float]:
    """Whether (exams, 2) per-exam Dice and MSSD of ``candidate`` beat ``current`` beyond chance: Dice higher
    (p < ALPHA), or Dice not lower (p ≥ ALPHA) and MSSD lower (p < ALPHA). Returns (helps, p Dice up, p MSSD
    down)."""
    d_dice = candidate[:, 0] - current[:, 0]
    p_up, p_down_dice = _one_sided(d_dice), _one_sided(-d_dice)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p_mssd = _one_sided(current[:, 1] - candidate[:, 1])
    return p_up < ALPHA or (p_down_dice >= ALPHA and p_mssd < ALPHA), p_up, p_mssd


def _exam_means(table: np.ndarray) -> np.ndarray:
    """(exams, structures, 2) -> (exams, 2): each exam's mean Dice and mean MSSD over its structures."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.stack([table[..., 0].mean(axis=1), np.nanmean(table[..., 1], axis=1)], axis=1)


def choose_postprocess(exams: Sequence[tuple[np.ndarray, np.ndarray, tuple[float, float, float]]],
                       values: Sequence[int], base: PostprocessConfig,
                       raw: np.ndarray | None = None) -> dict[str, Any]:
    """The steps that help ``exams`` ((raw prediction, truth, spacing) triples), by the rule of the module
    docstring, added one after the other from raw: the ordering of a chain, the closing, then the component
    step per structure. Returns the decision as recorded in a run (``chain``, ``closing``, ``largest``: the
    labels whose components are filtered; each step's p-values; mean Dice and MSSD raw and decided over
    ``n_exams``). ``raw``: the exams' raw scores as :func:`exam_scores` gives them with no config, when the
    caller has them already (the folds of a run share their deciding exams).

    Raises:
        SparError: no exam to decide on.
    """
    if not exams:
        raise SparError("no out-of-fold prediction to decide the post-processing on")
    values = list(values)
    raw = exam_scores(exams, values, None) if raw is None else np.asarray(raw, dtype=float)
    if raw.shape[:2] != (len(exams), len(values)):
        raise SparError(f"raw scores of shape {raw.shape}: expected ({len(exams)}, {len(values)}, 2)")
    current, chain, closing, tests = raw, False, False, {}
    for step in ("chain", "closing"):
        if (step == "chain" and base.chain is None) or (step == "closing" and base.closing_mm <= 0):
            continue
        trial = exam_scores(exams, values, _variant(base, chain or step == "chain", closing or step == "closing", False))
        keep, p_dice, p_mssd = _helps(_exam_means(trial), _exam_means(current))
        tests[step] = {"p_dice_up": round(p_dice, 6), "p_mssd_down": round(p_mssd, 6)}
        if keep:
            current = trial
            chain, closing = chain or step == "chain", closing or step == "closing"
    trial = exam_scores(exams, values, _variant(base, chain, closing, True))
    largest, decided = [], current.copy()
    for i, value in enumerate(values):
        keep, p_dice, p_mssd = _helps(trial[:, i], current[:, i])
        tests[f"largest_{value}"] = {"p_dice_up": round(p_dice, 6), "p_mssd_down": round(p_mssd, 6)}
        if keep:
            largest.append(value)
            decided[:, i] = trial[:, i]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        summary = {"dice_raw": float(raw[..., 0].mean()), "mssd_raw": float(np.nanmean(raw[..., 1])),
                   "dice": float(decided[..., 0].mean()), "mssd": float(np.nanmean(decided[..., 1]))}
    return {"chain": chain, "closing": closing, "largest": largest,
            **{k: round(v, 6) for k, v in summary.items()}, "n_exams": len(exams),
            "tests": tests}


def config_for(mode: str, base: PostprocessConfig, decision: dict[str, Any] | None = None) -> PostprocessConfig:
    """The configuration a mode applies: ``largest`` ``base`` itself, ``none`` nothing, ``auto`` the
    ``decision`` of :func:`choose_postprocess` (without one, ``base``: a fold with no out-of-fold exams)."""
    check_mode(mode)
    if mode == "none":
        return RAW
    if mode == "largest" or decision is None or "largest" not in decision:
        return base
    chosen = tuple(int(v) for v in decision["largest"])
    return replace(base, chain=base.chain if decision["chain"] else None,
                   closing_mm=base.closing_mm if decision["closing"] else 0.0,
                   largest_component=bool(chosen), largest_for=chosen)


def combine_decisions(decisions: Sequence[dict[str, Any] | None]) -> dict[str, Any] | None:
    """One decision for an ensemble of folds: each step kept where most folds kept it (None: no fold decided)."""
    made = [d for d in decisions if d is not None and "largest" in d]
    if not made:
        return None
    half = len(made) / 2
    labels = sorted({int(v) for d in made for v in d["largest"]})
    return {"chain": sum(bool(d["chain"]) for d in made) > half,
            "closing": sum(bool(d["closing"]) for d in made) > half,
            "largest": [v for v in labels if sum(v in d["largest"] for d in made) > half], "folds": len(made)}
