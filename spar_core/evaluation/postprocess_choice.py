"""Post-processing decided from the data, as nnU-Net does: a step is kept only where it raises the Dice of
cross-validated predictions.

The steps are those of :func:`~spar_core.evaluation.postprocess.postprocess`: relabelling structures in a row
(the chain, when the training labels form one), keeping each structure's largest component (or its k parts),
and the closing. The chain and the closing are chosen for the whole volume, the component step per
structure; raw (nothing) is a candidate. A step is kept when it raises the mean Dice by more than
``DICE_TIE``, or when it changes the Dice by less than that and lowers the mean MSSD: removing an island
moves the Dice by a hair and the maximum surface distance by centimetres, and choosing on Dice alone (as
nnU-Net does) kept the islands on the spine (bench/results/postprocess/). Remaining ties keep fewer steps.
The decision for a fold is made on the *out-of-fold* raw predictions of its training exams — each predicted
by the fold in which it was a test exam — so no exam a fold reports on takes part in its own choice.

Modes of ``--postprocess``: ``auto`` (decided so), ``largest`` (the paper's: every step, for every structure),
``none`` (the stacked 2D predictions as they are).
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from itertools import product
from typing import Any, Sequence

import numpy as np

from spar_core.errors import SparError
from spar_core.evaluation.metrics import evaluate_labels
from spar_core.evaluation.postprocess import PostprocessConfig, postprocess

MODES = ("auto", "largest", "none")
DICE_TIE = 0.005  # half a Dice point: closer than this, the MSSD decides
RAW = PostprocessConfig(largest_component=False, closing_mm=0.0)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise SparError(f"--postprocess {mode!r}: expected one of {', '.join(MODES)}")
    return mode


def _variant(base: PostprocessConfig, chain: bool, closing: bool, largest: bool) -> PostprocessConfig:
    return replace(base, chain=base.chain if chain else None, closing_mm=base.closing_mm if closing else 0.0,
                   largest_component=largest)


def _scores(exams: Sequence[tuple[np.ndarray, np.ndarray, tuple[float, float, float]]], values: Sequence[int],
            cfg: PostprocessConfig | None) -> np.ndarray:
    """(2, structures): mean Dice and mean MSSD (mm; exams where it is undefined left out) after ``cfg``
    (None: raw)."""
    structures = {str(v): int(v) for v in values}
    rows = []
    for pred, truth, spacing in exams:
        labels = pred if cfg is None else postprocess(pred, spacing, cfg)
        rows.append([(r["dice"], r["mssd_mm"]) for r in evaluate_labels(labels, truth, spacing, structures)])
    table = np.asarray(rows, dtype=float)  # (exams, structures, 2)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mssd = np.nanmean(table[..., 1], axis=0)
    return np.stack([table[..., 0].mean(axis=0), np.nan_to_num(mssd, nan=np.inf)])


def _better(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether (Dice, MSSD) ``a`` beats ``b``: a higher Dice beyond the tie, or a tied Dice and a lower MSSD."""
    return a[0] > b[0] + DICE_TIE or (abs(a[0] - b[0]) <= DICE_TIE and a[1] < b[1])


def choose_postprocess(exams: Sequence[tuple[np.ndarray, np.ndarray, tuple[float, float, float]]],
                       values: Sequence[int], base: PostprocessConfig) -> dict[str, Any]:
    """The steps that improve ``exams`` ((raw prediction, truth, spacing) triples) over ``base``'s candidates,
    by the rule of the module docstring; returns the decision as recorded in a run (``chain``, ``closing``,
    ``largest``: the labels whose components are filtered; the mean Dice and MSSD raw and decided over
    ``n_exams``).

    Raises:
        SparError: no exam to decide on.
    """
    if not exams:
        raise SparError("no out-of-fold prediction to decide the post-processing on")
    values = list(values)
    chains = (False, True) if base.chain is not None else (False,)
    closings = (False, True) if base.closing_mm > 0 else (False,)
    raw = _scores(exams, values, None)
    best: tuple[tuple[float, float], int, dict[str, Any]] | None = None
    for chain, closing in product(chains, closings):
        off = raw if not (chain or closing) else _scores(exams, values, _variant(base, chain, closing, False))
        on = _scores(exams, values, _variant(base, chain, closing, True))
        keep = np.array([_better((on[0, i], on[1, i]), (off[0, i], off[1, i])) for i in range(len(values))])
        chosen = np.where(keep, on, off)
        score = (float(chosen[0].mean()), float(chosen[1].mean()))
        steps = int(chain) + int(closing) + int(keep.sum())
        decision = {"chain": chain, "closing": closing, "largest": [v for v, k in zip(values, keep) if k],
                    "dice_raw": round(float(raw[0].mean()), 6), "mssd_raw": round(float(raw[1].mean()), 4),
                    "dice": round(score[0], 6), "mssd": round(score[1], 4), "n_exams": len(exams)}
        if best is None or _better(score, best[0]) or (not _better(best[0], score) and steps < best[1]):
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
