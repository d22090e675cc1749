"""nnU-Net beside spar: a spar run's dataset and folds given to nnU-Net v2 (its 2d configuration, planned and
preprocessed by nnU-Net itself, trained for an epoch or a wall-time budget), its predictions of the same test
exams scored by spar's own metrics, the same exams moved in the field of view as spar's robustness study moves
them, and spar's triage of nnU-Net's predictions.

    python bench/nnunet_peer.py RUN --work DIR [--folds 0,1,...] [--epochs 50 | --budget-s S] [--iterations 250]
        [--val-iterations 50] [--device cpu|cuda] [--configuration 2d] [--dataset-id 990] [--processes 2]
        [--batch-size B] [--no-mirroring] [--moved fov_shift,fov_mirror --severities 2,3] [--triage]
        [--calibrate 8,4]

DIR receives ``nnUNet_raw/``, ``nnUNet_preprocessed/`` and ``nnUNet_results/`` (the three folders nnU-Net reads
from its environment variables, set here before it is imported), ``nnunet.log`` (everything nnU-Net prints: the
console gets one progress line per step and epoch), then ``metrics.csv`` (nnU-Net's rows in the columns of the
run's metrics), ``table.csv`` / ``table.md`` (exam-mean Dice, RAVD, ASSD, MSSD per method over the test exams of
the chosen folds, training and prediction minutes per method) and ``timing.json``. The run's
``splits_final.json`` is nnU-Net's split, so nnU-Net's fold k trains on the run's fold k training exams; nnU-Net's
predictor (mirroring as its default, unless ``--no-mirroring``) predicts the fold's test exams into
``predictions/``; those raw predictions (nnU-Net applies no post-processing to them) are what is scored. spar's
rows are the run's post-processed ones, as its Table 1.

``--budget-s S``: the training's wall time instead of an epoch count: after nnU-Net's first epoch the epochs that
fit S are fixed (``budget.json`` in the fold's results) and its learning-rate schedule set to end there.

``--moved KINDS --severities 2,3``: each test exam moved as ``spar study robustness`` moves it (the same seed: the
very same images), at both signs of each severity, written to ``moved/<kind>_<severity>/`` (``images/``,
``truth/``), predicted by nnU-Net (``pred/``) and scored: ``moved_metrics.csv``, and ``identity.csv`` in the
robustness study's form, with the run's own study rows (``RUN/studies/robustness/identity.csv``) beside
nnU-Net's where the study exists. ``--triage``: spar's triage of nnU-Net's predictions (clean and moved, ranked
together) with the run's shape model: ``RUN/triage/predictions/nnunet.csv`` and its Spearman table.

``--calibrate 8,4``: only the seconds per training iteration at nnU-Net's planned batch and at these batch sizes
(``calibration.json``): whether the planned batch can make progress in the budget.

Resumable: a fold with nnU-Net's final checkpoint is not trained again, one with its latest checkpoint (written
every epoch) goes on from there, a prediction or a moved exam written is not made again. A failure is one line
naming the step (the details in ``nnunet.log``).

nnU-Net v2 is installed without its dependencies (``requirements-nnunet.txt``: they would pull another torch);
nnU-Net's own defaults are kept except the epoch budget, the iterations per epoch (``--iterations``: 250 is
nnU-Net's) and the data-augmentation processes (``--processes``; 0 = in this process). A smoke run on a CPU may
also shrink the planned batch (``--batch-size``) and predict without nnU-Net's mirrored copies
(``--no-mirroring``, 4× faster in 2d): the test suite runs it that way on two phantom exams.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from spar_core.data.corruptions import MOVES, level, severities_of
from spar_core.data.dataset import Dataset, load_dataset, load_volume
from spar_core.data.nifti import image_file, label_file, read_label_volume, write_label_volume, write_map_volume
from spar_core.data.nnunet_raw import write_raw_dataset
from spar_core.errors import SparError
from spar_core.scoring.identity import identity_table, is_true
from spar_core.evaluation.report import load_metrics, select
from spar_core.evaluation.rows import metric_rows
from spar_core.evaluation.significance import METRICS, markdown_table
from spar_core.methods import display_name, method_order
from spar_core.paths import write_csv, write_json
from spar_core.pipeline.robustness import corrupted_exam
from spar_core.postprocessing.run_levels import RunLevels
from spar_core.postprocessing.settings import run_settings
from spar_core.layout.run_folder import RunFolder
from spar_core.layout.study_folder import StudyFolder
from spar_core.training.presets import recorded_preset

PEER = "nnunet"
TRAINER, PLANS = "nnUNetTrainer", "nnUNetPlans"
LOG = "nnunet.log"
BUDGET_FILE = "budget.json"


class StepFailed(Exception):
    """A step of the bench failed: its name and the one-line reason."""


class Console:
    """nnU-Net's own output (prints, warnings, its workers') sent to ``work/nnunet.log`` at the file-descriptor
    level, while :meth:`say` prints the bench's progress lines on the console it was started from."""

    def __init__(self, work: Path) -> None:
        self.log = work / LOG
        self._out = os.fdopen(os.dup(1), "w", buffering=1)

    def say(self, line: str) -> None:
        self._out.write(f"[{time.strftime('%H:%M:%S')}] {line}\n")

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Run a step with nnU-Net's output in the log; any failure becomes :class:`StepFailed` naming it."""
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        with open(self.log, "a") as log:
            log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {name}\n")
            log.flush()
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                yield
            except (SparError, StepFailed):
                raise
            except BaseException as err:  # nnU-Net's own errors: one line here, the traceback in the log
                import traceback

                traceback.print_exc()
                if isinstance(err, KeyboardInterrupt):
                    raise
                first = (str(err).strip().splitlines() or [type(err).__name__])[0]
                raise StepFailed(f"step '{name}' failed: {type(err).__name__}: {first} (details: {self.log})") \
                    from None
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                os.close(saved[0])
                os.close(saved[1])


