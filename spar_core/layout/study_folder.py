"""The folders of the two studies: every path spelled here, torch-free (the app reads them).

```
STUDY/study.json                                a data-efficiency study: its grid and budget
STUDY/cells/n<size>_r<repeat>/                  one cell: a run folder (RunFolder) like any other
STUDY/metrics.csv, STUDY/table.csv              every cell's post-processed rows; the study table
RUN/studies/robustness/study.json               a run's robustness study
RUN/studies/robustness/folds/<k>/<kind>_<s>.csv one finished unit (clean_0: the exams as they are)
RUN/studies/robustness/metrics.csv, table.csv   every unit's rows; the study table
RUN/studies/robustness/identity.csv             per condition and method: the exams with a shifted structure
RUN/studies/robustness/levels.csv               rows only: per condition, method and exam, the level call and the
                                                ends of the row in view (from the truth moved along)
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spar_core.layout.run_folder import METRICS_FILE, RunFolder

STUDY_FILE = "study.json"
ALL = 10**6  # ``train_exams`` of the "all" cells in a data-efficiency table: sorts after every size


def cell_name(size: int | None, repeat: int) -> str:
    """``n4_r0``; ``nall_r0`` for the whole training side (``size`` None)."""
    return f"n{'all' if size is None else size}_r{repeat}"


@dataclass(frozen=True)
class StudyFolder:
    """A study's folder: ``STUDY/`` of a data-efficiency study, or ``RUN/studies/robustness/``."""

    root: Path

    @classmethod
    def robustness(cls, run: RunFolder) -> "StudyFolder":
        return cls(run.root / "studies" / "robustness")

    @property
    def study_json(self) -> Path:
        return self.root / STUDY_FILE

    @property
    def metrics_csv(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def table_csv(self) -> Path:
        return self.root / "table.csv"

    @property
    def identity_csv(self) -> Path:
        return self.root / "identity.csv"

    @property
    def levels_csv(self) -> Path:
        return self.root / "levels.csv"

    @property
    def cells_dir(self) -> Path:
        return self.root / "cells"

    def cell(self, size: int | None, repeat: int) -> RunFolder:
        return RunFolder(self.cells_dir / cell_name(size, repeat))

    def unit(self, fold: int, kind: str, severity: int) -> Path:
        """A robustness unit's rows."""
        return self.root / "folds" / str(fold) / f"{kind}_{severity}.csv"
