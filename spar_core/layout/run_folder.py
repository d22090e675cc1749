"""The run folder: the one contract between core, CLI, app and notebooks. Every path of a run is spelled here.

```
RUN/run.json                                    config, dataset, methods, folds, preset and its settings, status
RUN/metrics.csv                                 one row per case × structure × method (raw and post-processed)
RUN/splits_final.json                           the folds in nnU-Net's form ({"train", "val"} per fold)
RUN/report/                                     Table 1, per structure, per exam, significance (spar report)
RUN/embeddings/fold_<k>.csv                     2D maps of the latent snapshots (spar embed)
RUN/embeddings/convergence_fold_<k>.csv         mean latent distance per method and epoch (spar embed)
RUN/triage/<table>_<method>.csv                 triage, spearman and images tables (spar triage)
RUN/triage/images_<method>/<case>.nii.gz        predictions of new exams ranked by spar triage --images
RUN/folds/<k>/split.json                        train / test case ids
RUN/folds/<k>/label_facts.json                  what the fold's training labels say: structures in a row, parts
RUN/folds/<k>/shape_ae.pt                       the fold's frozen shape auto-encoder
RUN/folds/<k>/level_model.pt                    the fold's level model (structures in a row, --chain-prior level)
RUN/folds/<k>/level_model.json                  its training record: crops, seconds, held-out accuracy per class
RUN/folds/<k>/train_codes.npz                   the training exams' true codes and volumes (triage's cache)
RUN/folds/<k>/<method>/model.pt                 weights (+ optimizer states for resuming)
RUN/folds/<k>/<method>/history.jsonl            one line per epoch
RUN/folds/<k>/<method>/latent/epoch_<e>.npz     codes of predicted and true masks
RUN/folds/<k>/<method>/pred/<case>.nii.gz       post-processed predictions
RUN/folds/<k>/<method>/pred_raw/<case>.nii.gz   the stacked 2D predictions, before post-processing
RUN/folds/<k>/<method>/levels/<case>.json       the level model's evidence on that raw prediction, and its call
RUN/folds/<k>/<method>/metrics.csv              that (fold, method) unit's rows: it is finished
RUN/folds/<k>/<method>/uncertainty/<case>_<map>.nii.gz   entropy / disagreement maps of a test exam (spar triage)
RUN/folds/<k>/<method>/postprocess_decision.json   --postprocess auto: the steps its out-of-fold predictions chose
RUN/folds/<k>/<method>/metrics_post.csv         --postprocess auto: its post-processed rows, once decided
```

Runs written before the two post-processing files had names of their own hold ``postprocess.json`` at both
levels; they are read where the new files are missing.

Torch-free (it imports only the foundation and :mod:`spar_core.data.splits`), so any stage and the app can
import it.
"""

from __future__ import annotations

import platform
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, TypedDict

import spar_core
from spar_core.data.splits import SPLITS_FILE, Split
from spar_core.errors import SparError
from spar_core.paths import NIFTI_SUFFIX, read_json_object, read_jsonl, write_json

CONFIG_FILE = "run.json"
METRICS_FILE = "metrics.csv"  # a run's, a unit's and a study's metric rows
TRIAGE_TABLES = ("triage", "spearman", "images")  # RUN/triage/<table>_<method>.csv

LABEL_FACTS_FILE = "label_facts.json"  # RUN/folds/<k>/
DECISION_FILE = "postprocess_decision.json"  # RUN/folds/<k>/<method>/
LEGACY_POSTPROCESS_FILE = "postprocess.json"  # both of the above, in runs of earlier versions


class RunStatus(str, Enum):
    """run.json's ``status``: where a run stands (a str, so it is written and compared as its value)."""

    RUNNING = "running"  # spar crossval, the demo or a study cell under way
    COMPLETE = "complete"  # every unit of its grid finished
    PARTIAL = "partial"  # this invocation's share finished, other units remain (shards, or a stopped grid)
    STOPPED = "stopped"  # interrupted or failed; running it again resumes
    TRAINING = "training"  # spar train under way
    TRAINED = "trained"  # spar train finished


