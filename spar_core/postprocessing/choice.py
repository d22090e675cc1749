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

The modes of ``--postprocess`` and the records the decision is made of: :mod:`spar_core.postprocessing.decision`.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
from scipy.stats import wilcoxon

from spar_core.errors import SparError
from spar_core.scoring.metrics import evaluate_labels
from spar_core.postprocessing.decision import Decision, LabelFacts, StepTest, postprocess_config
from spar_core.postprocessing.settings import PostprocessSettings
from spar_core.postprocessing.steps import PostprocessConfig, postprocess

ALPHA = 0.05  # a step must help beyond chance: one-sided paired Wilcoxon test over the deciding exams
# raw prediction, truth, spacing (mm), and where a level model orders a row its evidence on the raw prediction
# (a fourth item; three items or None: no evidence)
Exam = tuple  # (np.ndarray, np.ndarray, tuple[float, float, float][, LevelEvidence | None])


def exam_scores(exams: Sequence[Exam], values: Sequence[int], cfg: PostprocessConfig | None) -> np.ndarray:
    """(exams, structures, 2): Dice and MSSD (mm, nan where undefined) after ``cfg`` (None: raw)."""
    structures = {str(v): int(v) for v in values}
    rows = []
    for pred, truth, spacing, *evidence in exams:
        labels = pred if cfg is None else postprocess(pred, spacing, cfg, evidence[0] if evidence else None)
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


def choose_postprocess(exams: Sequence[Exam], values: Sequence[int], settings: PostprocessSettings,
                       facts: LabelFacts | None = None, raw: np.ndarray | None = None) -> Decision:
    """The steps that help ``exams`` (:data:`Exam`), by the rule of the module
    docstring, added one after the other from raw: the ordering of the chain in ``facts``, the closing of
    ``settings``, then the component step per structure. Ordered by the level model (``settings.chain_prior``
    ``level``), the chain is kept untested: the level is what the anatomy says, not a smoothing step to be
    judged by Dice on exams whose level the network mostly has right. ``raw``: the exams' raw scores as :func:`exam_scores`
    gives them with no config, when the caller has them already (the folds of a run share their deciding exams).

    Raises:
        SparError: no exam to decide on, or ``raw`` of another shape.
    """
    if not exams:
        raise SparError("no out-of-fold prediction to decide the post-processing on")
    values = [int(v) for v in values]
    facts = facts or LabelFacts()
    raw = exam_scores(exams, values, None) if raw is None else np.asarray(raw, dtype=float)
    if raw.shape[:2] != (len(exams), len(values)):
        raise SparError(f"raw scores of shape {raw.shape}: expected ({len(exams)}, {len(values)}, 2)")

    def scores(chain: bool, closing: bool, largest: tuple[int, ...]) -> np.ndarray:
        candidate = Decision(chain=chain, closing=closing, largest=largest)
        return exam_scores(exams, values, postprocess_config(settings, facts, candidate))

    available = {"chain": facts.chain is not None and settings.chain, "closing": settings.closing_mm > 0}
    current, kept, tests = raw, {"chain": False, "closing": False}, []
    if available["chain"] and settings.chain_prior == "level":
        current, kept["chain"] = scores(chain=True, closing=False, largest=()), True
    for step in ("chain", "closing"):
        if not available[step] or kept[step]:
            continue
        trial = scores(**{**kept, step: True}, largest=())
        keep, p_dice, p_mssd = _helps(_exam_means(trial), _exam_means(current))
        tests.append(StepTest(step, round(p_dice, 6), round(p_mssd, 6)))
        if keep:
            current, kept[step] = trial, True
    trial = scores(**kept, largest=tuple(values))
    largest, decided = [], current.copy()
    for i, value in enumerate(values):
        keep, p_dice, p_mssd = _helps(trial[:, i], current[:, i])
        tests.append(StepTest(f"largest_{value}", round(p_dice, 6), round(p_mssd, 6)))
        if keep:
            largest.append(value)
            decided[:, i] = trial[:, i]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        summary = {"dice_raw": float(raw[..., 0].mean()), "mssd_raw": float(np.nanmean(raw[..., 1])),
                   "dice": float(decided[..., 0].mean()), "mssd": float(np.nanmean(decided[..., 1]))}
    return Decision(chain=kept["chain"], closing=kept["closing"], largest=tuple(largest), n_exams=len(exams),
                    **{k: round(v, 6) for k, v in summary.items()}, tests=tuple(tests))