def dataset_name(dataset_id: int, dataset: Dataset) -> str:
    text = "".join(c if c.isalnum() else "_" for c in str(dataset.meta.get("name") or dataset.root.name))
    return f"Dataset{dataset_id:03d}_{text}"


def nnunet_environment(work: Path, processes: int) -> None:
    """nnU-Net's folders and its process counts, in the environment it reads when imported."""
    for key in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (work / key).mkdir(parents=True, exist_ok=True)
        os.environ[key] = str(work / key)
    os.environ["nnUNet_n_proc_DA"] = str(max(1, processes))  # planning sets its torch threads from it (≥ 1)
    os.environ["nnUNet_def_n_proc"] = str(max(1, processes))
    os.environ.setdefault("nnUNet_compile", "f")  # compilation takes minutes a run; the budget is for training


def prepare(run: RunFolder, dataset: Dataset, work: Path, dataset_id: int, configuration: str,
            processes: int) -> tuple[str, float]:
    """The run's dataset as nnU-Net raw data, planned and preprocessed by nnU-Net, with the run's folds as its
    splits; returns the dataset's name and the seconds it took (0 when already done)."""
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (extract_fingerprints, plan_experiments,
                                                                       preprocess)

    name = dataset_name(dataset_id, dataset)
    preprocessed = work / "nnUNet_preprocessed" / name
    if (preprocessed / "splits_final.json").is_file():
        return name, 0.0
    start = time.perf_counter()
    raw = work / "nnUNet_raw" / name
    shutil.rmtree(raw, ignore_errors=True)
    write_raw_dataset(dataset, raw, name)
    extract_fingerprints([dataset_id], num_processes=max(1, processes), check_dataset_integrity=True, verbose=False)
    plan_experiments([dataset_id])
    preprocess([dataset_id], configurations=(configuration,), num_processes=(max(1, processes),), verbose=False)
    shutil.copyfile(run.splits_final, preprocessed / "splits_final.json")  # the run's folds, as they are
    return name, time.perf_counter() - start


