"""Learning-rate schedules over a training run, as a factor of the preset's rate at each update.

- ``constant``: the paper's Adam at a fixed rate.
- ``poly``: nnU-Net's polynomial decay, (1 − t/T)^0.9, from the full rate to 0 at the last update.
- ``cosine``: a linear warm-up over the first ``warmup`` fraction of the updates, then a half cosine to 0.

A pure function of the update's index: a resumed run sets the same rates as an uninterrupted one, with no
scheduler state to save.
"""

from __future__ import annotations

import math

from spar_core.errors import SparError

SCHEDULES: tuple[str, ...] = ("constant", "poly", "cosine")
POLY_EXPONENT = 0.9  # nnU-Net's


def lr_factor(schedule: str, step: int, total: int, warmup: float = 0.05) -> float:
    """The factor of the base rate at update ``step`` (0-based) of ``total``.

    Raises:
        SparError: an unknown schedule, or a step outside 0..total-1.
    """
    if schedule not in SCHEDULES:
        raise SparError(f"lr_schedule: {schedule!r} is unknown; expected one of {', '.join(SCHEDULES)}")
    if not 0 <= step < total:
        raise SparError(f"lr_factor: step {step} is outside 0..{total - 1}")
    if schedule == "constant":
        return 1.0
    if schedule == "poly":
        return (1.0 - step / total) ** POLY_EXPONENT
    ramp = max(1, round(warmup * total))
    if step < ramp:
        return (step + 1) / ramp
    return 0.5 * (1.0 + math.cos(math.pi * (step - ramp) / max(1, total - ramp)))
