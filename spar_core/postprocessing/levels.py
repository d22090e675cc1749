"""The level of a row from the level model's evidence: which shift of the row's labels the anatomy supports, how
clearly, and what anchors it.

The level model (:mod:`spar_core.models.level_net`) names, for a crop centred on each predicted body and on one
gap beyond each end of the predicted row, which member it is or that it lies one step beyond the first or the
last member (T12 or S1 on the lumbar spine). :class:`LevelEvidence` holds those log-probabilities, one row per
crop: the crop before the first body, the bodies in the row's order, the crop after the last; a crop whose centre
falls outside the image has none. A shift of the row's labels gives every crop a class (a body two steps
beyond the row keeps the class "beyond"), and is scored by the sum of their log-probabilities
(:func:`shift_scores`); no term says where the row sits in the field of view.

:func:`level_shift` chooses the shift: the level model's best where every crop in view agrees with it
(:func:`agrees`), else the one the chain's prior gives (the votes and, on one protocol's exams, where each member
sits). :func:`level_call` says what the evidence shows (:class:`LevelCall`): the margin between the shift chosen
and the best other one, whether the crops agree, and which anchor is in view and confirmed by the model (the
crop the chosen shift calls beyond the first or the last member, or the end member itself with the image reaching
:data:`REACH_GAPS` beyond it, named so with probability ≥ :data:`ANCHOR_P`; crops whose centre lies within
:data:`~spar_core.data.level_crops.INSET_GAPS` of a gap of the image border have no evidence: the structure there
is cut, and a cut L5 can pass for the sacrum). The level is *unknown* when no anchor is confirmed, the margin is
below :data:`MARGIN_NATS`, or the crops disagree: an exam cut above the sacrum and below T12 cannot be counted
from the image, and says so instead of guessing. Measured on the spine: ``bench/results/levels/``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from spar_core.errors import SparError
from spar_core.postprocessing.settings import json_record

MARGIN_NATS = 2.0  # the chosen shift at least e² ≈ 7× as likely as any other, or the level is unknown
ANCHOR_P = 0.5  # an end crop confirms the anchor when the model gives its class at least this probability
AGREE_P = 0.05  # every crop in view gives the class its shift says at least this probability, or they disagree
REACH_GAPS = 1.0  # a crop on an end member anchors that end when the image reaches this far beyond it (in gaps)
ANCHORS = ("both", "first", "last", "none")
LEVEL_CALL_COLUMNS = ("level_anchor", "level_margin", "level_unknown")  # what a metrics row carries of a call
VOTE_TIE = 1.0  # nats per unit of agreeing-vote fraction beside the level model: a tie-breaker only


@dataclass(frozen=True)
class LevelEvidence:
    """The level model's log-probabilities for one predicted row.

    Args:
        positions: the bodies' centroids along the row's axis (voxels), in the row's order.
        log_probs: (bodies + 2) rows of (members + 2) log-probabilities (classes: beyond the first, the members,
            beyond the last); rows: the crop one gap before the first body, the bodies, one gap after the last;
            None for a crop outside the image.
        room: per crop, how far (in mean gaps) the image reaches from its centre toward the row's first end and
            toward its last; empty where unknown (then only the crops beyond the row anchor it).
    """

    positions: tuple[float, ...]
    log_probs: tuple[tuple[float, ...] | None, ...]
    room: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if len(self.log_probs) != len(self.positions) + 2:
            raise SparError(f"level evidence: {len(self.log_probs)} crops for {len(self.positions)} bodies; expected "
                            "bodies + 2")
        if self.room and (len(self.room) != len(self.log_probs) or not all(
                len(r) == 2 and all(math.isfinite(v) for v in r) for r in self.room)):
            raise SparError(f"level evidence: room {self.room!r}: expected two finite distances per crop")
        widths = {len(row) for row in self.log_probs if row is not None}
        if len(widths) > 1 or (widths and min(widths) < 3):
            raise SparError(f"level evidence: rows of {sorted(widths)} classes; expected one width of 3 or more")
        for row in self.log_probs:
            if row is not None and not all(math.isfinite(v) and v <= 1e-6 for v in row):
                raise SparError(f"level evidence: log-probabilities {row}: expected finite values ≤ 0")

    @property
    def members(self) -> int | None:
        """The row's members (classes − 2), None when no crop was in view."""
        width = next((len(row) for row in self.log_probs if row is not None), None)
        return None if width is None else width - 2

    def matrix(self) -> np.ndarray:
        """(bodies + 2, classes) with NaN rows for crops outside the image."""
        width = (self.members or 0) + 2
        return np.array([row if row is not None else (np.nan,) * width for row in self.log_probs], dtype=float)

    def to_json(self) -> dict[str, Any]:
        return {"positions": [round(p, 3) for p in self.positions],
                "log_probs": [None if row is None else [round(v, 5) for v in row] for row in self.log_probs],
                "room_gaps": [[round(a, 3), round(b, 3)] for a, b in self.room]}

    @classmethod
    def from_json(cls, data: Any, what: str = "level evidence") -> "LevelEvidence":
        data = json_record(data, what)
        try:
            return cls(tuple(float(p) for p in data["positions"]),
                       tuple(None if row is None else tuple(float(v) for v in row) for row in data["log_probs"]),
                       tuple((float(a), float(b)) for a, b in data.get("room_gaps") or ()))
        except (KeyError, TypeError, ValueError) as err:
            raise SparError(f"{what}: expected positions and log_probs ({type(err).__name__}: {err})") from None