def plan_summary(work: Path, name: str, configuration: str) -> dict:
    """What nnU-Net planned for the configuration: patch, batch, spacing, normalization, network stages."""
    plans = json.loads((work / "nnUNet_preprocessed" / name / f"{PLANS}.json").read_text())
    conf = plans["configurations"][configuration]
    arch = conf.get("architecture", {}).get("arch_kwargs", {})
    return {"patch_size": conf.get("patch_size"), "batch_size": conf.get("batch_size"),
            "spacing": conf.get("spacing"), "normalization": conf.get("normalization_schemes"),
            "stages": arch.get("n_stages"), "features_per_stage": arch.get("features_per_stage")}


def model_folder(work: Path, name: str, configuration: str) -> Path:
    return work / "nnUNet_results" / name / f"{TRAINER}__{PLANS}__{configuration}"


def train_fold(console: Console, dataset_id: int, configuration: str, fold: int, device: str, epochs: int,
               budget_s: float | None, iterations: int, val_iterations: int, processes: int,
               batch_size: int | None = None) -> dict:
    """nnU-Net's training of one fold (its own loop, its own checkpoints), for ``epochs`` or, with ``budget_s``,
    for the epochs that fit that wall time after the first; goes on from the latest checkpoint when there is one.
    Returns the fold's training record (seconds, epochs, seconds per epoch)."""
    import torch
    from nnunetv2.run.run_training import get_trainer_from_args

    os.environ["nnUNet_n_proc_DA"] = str(processes)  # 0: the augmentation in this process
    start = time.perf_counter()
    trainer = get_trainer_from_args(str(dataset_id), configuration, fold, TRAINER, PLANS, device=torch.device(device))
    out = Path(trainer.output_folder)
    record_path = out / BUDGET_FILE
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    if (out / "checkpoint_final.pth").is_file():
        return {**record, "seconds": 0.0}
    trainer.num_epochs = int(record.get("epochs") or (10**6 if budget_s else epochs))
    trainer.num_iterations_per_epoch = iterations
    trainer.num_val_iterations_per_epoch = val_iterations
    trainer.save_every = 1  # every epoch: an interrupted training goes on where it stopped
    if batch_size is not None:  # read from the plans when training starts
        trainer.configuration_manager.configuration["batch_size"] = batch_size
    if (out / "checkpoint_latest.pth").is_file():
        trainer.load_checkpoint(str(out / "checkpoint_latest.pth"))
        console.say(f"fold {fold}: going on from epoch {trainer.current_epoch}")
    trainer.on_train_start()
    while trainer.current_epoch < trainer.num_epochs:  # nnU-Net's run_training, with an end that may move
        trainer.on_epoch_start()
        trainer.on_train_epoch_start()
        outputs = [trainer.train_step(next(trainer.dataloader_train)) for _ in range(trainer.num_iterations_per_epoch)]
        trainer.on_train_epoch_end(outputs)
        with torch.no_grad():
            trainer.on_validation_epoch_start()
            val = [trainer.validation_step(next(trainer.dataloader_val))
                   for _ in range(trainer.num_val_iterations_per_epoch)]
            trainer.on_validation_epoch_end(val)
        epoch = trainer.current_epoch
        trainer.on_epoch_end()
        logged = trainer.logger.get_value
        took = logged("epoch_end_timestamps", step=-1) - logged("epoch_start_timestamps", step=-1)
        if not record:  # the first epoch fixes the budget's epochs, and the schedule ends there
            fitted = max(1, int(round(budget_s / took))) if budget_s else trainer.num_epochs
            record = {"epochs": fitted, "first_epoch_s": round(took, 2), "budget_s": budget_s,
                      "iterations": iterations, "val_iterations": val_iterations,
                      "batch_size": trainer.configuration_manager.batch_size}
            write_json(record_path, record)
            trainer.num_epochs = fitted
            trainer.lr_scheduler.max_steps = fitted
        dice, loss = logged("ema_fg_dice", step=-1), logged("train_losses", step=-1)
        console.say(f"fold {fold}: epoch {epoch + 1}/{trainer.num_epochs} train loss {loss:.3f} "
                    f"pseudo-Dice (EMA) {dice:.3f} {took:.0f} s")
    trainer.on_train_end()
    return {**record, "seconds": time.perf_counter() - start}


