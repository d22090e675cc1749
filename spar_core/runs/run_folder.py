"""The run folder: the one contract between core, CLI, app and notebooks.

```
RUN/run.json                                 config, dataset, methods, folds, versions, status
RUN/folds/<k>/split.json                     train / test case ids
RUN/folds/<k>/shape_ae.pt                    the fold's frozen shape auto-encoder
RUN/folds/<k>/<method>/model.pt              weights (+ optimizer states for resuming)
RUN/folds/<k>/<method>/history.jsonl         one line per epoch
RUN/folds/<k>/<method>/latent/epoch_<e>.npz  codes of predicted and true masks
RUN/folds/<k>/<method>/pred/<case>.nii.gz    predictions
RUN/metrics.csv                              one row per case × bone × method
```
"""

from __future__ import annotations

import json
import platform
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

import spar_core
from spar_core.training.checkpoint import read_jsonl, write_json
from spar_core.errors import SparError
from spar_core.data.splits import Split


@dataclass(frozen=True)
class RunFolder:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config_path(self) -> Path:
        return self.root / "run.json"

    @property
    def metrics_csv(self) -> Path:
        return self.root / "metrics.csv"

    def fold_dir(self, fold: int) -> Path:
        return self.root / "folds" / str(fold)

    def split_path(self, fold: int) -> Path:
        return self.fold_dir(fold) / "split.json"

    def shape_ae_path(self, fold: int) -> Path:
        return self.fold_dir(fold) / "shape_ae.pt"

    def method_dir(self, fold: int, method: str) -> Path:
        return self.fold_dir(fold) / method

    def model_path(self, fold: int, method: str) -> Path:
        return self.method_dir(fold, method) / "model.pt"

    def history(self, fold: int, method: str) -> list[dict[str, Any]]:
        return read_jsonl(self.method_dir(fold, method) / "history.jsonl")

    def latent_dir(self, fold: int, method: str) -> Path:
        return self.method_dir(fold, method) / "latent"

    def pred_dir(self, fold: int, method: str) -> Path:
        return self.method_dir(fold, method) / "pred"

    def exists(self) -> bool:
        return self.config_path.is_file()

    def read_config(self) -> dict[str, Any]:
        if not self.config_path.is_file():
            raise SparError(f"{self.root}: not a spar run folder (no run.json)")
        try:
            return json.loads(self.config_path.read_text())
        except json.JSONDecodeError as err:
            raise SparError(f"{self.config_path}: not valid JSON ({err})") from None

    def write_config(self, config: dict[str, Any]) -> None:
        versions = {"spar": spar_core.__version__, "torch": torch.__version__, "python": platform.python_version()}
        write_json(self.config_path, {**config, "versions": versions})

    def check_same_experiment(self, summary: dict[str, Any]) -> None:
        """Refuse to continue a run folder with another dataset, preset, split scheme or method list, or with a
        preset whose settings changed since the run began."""
        old = self.read_config()
        for key in ("dataset", "preset", "folds", "methods"):
            if key in old and old[key] != summary[key]:
                raise SparError(f"{self.config_path}: this run has {key} {old[key]!r}, not {summary[key]!r}; "
                                "use another --out to start a new run")
        before, now = old.get("preset_settings"), summary.get("preset_settings")
        if before is not None and now is not None and before != now:
            changed = sorted(_changed_keys(before, now))
            raise SparError(f"{self.config_path}: preset {summary['preset']!r} changed since this run began "
                            f"({', '.join(changed)}); finish it with the version it began with, or use another --out")

    def update_config(self, **changes: Any) -> None:
        self.write_config({**self.read_config(), **changes})

    @contextmanager
    def stopped_on_interrupt(self) -> Iterator[None]:
        """Mark run.json ``status: stopped`` when the block is interrupted (Ctrl-C, SIGTERM) or fails, then
        re-raise: a cancelled run does not stay "running" forever. Finished units stay; rerunning resumes."""
        try:
            yield
        except BaseException:
            if self.config_path.is_file():
                self.update_config(status="stopped")
            raise

    def folds(self) -> list[int]:
        base = self.root / "folds"
        if not base.is_dir():
            return []
        return sorted(int(p.name) for p in base.iterdir() if p.name.isdigit() and (p / "split.json").is_file())

    def methods(self, fold: int) -> list[str]:
        """Methods of ``fold`` with a trained model."""
        d = self.fold_dir(fold)
        if not d.is_dir():
            return []
        return sorted(p.name for p in d.iterdir() if (p / "model.pt").is_file())

    def write_split(self, split: Split) -> None:
        write_json(self.split_path(split.fold), {"fold": split.fold, "train": list(split.train),
                                                  "test": list(split.test)})

    def read_split(self, fold: int) -> Split:
        path = self.split_path(fold)
        if not path.is_file():
            raise SparError(f"{path}: fold {fold} has no split in this run")
        data = json.loads(path.read_text())
        return Split(fold=int(data["fold"]), train=tuple(data["train"]), test=tuple(data["test"]))


def _changed_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two nested JSON dicts differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [k for key in sorted(set(a) | set(b))
                for k in _changed_keys(a.get(key), b.get(key), f"{prefix}{key}.")]
    return [] if a == b else [prefix.rstrip(".")]
