"""What a user asks of post-processing: the ``--postprocess`` mode, the closing radius, the connectivity and whether
structures in a row are ordered (:class:`PostprocessSettings`, recorded in run.json), with the words the CLI, the
report and the app use to describe each mode. Light (no scipy), so that ``--help`` and the app's pages read it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any, Mapping

import numpy as np

from spar_core.errors import SparError

DEFAULT_CLOSING_MM = 2.0
DEFAULT_CONNECTIVITY = 3


def check_connectivity(connectivity: int) -> int:
    if isinstance(connectivity, bool) or connectivity not in (1, 2, 3):
        raise SparError(f"connectivity: expected 1, 2 or 3 (faces, +edges, +corners), got {connectivity!r}")
    return int(connectivity)


def check_radius(radius_mm: float) -> float:
    if isinstance(radius_mm, bool) or not isinstance(radius_mm, (int, float, np.number)) \
            or not math.isfinite(radius_mm) or radius_mm < 0:
        raise SparError(f"closing radius: expected a finite number of mm ≥ 0 (0 = off), got {radius_mm!r}")
    return float(radius_mm)


# What orders structures in a row beside the network's votes (spar_core.postprocessing.chain): the level model, a
# classifier of crops around each body that counts from what lies beyond the row's ends (levels.py); where each
# sits in the field of view; its volume relative to the row; or nothing. A run that recorded none ordered by
# position (or by the prior its labels' record holds).
CHAIN_PRIORS = ("level", "position", "volume", "none")
DEFAULT_CHAIN_PRIOR = "level"
LEGACY_CHAIN_PRIOR = "position"
CHAIN_PRIOR_HELP = {
    "level": "a level model trained per fold on crops around each structure and one step beyond each end of the "
             "row (T12, S1 on the spine): the level counted from the anatomy, wherever the field of view sits; "
             "'level unknown' where no end is in view",
    "position": "where each structure sits along the row in the training exams (strong when every exam places "
                "the field of view alike; a row placed elsewhere can come out a level off)",
    "volume": "each structure's volume relative to its own row, wherever the field of view puts it (weaker on "
              "one protocol's exams)",
    "none": "the votes alone",
}
CHAIN_PRIOR_PHRASE = {"level": "by a level model counting from the row's ends", "position": "by the votes and where each sits", "volume": "by the votes and their relative "
                      "volumes", "none": "by the votes alone"}  # in a report's sentence


def check_chain_prior(prior: str, name: str = "--chain-prior") -> str:
    if prior not in CHAIN_PRIORS:
        raise SparError(f"{name} {prior!r}: expected one of {', '.join(CHAIN_PRIORS)}")
    return prior


class PostprocessMode(str, Enum):
    """What happens after the network, by what it does; the values are the words the command line, run.json and
    the app use (``--postprocess auto|largest|none``: every run ever recorded reads)."""

    DECIDED = "auto"  # the steps the fold's out-of-fold predictions kept beyond chance
    ALL_STEPS = "largest"  # the paper's steps, every one for every structure
    RAW = "none"  # the stacked 2D predictions as they are


MODES = tuple(m.value for m in PostprocessMode)
DEFAULT_MODE = PostprocessMode.DECIDED.value
# A run that recorded no mode began before ``auto`` existed: it applied the paper's steps.
LEGACY_MODE = PostprocessMode.ALL_STEPS.value
MODE_HELP = {
    "auto": "a step (ordering, closing, then the component step per structure) kept only where it helped the "
            "out-of-fold predictions of the fold's training exams beyond chance (paired Wilcoxon, p < 0.05)",
    "largest": "the paper's: every step for every structure (ordering of a row, largest component or parts, "
               "closing)",
    "none": "the stacked 2D predictions as they are",
}


def json_record(data: Any, what: str) -> Mapping[str, Any]:
    """``data`` (read from JSON) when it is an object; one error naming ``what`` otherwise."""
    if not isinstance(data, Mapping):
        raise SparError(f"{what}: expected a JSON object, got {type(data).__name__}")
    return data


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise SparError(f"--postprocess {mode!r}: expected one of {', '.join(MODES)}")
    return mode


@dataclass(frozen=True)
class PostprocessSettings:
    """What a run was asked to do after the network (run.json's ``postprocess``).

    Args:
        mode: ``auto`` (decided from the data), ``largest`` (the paper's steps) or ``none`` (raw).
        closing_mm: radius of the closing in mm; 0 switches it off.
        connectivity: 1, 2 or 3 (faces, +edges, +corners) for the component steps.
        chain: order the structures in a row when the training labels form one.
        chain_prior: what orders them beside the network's votes (:data:`CHAIN_PRIORS`).
    """

    mode: str = DEFAULT_MODE
    closing_mm: float = DEFAULT_CLOSING_MM
    connectivity: int = DEFAULT_CONNECTIVITY
    chain: bool = True
    chain_prior: str = DEFAULT_CHAIN_PRIOR

    def __post_init__(self) -> None:
        check_mode(self.mode)
        check_radius(self.closing_mm)
        check_connectivity(self.connectivity)
        check_chain_prior(self.chain_prior)

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "closing_mm": self.closing_mm, "connectivity": self.connectivity,
                "chain": self.chain, "chain_prior": self.chain_prior}

    @classmethod
    def from_json(cls, data: Any, what: str = "postprocess settings") -> "PostprocessSettings":
        """Settings as run.json records them; a key absent in an older run takes what that run did."""
        data = json_record(data, what)
        try:
            return cls(mode=str(data.get("mode", LEGACY_MODE)),
                       closing_mm=float(data.get("closing_mm", DEFAULT_CLOSING_MM)),
                       connectivity=int(data.get("connectivity", DEFAULT_CONNECTIVITY)),
                       chain=bool(data.get("chain", True)),
                       chain_prior=str(data.get("chain_prior", LEGACY_CHAIN_PRIOR)))
        except (TypeError, ValueError) as err:
            raise SparError(f"{what}: {err}") from None


def run_settings(config: Mapping[str, Any], what: str = "run.json") -> PostprocessSettings:
    """The settings a run's run.json records (a run of an earlier version that recorded none: the paper's steps)."""
    return PostprocessSettings.from_json(config.get("postprocess") or {}, f"{what}: postprocess")


def check_resume(config: Mapping[str, Any], asked: PostprocessSettings, what: str = "run.json") -> None:
    """Refuse to go on with a run whose recorded post-processing is not the one asked for: what a run recorded it
    keeps (a run with no mode recorded applied the paper's steps; one with no prior recorded, the one its label
    facts hold — taken as the one asked).

    Raises:
        SparError: naming the flag, the recorded value and what to do.
    """
    recorded = config.get("postprocess") or {}
    for key, flag, wanted, unrecorded in (("mode", "--postprocess", asked.mode, LEGACY_MODE),
                                          ("chain_prior", "--chain-prior", asked.chain_prior, asked.chain_prior)):
        before = recorded.get(key, unrecorded)
        if before != wanted:
            raise SparError(f"{what}: this run post-processes with {flag} {before}, not {wanted}; pass {flag} "
                            f"{before} or use another --out")


def describe(settings: PostprocessSettings) -> str:
    """One phrase saying what the post-processed masks of a run went through."""
    closing = f"a {settings.closing_mm:g} mm 3D closing" if settings.closing_mm > 0 else "no closing"
    by = CHAIN_PRIOR_PHRASE[settings.chain_prior]
    order = (f"structures in a row, where the training labels form one, put in their order ({by}), "
             if settings.chain else "")
    steps = f"{order}each structure's largest connected component (or its parts), {closing}"
    if settings.mode == PostprocessMode.RAW:
        return "no post-processing (the stacked 2D predictions)"
    if settings.mode == PostprocessMode.ALL_STEPS:
        return f"the paper's post-processing: {steps}"
    return (f"post-processing decided per fold and method from out-of-fold predictions: of {steps}, the steps that "
            "helped beyond chance")