def calibrate(console: Console, dataset_id: int, configuration: str, device: str, processes: int,
              batch_sizes: list[int | None], iterations: int = 6) -> dict[str, list[float]]:
    """Seconds per training iteration of nnU-Net's trainer at each batch size (None: the planned one), fold 0, on
    this machine: what decides whether its planned batch can make progress in a budget."""
    import torch
    from nnunetv2.run.run_training import get_trainer_from_args

    os.environ["nnUNet_n_proc_DA"] = str(processes)
    out = {}
    for batch in batch_sizes:
        trainer = get_trainer_from_args(str(dataset_id), configuration, 0, TRAINER, PLANS, device=torch.device(device))
        if batch is not None:
            trainer.configuration_manager.configuration["batch_size"] = batch
        trainer.on_train_start()
        trainer.on_train_epoch_start()
        seconds = []
        for _ in range(iterations):
            start = time.perf_counter()
            trainer.train_step(next(trainer.dataloader_train))
            seconds.append(round(time.perf_counter() - start, 2))
        name = str(trainer.configuration_manager.batch_size)
        out[name] = seconds
        console.say(f"batch {name}: seconds per iteration {seconds}")
        for loader in (trainer.dataloader_train, trainer.dataloader_val):
            getattr(loader, "_finish", lambda: None)()
    return out  # no checkpoint is written: a training of fold 0 afterwards starts from its first epoch


def predict_cases(console: Console, model: Path, fold: int, images: dict[str, Path], out: Path, device: str,
                  mirroring: bool, what: str) -> float:
    """nnU-Net's predictor (its sliding window, Gaussian weighting, mirroring unless told not) on each image
    ``case -> <case>_0000.nii.gz`` not yet predicted in ``out``; each written whole or not at all. Returns the
    seconds it took."""
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    todo = {c: p for c, p in images.items() if not (out / label_file(c)).is_file()}
    if not todo:
        return 0.0
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=mirroring,
                                perform_everything_on_device=False, device=torch.device(device), verbose=False,
                                allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(model), use_folds=(fold,), checkpoint_name="checkpoint_final.pth")
    for i, (case, path) in enumerate(sorted(todo.items()), start=1):
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            predictor.predict_from_files_sequential([[str(path)]], [str(Path(tmp) / case)], save_probabilities=False,
                                                    overwrite=True)
            os.replace(Path(tmp) / label_file(case), out / label_file(case))
        console.say(f"fold {fold}: {what}: predicted {case} ({i}/{len(todo)})")
    return time.perf_counter() - start


def score(dataset: Dataset, cases: list[str], fold: int, predictions: Path, keys: dict | None = None,
          truth: Path | None = None) -> list[dict]:
    """spar's metric rows of nnU-Net's predictions of ``cases`` against their truth: the label maps of the folder
    ``truth`` where given (the moved exams'), else the dataset's; each file read once."""
    rows = []
    for case in cases:
        path = predictions / label_file(case)
        if not path.is_file():
            raise SparError(f"{path}: nnU-Net wrote no prediction of test exam {case}")
        if truth is None:
            vol = load_volume(dataset, case)
            label, spacing = vol.label, vol.spacing
        else:
            label, spacing = read_label_volume(truth / label_file(case), dataset.labels.values())
        pred, _ = read_label_volume(path, dataset.labels.values())
        rows += metric_rows(pred, label, spacing, dataset.structures,
                            {"case": case, "fold": fold, "method": PEER, **(keys or {})}, postprocessed=True)
    return rows


