"""The post-processing of a run as typed records, and the one function that turns them into the steps to run.

Three things decide what :func:`~spar_core.postprocessing.steps.postprocess` does to a prediction:

- :class:`~spar_core.postprocessing.settings.PostprocessSettings`: what the user asked for (``--postprocess``
  mode, the closing radius, whether structures in a row are ordered), recorded in run.json;
- :class:`LabelFacts`: what a fold's training labels say (the structures in a row they form, the labels of
  several parts), found once per fold;
- :class:`Decision`: with ``auto``, the steps that helped the fold's out-of-fold predictions
  (:func:`~spar_core.postprocessing.choice.choose_postprocess`).

:func:`postprocess_config` combines them; nothing else builds a :class:`PostprocessConfig` from them. Each record
has one JSON round trip (``to_json`` / ``from_json``), so the files of a run folder are read back into the same
records, and the files written by earlier versions of spar keep loading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence

import numpy as np

from spar_core.errors import SparError
from spar_core.postprocessing.chain import Chain, find_chain
from spar_core.postprocessing.components import structure_parts
from spar_core.postprocessing.settings import DEFAULT_CONNECTIVITY, PostprocessMode, PostprocessSettings, json_record
from spar_core.postprocessing.steps import PostprocessConfig

@dataclass(frozen=True)
class LabelFacts:
    """What a fold's training labels say about post-processing.

    Args:
        chain: the structures in a row they form (vertebrae), None when they form none.
        parts: (label, parts) for each label held as several separate parts (a left and a right bone).
    """

    chain: Chain | None = None
    parts: tuple[tuple[int, int], ...] = ()

    @classmethod
    def of(cls, truths: Sequence[np.ndarray], labels: Iterable[int], spacings: Sequence[Sequence[float]],
           connectivity: int = DEFAULT_CONNECTIVITY) -> "LabelFacts":
        """The facts of training label volumes (with their voxel sizes in mm)."""
        labels = [int(v) for v in labels if int(v) > 0]
        return cls(find_chain(truths, labels, spacings=spacings),
                   tuple(sorted(structure_parts(truths, labels, connectivity).items())))

    def to_json(self) -> dict[str, Any]:
        return {"chain": self.chain.as_dict() if self.chain is not None else None,
                "parts": {str(k): n for k, n in self.parts}}

    @classmethod
    def from_json(cls, data: Any, what: str = "label facts") -> "LabelFacts":
        data = json_record(data, what)
        chain = data.get("chain")
        try:
            parts = tuple(sorted((int(k), int(n)) for k, n in json_record(data.get("parts") or {}, what).items()))
        except (TypeError, ValueError) as err:
            raise SparError(f"{what}: parts: expected label → number of parts ({err})") from None
        return cls(Chain.from_dict(json_record(chain, what)) if chain is not None else None, parts)


@dataclass(frozen=True)
class StepTest:
    """The one-sided paired tests a candidate step passed or failed: Dice up, MSSD down."""

    step: str  # "chain", "closing" or "largest_<label>"
    p_dice_up: float
    p_mssd_down: float


@dataclass(frozen=True)
class Decision:
    """The steps ``auto`` keeps for one fold (or, ``folds`` > 1, for an ensemble of folds by majority).

    Args:
        chain: order the structures in a row.
        closing: close small gaps.
        largest: the labels whose components are filtered (largest, or their parts).
        n_exams: the out-of-fold exams it was decided on (0 for a combined decision).
        folds: how many fold decisions it stands for.
        dice_raw, mssd_raw, dice, mssd: mean Dice (0–1) and MSSD (mm) of the deciding exams, raw and decided.
        tests: each candidate step's tests.
    """

    chain: bool
    closing: bool
    largest: tuple[int, ...]
    n_exams: int = 0
    folds: int = 1
    dice_raw: float = math.nan
    mssd_raw: float = math.nan
    dice: float = math.nan
    mssd: float = math.nan
    tests: tuple[StepTest, ...] = field(default=())

    def kept(self, step: str) -> bool:
        """Whether ``step`` (as named in :attr:`tests`) was kept."""
        if step in ("chain", "closing"):
            return getattr(self, step)
        return int(step.removeprefix("largest_")) in self.largest

    def to_json(self) -> dict[str, Any]:
        return {"decided": True, "chain": self.chain, "closing": self.closing, "largest": list(self.largest),
                "n_exams": self.n_exams, "folds": self.folds,
                **{k: _rounded(getattr(self, k)) for k in ("dice_raw", "mssd_raw", "dice", "mssd")},
                "tests": {t.step: {"p_dice_up": t.p_dice_up, "p_mssd_down": t.p_mssd_down} for t in self.tests}}

    @staticmethod
    def undecided_json(why: str) -> dict[str, Any]:
        """What a fold records when no decision could be made (it then applies the ``largest`` steps)."""
        return {"decided": False, "why": why}

    @classmethod
    def from_json(cls, data: Any, what: str = "post-processing decision") -> "Decision | None":
        """The decision a file records; None for a fold that could not decide (the files of earlier versions
        marked it with ``fallback``)."""
        data = json_record(data, what)
        if data.get("decided") is False or "fallback" in data:
            return None
        try:
            tests = tuple(StepTest(str(step), float(t["p_dice_up"]), float(t["p_mssd_down"]))
                          for step, t in json_record(data.get("tests") or {}, what).items())
            return cls(chain=bool(data["chain"]), closing=bool(data["closing"]),
                       largest=tuple(int(v) for v in data["largest"]), n_exams=int(data.get("n_exams", 0)),
                       folds=int(data.get("folds", 1)),
                       **{k: float(data.get(k, math.nan)) for k in ("dice_raw", "mssd_raw", "dice", "mssd")},
                       tests=tests)
        except (KeyError, TypeError, ValueError) as err:
            raise SparError(f"{what}: expected chain, closing and largest ({type(err).__name__}: {err})") from None


def _rounded(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 6)


def combine_decisions(decisions: Sequence[Decision | None]) -> Decision | None:
    """One decision for an ensemble of folds: each step kept where most folds kept it (None: no fold decided)."""
    made = [d for d in decisions if d is not None]
    if not made:
        return None
    half = len(made) / 2
    labels = sorted({v for d in made for v in d.largest})
    return Decision(chain=sum(d.chain for d in made) > half, closing=sum(d.closing for d in made) > half,
                    largest=tuple(v for v in labels if sum(v in d.largest for d in made) > half),
                    folds=len(made))


def postprocess_config(settings: PostprocessSettings, facts: LabelFacts | None = None,
                       decision: Decision | None = None) -> PostprocessConfig:
    """The steps to run: ``none`` nothing; ``largest`` every step, sized by ``settings`` and shaped by the fold's
    ``facts`` (its chain with the prior ``settings.chain_prior`` names, unless ``settings.chain`` is off, and its
    parts); ``auto`` the steps of ``decision``
    (without one, as ``largest``: a fold with no out-of-fold exams)."""
    if settings.mode == PostprocessMode.RAW:
        return PostprocessConfig(largest_component=False, closing_mm=0.0, connectivity=settings.connectivity)
    facts = facts or LabelFacts()
    full = PostprocessConfig(closing_mm=settings.closing_mm, connectivity=settings.connectivity,
                             chain=facts.chain.with_prior(settings.chain_prior) if settings.chain and facts.chain
                             else None, parts=facts.parts)
    if settings.mode == PostprocessMode.ALL_STEPS or decision is None:
        return full
    return replace(full, chain=full.chain if decision.chain else None,
                   closing_mm=full.closing_mm if decision.closing else 0.0,
                   largest_component=bool(decision.largest), largest_for=decision.largest)
