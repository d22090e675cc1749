"""Post-processing decided from the data, as nnU-Net does: a step is kept only where it raises the Dice of
cross-validated predictions.

The steps are those of :func:`~spar_core.evaluation.postprocess.postprocess`: relabelling structures in a row
(the chain, when the training labels form one), keeping each structure's largest component (or its k parts),
and the closing. The chain and the closing are chosen for the whole volume, the component step per
structure; raw (nothing) is a candidate, and ties keep fewer steps. The decision for a fold is made on the
*out-of-fold* raw predictions of its training exams — each predicted by the fold in which it was a test
exam — so no exam a fold reports on takes part in its own choice.

Modes of ``--postprocess``: ``auto`` (decided so), ``largest`` (the paper's: every step, for every structure),
``none`` (the stacked 2D predictions as they are).
"""

from __future__ import annotations

from dataclasses import replace
from itertools import product
from typing import Any, Sequence

import numpy as np

from spar_core.errors import SparError
from spar_core.evaluation.postprocess import PostprocessConfig, postprocess

MODES = ("auto", "largest", "none")
RAW = PostprocessConfig(largest_component=False, closing_mm=0.0)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise SparError(f"--postprocess {mode!r}: expected one of {', '.join(MODES)}")
    return mode


def dice_per_label(pred: np.ndarray, truth: np.ndarray, values: Sequence[int]) -> np.ndarray:
    """Dice of each label value (both empty: 1), from one joint histogram."""
    top = int(max(max(values), pred.max(initial=0), truth.max(initial=0))) + 1
    joint = np.bincount(pred.astype(np.int64).ravel() * top + truth.astype(np.int64).ravel(),
                        minlength=top * top).reshape(top, top)
    out = []
    for v in values:
        both, n_pred, n_true = joint[v, v], joint[v, :].sum(), joint[:, v].sum()
        out.append(1.0 if n_pred + n_true == 0 else 2.0 * both / (n_pred + n_true))
    return np.asarray(out)


def _variant(base: PostprocessConfig, chain: bool, closing: bool, largest: bool) -> PostprocessConfig:
    return replace(base, chain=base.chain if chain else None, closing_mm=base.closing_mm if closing else 0.0,
                   largest_component=largest)


def choose_postprocess(exams: Sequence[tuple[np.ndarray, np.ndarray, tuple[float, float, float]]],
                       values: Sequence[int], base: PostprocessConfig) -> dict[str, Any]:
    """The steps that raise the mean Dice of ``exams`` ((raw prediction, truth, spacing) triples) over ``base``'s
    candidates; returns the decision as recorded in a run (``chain``, ``closing``, ``largest``: the labels
    whose components are filtered, and the mean Dice raw and decided over ``n_exams``).

    Raises:
        SparError: no exam to decide on.
    """
    if not exams:
        raise SparError("no out-of-fold prediction to decide the post-processing on")
    values = list(values)
    chains = (False, True) if base.chain is not None else (False,)
    closings = (False, True) if base.closing_mm > 0 else (False,)
    raw = np.mean([dice_per_label(p, t, values) for p, t, _ in exams], axis=0)
    best: tuple[float, int, dict[str, Any]] | None = None
    for chain, closing in product(chains, closings):
        per_setting = {}
        for largest in (False, True):
            cfg = _variant(base, chain, closing, largest)
            if cfg == _variant(base, False, False, False) and not largest:
                per_setting[largest] = raw
                continue
            per_setting[largest] = np.mean([dice_per_label(postprocess(p, s, cfg), t, values) for p, t, s in exams],
                                           axis=0)
        keep = per_setting[True] > per_setting[False]  # a structure's component step only where it helps
        dice = np.where(keep, per_setting[True], per_setting[False])
        score, steps = float(dice.mean()), int(chain) + int(closing) + int(keep.sum())
        decision = {"chain": chain, "closing": closing, "largest": [v for v, k in zip(values, keep) if k],
                    "dice_raw": round(float(raw.mean()), 6), "dice": round(score, 6), "n_exams": len(exams)}
        if best is None or score > best[0] + 1e-9 or (abs(score - best[0]) <= 1e-9 and steps < best[1]):
            best = (score, steps, decision)
    assert best is not None
    return best[2]


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