def run_seconds(run: RunFolder, folds: list[int]) -> dict[str, dict[str, float]]:
    """Per method of the run: the training minutes its histories record (summed over the folds, the median epoch
    × epochs, so that a moment the machine was shared does not count) and the wall seconds as recorded."""
    out: dict[str, dict[str, float]] = {}
    for fold, method, _ in run.history_files():
        if fold not in folds:
            continue
        seconds = [float(e["seconds"]) for e in run.history(fold, method) if "seconds" in e]
        if seconds:
            got = out.setdefault(method, {"train_s": 0.0, "train_median_s": 0.0})
            got["train_s"] += sum(seconds)
            got["train_median_s"] += float(np.median(seconds)) * len(seconds)
    return out


def table(run: RunFolder, peer: pd.DataFrame, folds: list[int], minutes: dict[str, dict[str, float]]
          ) -> pd.DataFrame:
    """Exam-mean metrics per method over the test exams of ``folds``: the run's methods (post-processed) and
    nnU-Net, with exams a level off (a structure shifted onto another's truth) and the minutes each took."""
    ours = load_metrics(run.metrics_csv)
    ours = ours[ours["fold"].isin(folds) & ours["postprocessed"].map(is_true)]
    both = pd.concat([ours, peer], ignore_index=True)
    both = both[both["case"].astype(str).isin(set(peer["case"].astype(str)))]
    sel = select(both.assign(method=both["method"].astype(str)))
    out = []
    for method in method_order([str(m) for m in sel["method"].unique()]):
        own = sel[sel["method"].astype(str) == method]
        row = {"method": method, "display": display_name(method) if method != PEER else "nnU-Net (2d)",
               "exams": own["case"].nunique()}
        for metric in METRICS:
            per_exam = own.groupby("case", observed=True)[metric.name].mean().dropna()
            row[metric.name] = float(per_exam.mean()) if len(per_exam) else np.nan
        if "shifted_to" in both:
            mine = both[both["method"].astype(str) == method]
            shifted = mine["shifted_to"].astype(object).fillna("").astype(str).str.strip() != ""
            row["exams_level_off"] = int(mine.loc[shifted, "case"].nunique())
        row.update(minutes.get(method, {}))
        out.append(row)
    return pd.DataFrame(out)


def moved_conditions(kinds: list[str], severities: list[int]) -> list[tuple[str, int]]:
    for kind in kinds:
        if kind not in MOVES:
            raise SparError(f"--moved {kind!r}: expected one of {', '.join(sorted(MOVES))}")
    conditions = [(k, v) for k in kinds for v in severities_of(k, severities) if v]
    for kind, severity in conditions:
        level(kind, severity)  # an unknown severity fails before any work
    return conditions