def crop_class(body: int, shift: int, members: int) -> int:
    """The class a shift gives crop ``body`` (−1: the crop before the first body; bodies: 0..; the crop after the
    last): the member ``body − shift`` (class 1..members), else beyond the first (0) or the last (members + 1)."""
    index = body - shift
    return 0 if index < 0 else members + 1 if index >= members else index + 1


def shift_scores(evidence: LevelEvidence, shifts: Sequence[int]) -> np.ndarray:
    """(len(shifts),) the sum of the log-probabilities of the classes each shift gives the crops in view (shift k
    gives the row's j-th member to body j + k)."""
    matrix, members = evidence.matrix(), evidence.members
    if members is None:
        return np.zeros(len(shifts))
    rows = np.flatnonzero(np.isfinite(matrix).all(axis=1))
    return np.array([sum(matrix[r, crop_class(r - 1, k, members)] for r in rows) for k in shifts], dtype=float)


def agrees(evidence: LevelEvidence, shift: int) -> bool:
    """Whether every crop in view (up to one step beyond the row) gives the class ``shift`` says at least
    :data:`AGREE_P`: a row the level
    model explains. Where it does not (a crop named L2 between crops named T12 and L3, as in an exam of another
    anatomy or a crop the model misreads), no shift is the level model's: the votes and the chain's positions order
    the row, and its level is unknown."""
    matrix, members = evidence.matrix(), evidence.members
    if members is None:
        return False
    # crops the shift puts two steps or more beyond the row have no class the model was trained on: not judged
    rows = [r for r in np.flatnonzero(np.isfinite(matrix).all(axis=1)) if -1 <= r - 1 - shift <= members]
    return bool(all(matrix[r, crop_class(r - 1, shift, members)] >= math.log(AGREE_P) for r in rows))


@dataclass(frozen=True)
class LevelCall:
    """What the evidence says of one exam's level.

    Args:
        shift: the shift chosen (the row's first member on body ``shift``).
        margin: the level model's log-odds (nats) of the chosen shift against the best other one (negative when
            another shift scores higher by the model alone: the network's votes outweighed it).
        anchor: which end confirmed it: ``both``, ``first`` (beyond the first member: T12), ``last`` (beyond the
            last: S1) or ``none``.
        unknown: no anchor, a margin below :data:`MARGIN_NATS`, or crops that disagree with every shift: the
            level cannot be counted from the image.
        agree: whether the crops agree with the chosen shift (:func:`agrees`); where they do not, the votes and
            the training exams' positions chose it.
    """

    shift: int
    margin: float
    anchor: str
    unknown: bool
    agree: bool = True

    def __post_init__(self) -> None:
        if self.anchor not in ANCHORS:
            raise SparError(f"level anchor {self.anchor!r}: expected one of {', '.join(ANCHORS)}")

    def to_json(self) -> dict[str, Any]:
        return {"shift": self.shift, "margin_nats": round(self.margin, 3) if math.isfinite(self.margin) else None,
                "anchor": self.anchor, "level_unknown": self.unknown, "crops_agree": self.agree}

    @classmethod
    def from_json(cls, data: Any, what: str = "level call") -> "LevelCall":
        data = json_record(data, what)
        try:
            margin = data["margin_nats"]
            return cls(int(data["shift"]), math.inf if margin is None else float(margin), str(data["anchor"]),
                       bool(data["level_unknown"]), bool(data.get("crops_agree", True)))
        except (KeyError, TypeError, ValueError) as err:
            raise SparError(f"{what}: expected shift, margin_nats, anchor, level_unknown ({err})") from None

    def describe(self, first: str = "the first", last: str = "the last") -> str:
        """One line for a person reading the overlay (``first`` / ``last``: the row's end members' names)."""
        if self.unknown:
            why = ("the level model's crops disagree" if not self.agree else "no anchor in view"
                   if self.anchor == "none" else f"margin {self.margin:.1f} nats")
            return f"level unknown ({why}): count from a landmark"
        where = {"both": f"above {first} and below {last}", "first": f"above {first}", "last": f"below {last}"}
        return f"levels counted from what lies {where[self.anchor]} (margin {self.margin:.1f} nats)"


