"""A deterministic share of a grid of work units, so that a job array covers the grid exactly once (each task
runs ``--shard i/n``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence, TypeVar

import numpy as np

from spar_core.errors import SparError

U = TypeVar("U")


@dataclass(frozen=True)
class Shard:
    """The ``index``-th of ``count`` shares of the grid (0 ≤ index < count), e.g. a job array task."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> "Shard":
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not m or not 0 <= int(m.group(1)) < int(m.group(2)):
            raise SparError(f"--shard {text!r}: expected i/n with 0 <= i < n, e.g. 0/4 "
                            "(the task id of a job array of n tasks)")
        return cls(int(m.group(1)), int(m.group(2)))

    def take(self, units: Sequence[U]) -> list[U]:
        """This shard's units: contiguous blocks, so a shard mostly works within one fold."""
        bounds = np.linspace(0, len(units), self.count + 1).round().astype(int)
        return list(units[bounds[self.index]:bounds[self.index + 1]])