def write_moved(run: RunFolder, dataset: Dataset, fold: int, kind: str, severity: int, seed: int, folder: Path,
                levels: RunLevels) -> tuple[dict[str, Path], dict[str, dict]]:
    """The fold's test exams moved as the robustness study moves them, written once to ``folder`` (``images/``
    as nnU-Net reads them, ``truth/``); returns case -> image file and case -> the ends in view."""
    images, ends = {}, {}
    facts = levels.facts(fold)
    ends_file = folder / "ends.json"
    known = json.loads(ends_file.read_text()) if ends_file.is_file() else {}
    for case in run.read_split(fold).test:
        image, truth = folder / "images" / image_file(case), folder / "truth" / label_file(case)
        if not (image.is_file() and truth.is_file() and case in known):
            vol = load_volume(dataset, case)
            moved, where = corrupted_exam(vol, kind, severity, seed, facts)
            write_label_volume(moved.label, vol, truth)
            write_map_volume(moved.image, vol, image)
            known[case] = where
            write_json(ends_file, known)
        images[case] = image
        ends[case] = known[case]
    return images, ends


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished spar run (crossval) whose folds and test exams to use")
    parser.add_argument("--work", type=Path, required=True, help="folder for nnU-Net's data, models and results")
    parser.add_argument("--folds", default="all", help="'all' (the run's folds with test exams) or e.g. 0,2")
    parser.add_argument("--epochs", type=int, default=50, help="nnU-Net's epochs (its default: 1000)")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="training wall seconds per fold instead of --epochs (the epochs that fit, fixed after "
                             "the first)")
    parser.add_argument("--iterations", type=int, default=250, help="training iterations per epoch (nnU-Net: 250)")
    parser.add_argument("--val-iterations", type=int, default=50, help="validation iterations per epoch (50)")
    parser.add_argument("--device", default="cuda", help="cuda (nnU-Net's default) or cpu")
    parser.add_argument("--configuration", default="2d", help="nnU-Net configuration (2d: spar's peer)")
    parser.add_argument("--dataset-id", type=int, default=990, help="nnU-Net dataset id to use in --work")
    parser.add_argument("--processes", type=int, default=2, help="data-augmentation processes (0: in this one)")
    parser.add_argument("--batch-size", type=int, default=None, help="instead of the planned batch")
    parser.add_argument("--no-mirroring", action="store_true", help="predict without mirrored copies (4× faster)")
    parser.add_argument("--moved", default="", help="field-of-view moves to predict too, e.g. fov_shift,fov_mirror")
    parser.add_argument("--severities", default="2,3", help="with --moved: severities (both signs), e.g. 2,3")
    parser.add_argument("--seed", type=int, default=0, help="with --moved: the robustness study's seed (0)")
    parser.add_argument("--triage", action="store_true", help="rank nnU-Net's predictions with spar's triage")
    parser.add_argument("--calibrate", default=None, metavar="B1,B2",
                        help="only time nnU-Net's training iterations at its planned batch and these batch sizes "
                             "(calibration.json), then stop")
    args = parser.parse_args(argv)
    console = None
    try:
        run = RunFolder(args.run)
        config = run.read_config()
        folds = [f for f in run.folds() if run.read_split(f).test]
        if args.folds != "all":
            wanted = [int(f) for f in args.folds.split(",") if f.strip()]
            if set(wanted) - set(folds):
                raise SparError(f"--folds {args.folds}: the run's folds with test exams are {folds}")
            folds = wanted
        if not folds or not run.splits_final.is_file() or not run.metrics_csv.is_file():
            raise SparError(f"{run.root}: expected a finished cross-validation (folds with test exams, "
                            "splits_final.json, metrics.csv)")
        if min(args.epochs, args.iterations, args.val_iterations, args.batch_size or 1) < 1 or args.processes < 0:
            raise SparError("--epochs, --iterations, --val-iterations, --batch-size: expected at least 1; "
                            "--processes: at least 0")
        if args.budget_s is not None and args.budget_s <= 0:
            raise SparError(f"--budget-s {args.budget_s}: expected a positive number of seconds")
        try:
            severities = [int(v) for v in args.severities.split(",") if v.strip()]
        except ValueError:
            raise SparError(f"--severities {args.severities!r}: expected integers, e.g. 2,3") from None
        conditions = moved_conditions([k.strip() for k in args.moved.split(",") if k.strip()], severities)
        work = args.work.resolve()
        nnunet_environment(work, args.processes)
        console = Console(work)
        start = time.perf_counter()
        dataset = load_dataset(config.get("dataset", ""))
        with console.step("plan and preprocess"):
            name, prepare_s = prepare(run, dataset, work, args.dataset_id, args.configuration, args.processes)
        plan = plan_summary(work, name, args.configuration)
        console.say(f"planned and preprocessed ({prepare_s:.0f} s): {args.configuration} patch {plan['patch_size']}, "
                    f"batch {plan['batch_size']}, spacing {plan['spacing']}")
        if args.calibrate is not None:
            sizes = [None, *(int(b) for b in args.calibrate.split(",") if b.strip())]
            with console.step("calibrate"):
                write_json(work / "calibration.json", calibrate(console, args.dataset_id, args.configuration,
                                                                 args.device, args.processes, sizes))
            return 0
        timing = {"prepare_s": prepare_s, "plan": plan, "folds": {}, "predict_s": {}, "moved_predict_s": {}}
        previous = work / "timing.json"
        if previous.is_file():  # a resumed run keeps the seconds its earlier part measured
            before = json.loads(previous.read_text())
            timing["folds"] = {int(k): v for k, v in before.get("folds", {}).items()}
            timing["predict_s"] = {int(k): v for k, v in before.get("predict_s", {}).items()}
            timing["prepare_s"] = before.get("prepare_s", prepare_s) or prepare_s
        model = model_folder(work, name, args.configuration)
        raw_images = work / "nnUNet_raw" / name / "imagesTr"
        rows = []
        for fold in folds:
            with console.step(f"train fold {fold}"):
                console.say(f"fold {fold}: training ({f'{args.budget_s:.0f} s budget' if args.budget_s else f'{args.epochs} epochs'}"
                            f" × {args.iterations} iterations, batch {args.batch_size or plan['batch_size']})")
                trained = train_fold(console, args.dataset_id, args.configuration, fold, args.device, args.epochs,
                                     args.budget_s, args.iterations, args.val_iterations, args.processes,
                                     args.batch_size)
            if trained["seconds"] or fold not in timing["folds"]:
                timing["folds"][fold] = trained
            test = run.read_split(fold).test
            with console.step(f"predict fold {fold}"):
                took = predict_cases(console, model, fold, {c: raw_images / image_file(c) for c in test},
                                     work / "predictions" / f"fold_{fold}", args.device, not args.no_mirroring,
                                     "test exams")
            if took or fold not in timing["predict_s"]:
                timing["predict_s"][fold] = took
            write_json(previous, timing)
            rows += score(dataset, test, fold, work / "predictions" / f"fold_{fold}")
        peer = pd.DataFrame(rows)
        write_csv(work / "metrics.csv", peer)
        minutes = run_seconds(run, folds)
        minutes[PEER] = {"train_s": sum(float(t.get("seconds", 0.0)) for t in timing["folds"].values()),
                         "predict_s": sum(timing["predict_s"].values())}
        result = table(run, peer, folds, minutes)
        write_csv(work / "table.csv", result)
        if conditions:
            moved_rows = moved(console, run, dataset, folds, conditions, args, work, model)
            moved_table(run, moved_rows, work)
        if args.triage:
            with console.step("triage"):
                triage(run, folds, conditions, work)
        timing.update(total_s=time.perf_counter() - start, epochs=args.epochs, budget_s=args.budget_s,
                      iterations=args.iterations, batch_size=args.batch_size or "planned",
                      mirroring=not args.no_mirroring, device=args.device, configuration=args.configuration,
                      run=str(run.root), spar_preset=config.get("preset"), nnunet=_version())
        write_json(previous, timing)
        shown = result.drop(columns=["method"])
        for column in [c for c in shown.columns if c.endswith("_s")]:  # minutes, as the table shows them
            shown[column.removesuffix("_s") + "_min"] = shown.pop(column) / 60
        shown = shown.round(3)
        (work / "table.md").write_text(markdown_table(shown) + "\n")
        print(shown.to_string(index=False))
        print(f"nnU-Net {args.configuration}: folds {folds}, {timing['total_s']:.0f} s (prepare "
              f"{timing['prepare_s']:.0f} s); {work / 'table.md'}")
        return 0
    except (SparError, StepFailed) as err:
        print(f"nnunet_peer: error: {err}", file=sys.stderr)
        return 2