class RunRecord(TypedDict, total=False):
    """The keys of run.json, each written by one place (:mod:`spar_core.pipeline.experiment` unless said)."""

    kind: str  # "crossval", "demo" (spar_core.pipeline.demo), or absent for spar train
    dataset: str  # the dataset folder, absolute
    dataset_name: str
    labels: dict[str, int]  # name -> value, background included
    slice_axis: int | None
    orientation: str | None  # the training exams' axis codes (spar predict orients new exams to them)
    preset: str
    preset_settings: dict[str, Any]  # Preset.settings(): a run refuses to resume under changed settings
    folds: str  # the split scheme, or splits:<file>:<digest>
    untested_exams: list[str]  # a splits file's labelled exams that no fold tests (said in the report)
    identical_exams: list[list[str]]
    similar_exams: list[list[str]]
    n_folds: int
    methods: list[str]
    postprocess: dict[str, Any]  # PostprocessSettings.to_json()
    study: dict[str, Any]  # a study cell's place in its study (spar_core.pipeline.data_efficiency)
    status: str  # a RunStatus
    seconds: float  # the demo's wall time
    versions: dict[str, str]  # spar, torch and Python, added by RunFolder.write_config


def _existing(path: Path) -> Path | None:
    """``path``, or the legacy file of the same folder in a run of an earlier version; None when neither is."""
    for candidate in (path, path.with_name(LEGACY_POSTPROCESS_FILE)):
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class RunFolder:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # ------------------------------------------------------------------------------------------ the run

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def metrics_csv(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def splits_final(self) -> Path:
        return self.root / SPLITS_FILE

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    @property
    def embeddings_dir(self) -> Path:
        return self.root / "embeddings"

    def embeddings_path(self, fold: int) -> Path:
        return self.embeddings_dir / f"fold_{fold}.csv"

    def convergence_path(self, fold: int) -> Path:
        return self.embeddings_dir / f"convergence_fold_{fold}.csv"

    @property
    def triage_dir(self) -> Path:
        return self.root / "triage"

    def triage_table(self, table: str, method: str) -> Path:
        """``RUN/triage/<table>_<method>.csv``, ``table`` one of ``TRIAGE_TABLES``."""
        if table not in TRIAGE_TABLES:
            raise ValueError(f"table {table!r}: expected one of {', '.join(TRIAGE_TABLES)}")
        return self.triage_dir / f"{table}_{method}.csv"

    def triage_tables(self, table: str) -> dict[str, Path]:
        """Method -> its ``<table>_<method>.csv`` for every method that has one, by method key."""
        if not self.triage_dir.is_dir():
            return {}
        prefix = f"{table}_"
        return {p.stem.removeprefix(prefix): p for p in sorted(self.triage_dir.glob(f"{prefix}*.csv"))
                if p.is_file()}

    def triage_images_dir(self, method: str) -> Path:
        return self.triage_dir / f"images_{method}"

    # ------------------------------------------------------------------------------------------ a fold

    def fold_dir(self, fold: int) -> Path:
        return self.root / "folds" / str(fold)

    def split_path(self, fold: int) -> Path:
        return self.fold_dir(fold) / "split.json"

    def shape_ae_path(self, fold: int) -> Path:
        return self.fold_dir(fold) / "shape_ae.pt"

    def level_model_path(self, fold: int) -> Path:
        return self.fold_dir(fold) / "level_model.pt"

    def level_report_path(self, fold: int) -> Path:
        return self.fold_dir(fold) / "level_model.json"

    def label_facts_path(self, fold: int) -> Path:
        return self.fold_dir(fold) / LABEL_FACTS_FILE

    def existing_label_facts(self, fold: int) -> Path | None:
        """The fold's label facts as written (this version's file or an earlier one's), None when not yet."""
        return _existing(self.label_facts_path(fold))

    def train_codes_path(self, fold: int) -> Path:
        return self.fold_dir(fold) / "train_codes.npz"

    # ------------------------------------------------------------------------------------------ a method of a fold

    def method_folder(self, fold: int, method: str) -> "MethodFolder":
        return MethodFolder(self.fold_dir(fold) / method)

    def method_dir(self, fold: int, method: str) -> Path:
        return self.method_folder(fold, method).path

    def model_path(self, fold: int, method: str) -> Path:
        return self.method_folder(fold, method).model

    def history(self, fold: int, method: str) -> list[dict[str, Any]]:
        return read_jsonl(self.method_folder(fold, method).history)

    def latent_dir(self, fold: int, method: str) -> Path:
        return self.method_folder(fold, method).latent_dir

    def pred_dir(self, fold: int, method: str, raw: bool = False) -> Path:
        return self.method_folder(fold, method).pred_dir(raw)

    def prediction_path(self, fold: int, method: str, case: str, raw: bool = False) -> Path:
        return self.method_folder(fold, method).prediction(case, raw)

    def unit_metrics_path(self, fold: int, method: str) -> Path:
        return self.method_folder(fold, method).unit_metrics

    def uncertainty_path(self, fold: int, method: str, case: str, kind: str) -> Path:
        """A held-out exam's uncertainty map, ``kind`` "entropy" or "disagreement" (written by spar triage)."""
        return self.method_folder(fold, method).uncertainty_dir / f"{case}_{kind}{NIFTI_SUFFIX}"

    # ------------------------------------------------------------------------------------------ listing

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
        return sorted(p.name for p in d.iterdir() if MethodFolder(p).model.is_file())

    def history_files(self) -> list[tuple[int, str, Path]]:
        """(fold, method, path) of every ``history.jsonl``, sorted."""
        return [(int(p.parts[-3]), p.parts[-2], p) for p in sorted(self.root.glob("folds/*/*/history.jsonl"))
                if p.parts[-3].isdigit()]

    def snapshot_files(self, fold: int) -> list[Path]:
        """Every latent snapshot of ``fold`` (all methods, all epochs), sorted."""
        return sorted(self.fold_dir(fold).glob("*/latent/epoch_*.npz"))

    def unit_metrics_files(self) -> list[Path]:
        return sorted(self.root.glob("folds/*/*/metrics.csv")) + sorted(self.root.glob("folds/*/*/metrics_post.csv"))

    # ------------------------------------------------------------------------------------------ run.json

    def exists(self) -> bool:
        return self.config_path.is_file()

    def read_config(self) -> dict[str, Any]:
        if not self.config_path.is_file():
            raise SparError(f"{self.root}: not a spar run folder (no {CONFIG_FILE})")
        return read_json_object(self.config_path, "a run's record (run.json, a JSON object)")

    def write_config(self, config: RunRecord | dict[str, Any]) -> None:
        write_json(self.config_path, {**config, "versions": _versions()})

    def update_config(self, **changes: Any) -> None:
        self.write_config({**self.read_config(), **changes})

    def start(self, record: RunRecord | dict[str, Any], status: RunStatus = RunStatus.RUNNING) -> None:
        """Write run.json for a run that begins (or resumes) now."""
        self.write_config({**record, "status": status})

    def finish(self, complete: bool, **changes: Any) -> None:
        """Record in run.json that this invocation ended: its grid complete, or only partly done."""
        self.update_config(status=RunStatus.COMPLETE if complete else RunStatus.PARTIAL, **changes)

    def check_same_experiment(self, summary: dict[str, Any],
                              keys: tuple[str, ...] = ("dataset", "preset", "folds", "methods", "identical_exams",
                                                      "similar_exams"),
                              defaults: dict[str, Any] | None = None) -> None:
        """Refuse to continue a run folder with another dataset, preset, split scheme or method list (``keys``), or
        with a preset whose settings changed since the run began. A setting the run did not record (it was added
        to spar later) counts as unchanged when it still has its default, from ``defaults``
        (``Preset.default_settings()``)."""
        old = self.read_config()
        for key in keys:
            if key in old and key in summary and old[key] != summary[key]:
                raise SparError(f"{self.config_path}: this run has {key} {old[key]!r}, not {summary[key]!r}; "
                                "use another --out to start a new run")
        before, now = old.get("preset_settings"), summary.get("preset_settings")
        changed = sorted(_changed_keys(before, now, defaults or {})) if before is not None and now is not None else []
        if changed:
            raise SparError(f"{self.config_path}: preset {summary['preset']!r} changed since this run began "
                            f"({', '.join(changed)}); finish it with the version it began with, or use another --out")

    @contextmanager
    def stopped_on_interrupt(self) -> Iterator[None]:
        """Mark run.json ``status: stopped`` when the block is interrupted (Ctrl-C, SIGTERM) or fails, then
        re-raise: a cancelled run does not stay "running" forever. Finished units stay; rerunning resumes."""
        try:
            yield
        except BaseException:
            if self.config_path.is_file():
                self.update_config(status=RunStatus.STOPPED)
            raise

    # ------------------------------------------------------------------------------------------ splits

    def write_split(self, split: Split) -> None:
        write_json(self.split_path(split.fold), {"fold": split.fold, "train": list(split.train),
                                                  "test": list(split.test)})

    def read_split(self, fold: int) -> Split:
        """The fold's train and test case ids, as :meth:`write_split` wrote them.

        Raises:
            SparError: no split for the fold, or a file that is not one (named).
        """
        path = self.split_path(fold)
        if not path.is_file():
            raise SparError(f"{path}: fold {fold} has no split in this run")
        data = read_json_object(path, "a fold's split ({\"fold\", \"train\", \"test\"})")
        try:
            train, test = data["train"], data["test"]
            if not all(isinstance(ids, list) and all(isinstance(c, str) for c in ids) for ids in (train, test)):
                raise TypeError("train and test must be lists of case ids")
            return Split(fold=int(data["fold"]), train=tuple(train), test=tuple(test))
        except (KeyError, TypeError, ValueError) as err:
            raise SparError(f"{path}: {type(err).__name__}: {err}; expected a fold's split "
                            '({"fold": k, "train": [...], "test": [...]})') from None


@dataclass(frozen=True)
class MethodFolder:
    """``RUN/folds/<k>/<method>/``: what training, evaluation and triage write for one method of one fold."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def model(self) -> Path:
        return self.path / "model.pt"

    @property
    def history(self) -> Path:
        return self.path / "history.jsonl"

    @property
    def latent_dir(self) -> Path:
        return self.path / "latent"

    def snapshot(self, epoch: int) -> Path:
        return self.latent_dir / f"epoch_{epoch}.npz"

    def pred_dir(self, raw: bool = False) -> Path:
        """``pred/`` (post-processed) or, with ``raw``, ``pred_raw/`` (the stacked 2D outputs)."""
        return self.path / ("pred_raw" if raw else "pred")

    def prediction(self, case: str, raw: bool = False) -> Path:
        return self.pred_dir(raw) / f"{case}{NIFTI_SUFFIX}"

    @property
    def levels_dir(self) -> Path:
        return self.path / "levels"

    def level_evidence(self, case: str) -> Path:
        return self.levels_dir / f"{case}.json"

    @property
    def uncertainty_dir(self) -> Path:
        return self.path / "uncertainty"

    @property
    def unit_metrics(self) -> Path:
        """The (fold, method) unit's metric rows; its presence marks the unit finished."""
        return self.path / METRICS_FILE

    @property
    def post_metrics(self) -> Path:
        """With ``--postprocess auto``: the post-processed rows, written once the decision could be made."""
        return self.path / "metrics_post.csv"

    @property
    def decision(self) -> Path:
        """With ``--postprocess auto``: the decision (:class:`~spar_core.postprocessing.decision.Decision`)."""
        return self.path / DECISION_FILE

    def existing_decision(self) -> Path | None:
        """The decision as written (this version's file or an earlier one's), None when not yet."""
        return _existing(self.decision)


def run_folders(root: str | Path) -> list[Path]:
    """The run folders (holding a ``run.json``) directly in ``root``, sorted by name; hidden folders left out."""
    base = Path(root)
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if not p.name.startswith(".") and (p / CONFIG_FILE).is_file())


def _versions() -> dict[str, str]:
    """Versions a run records; torch's read from its package metadata (importing it would cost a second)."""
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "absent"
    return {"spar": spar_core.__version__, "torch": torch_version, "python": platform.python_version()}


_ABSENT = object()


def _changed_keys(a: Any, b: Any, defaults: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two nested JSON dicts differ; a key absent from ``a`` whose value in ``b`` is its
    default in ``defaults`` is no difference."""
    if isinstance(a, dict) and isinstance(b, dict):
        sub = defaults if isinstance(defaults, dict) else {}
        return [k for key in sorted(set(a) | set(b))
                for k in _changed_keys(a.get(key, _ABSENT), b.get(key, _ABSENT), sub.get(key, _ABSENT),
                                       f"{prefix}{key}.")]
    if a is _ABSENT and defaults is not _ABSENT and b == defaults:
        return []
    return [] if a == b else [prefix.rstrip(".")]