def level_shift(evidence: LevelEvidence, shifts: Sequence[int], votes: np.ndarray, fallback: np.ndarray) -> int:
    """The shift chosen: the level model's best (``votes``, each shift's agreeing-vote fraction, break ties) where
    the crops agree with it (:func:`agrees`); else the best by ``fallback`` (each shift's score by the votes and the
    chain's prior: on one protocol's exams, where the row sits). Ties: the smallest shift."""
    level = shift_scores(evidence, shifts)
    best = max(zip(level + VOTE_TIE * votes, shifts), key=lambda sk: (sk[0], -abs(sk[1])))[1]
    if agrees(evidence, best):
        return best
    return max(zip(fallback, shifts), key=lambda sk: (sk[0], -abs(sk[1])))[1]


def level_call(evidence: LevelEvidence, shifts: Sequence[int], chosen: int) -> LevelCall:
    """The call for the shift ``chosen`` among ``shifts``: its margin by the level model alone, its anchor, and
    whether the crops agree with it."""
    members = evidence.members
    if members is None or len(shifts) < 1:
        return LevelCall(chosen, 0.0, "none", True, False)
    scores = shift_scores(evidence, shifts)
    mine = scores[list(shifts).index(chosen)]
    others = [s for s, k in zip(scores, shifts) if k != chosen]
    margin = float(mine - max(others)) if others else math.inf
    matrix = evidence.matrix()
    bodies = len(evidence.positions)

    def confirmed(body: int, cls: int, reach: int | None = None) -> bool:
        """The crop the shift calls ``cls`` is in view and the model agrees (with ``reach`` 0 or 1: and the image
        reaches :data:`REACH_GAPS` beyond it toward the first or the last end)."""
        if not (-1 <= body <= bodies and np.isfinite(matrix[body + 1]).all()
                and math.exp(matrix[body + 1, cls]) >= ANCHOR_P):
            return False
        return reach is None or (bool(evidence.room) and evidence.room[body + 1][reach] >= REACH_GAPS)

    # an end is anchored by the structure beyond it, recognized in view, or by the end member recognized with the
    # image reaching a gap beyond it (a crop on L5 holds the top of the sacrum, one on L1 the lower thoracic spine)
    first = confirmed(chosen - 1, 0) or confirmed(chosen, 1, reach=0)
    last = confirmed(chosen + members, members + 1) or confirmed(chosen + members - 1, members, reach=1)
    anchor = "both" if first and last else "first" if first else "last" if last else "none"
    agree = agrees(evidence, chosen)
    return LevelCall(chosen, margin, anchor, anchor == "none" or margin < MARGIN_NATS or not agree, agree)


def combine_evidence(evidences: Sequence[LevelEvidence]) -> LevelEvidence:
    """The evidence of an ensemble of level models on one prediction: per crop, the log of the mean probability
    (crops one model has no evidence for have none).

    Raises:
        SparError: no evidence, or evidences of other bodies.
    """
    if not evidences:
        raise SparError("combine_evidence: no evidence to combine")
    first = evidences[0]
    if any(e.positions != first.positions for e in evidences):
        raise SparError("combine_evidence: evidences of different predictions")
    stacked = np.stack([e.matrix() for e in evidences])  # (models, crops, classes)
    with np.errstate(divide="ignore"):
        mean = np.log(np.exp(stacked).mean(axis=0))
    rows = tuple(None if not np.isfinite(row).all() else tuple(float(v) for v in np.minimum(row, 0.0))
                 for row in mean)
    return LevelEvidence(first.positions, rows)