def moved(console: Console, run: RunFolder, dataset: Dataset, folds: list[int], conditions: list[tuple[str, int]],
          args: argparse.Namespace, work: Path, model: Path) -> pd.DataFrame:
    """nnU-Net's predictions of the moved test exams, scored against the moved truth (``moved_metrics.csv``)."""
    config = run.read_config()
    levels = RunLevels(run, dataset, run_settings(config), recorded_preset(config.get("preset")))
    rows, seconds = [], {}
    for kind, severity in conditions:
        folder = work / "moved" / f"{kind}_{severity}"
        for fold in folds:
            with console.step(f"move fold {fold}'s test exams: {kind} {severity}"):
                images, ends = write_moved(run, dataset, fold, kind, severity, args.seed, folder, levels)
            with console.step(f"predict fold {fold}: {kind} {severity}"):
                seconds[f"{kind}_{severity}"] = predict_cases(console, model, fold, images, folder / "pred",
                                                              args.device, not args.no_mirroring, f"{kind} {severity}")
            for case in images:
                rows += score(dataset, [case], fold, folder / "pred",
                              {"corruption": kind, "severity": severity, "level": level(kind, severity),
                               **ends[case], "level_unknown": False}, folder / "truth")
    frame = pd.DataFrame(rows)
    write_csv(work / "moved_metrics.csv", frame)
    write_json(work / "moved_timing.json", seconds)
    return frame


def moved_table(run: RunFolder, frame: pd.DataFrame, work: Path) -> None:
    """``identity.csv`` (the robustness study's form) and ``moved_table.csv`` (exam-mean Dice per condition and
    method), nnU-Net's rows beside the run's study rows for the same conditions where the study exists."""
    parts = [identity_table(part).assign(corruption=kind, severity=severity)
             for (kind, severity), part in frame.groupby(["corruption", "severity"], sort=True)]
    identity = pd.concat(parts, ignore_index=True)
    study = StudyFolder.robustness(run)
    dice = frame.groupby(["corruption", "severity", "method", "case"])["dice"].mean().reset_index()
    if study.identity_csv.is_file() and study.metrics_csv.is_file():
        ours = pd.read_csv(study.identity_csv)
        keep = set(zip(frame["corruption"], frame["severity"]))
        ours = ours[[(k, v) in keep for k, v in zip(ours["corruption"], ours["severity"])]]
        identity = pd.concat([ours, identity], ignore_index=True)
        metrics = pd.read_csv(study.metrics_csv, dtype={"case": str})
        metrics = metrics[[(k, v) in keep for k, v in zip(metrics["corruption"], metrics["severity"])]]
        dice = pd.concat([metrics.groupby(["corruption", "severity", "method", "case"])["dice"].mean().reset_index(),
                          dice], ignore_index=True)
    write_csv(work / "identity.csv", identity.sort_values(["corruption", "severity", "method"], kind="stable"))
    exam_mean = dice.groupby(["corruption", "severity", "method"])["dice"].agg(["mean", "count"]).reset_index()
    write_csv(work / "moved_table.csv", exam_mean.rename(columns={"mean": "dice", "count": "exams"}))


def triage(run: RunFolder, folds: list[int], conditions: list[tuple[str, int]], work: Path) -> None:
    """spar's triage of nnU-Net's predictions, the hold-out and every moved condition ranked together."""
    from spar_core.triage.predictions import PredictionSet, write_triage_predictions

    sets = [PredictionSet(work / "predictions" / f"fold_{f}", tag=f"clean{f if len(folds) > 1 else ''}")
            for f in folds]
    sets += [PredictionSet(work / "moved" / f"{k}_{v}" / "pred", images=work / "moved" / f"{k}_{v}" / "images",
                           truth=work / "moved" / f"{k}_{v}" / "truth", tag=f"{k}_{v}") for k, v in conditions]
    table_, spearman, paths = write_triage_predictions(run, sets, PEER)
    write_csv(work / "triage.csv", table_)
    if not spearman.empty:
        write_csv(work / "triage_spearman.csv", spearman)


def _version() -> str:
    from importlib.metadata import version

    return version("nnunetv2")


if __name__ == "__main__":
    sys.exit(main())
