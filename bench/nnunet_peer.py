"""nnU-Net beside spar: a spar run's dataset and folds given to nnU-Net v2 (its 2d configuration, planned and
preprocessed by nnU-Net itself, trained for an epoch budget), its predictions of the same test exams scored by
spar's own metrics, and a table of the run's methods with nnU-Net as one more row, wall times included.

    python bench/nnunet_peer.py RUN --work DIR [--folds 0,1,...] [--epochs 50] [--iterations 250]
        [--val-iterations 50] [--device cpu|cuda] [--configuration 2d] [--dataset-id 990] [--processes 2]
        [--batch-size B] [--no-mirroring]

DIR receives ``nnUNet_raw/``, ``nnUNet_preprocessed/`` and ``nnUNet_results/`` (the three folders nnU-Net reads
from its environment variables, set here before it is imported), then ``metrics.csv`` (nnU-Net's rows in the
columns of the run's metrics), ``table.csv`` / ``table.md`` (exam-mean Dice, RAVD, ASSD, MSSD per method over the
test exams of the chosen folds) and ``timing.json``. The run's ``splits_final.json`` is nnU-Net's split, so
nnU-Net's fold k trains on the run's fold k training exams and predicts its test exams (nnU-Net's "validation");
those raw predictions (nnU-Net applies no post-processing to them) are what is scored. spar's rows are the run's
post-processed ones, as its Table 1. Resumable: a fold whose predictions are there is not trained again.

nnU-Net v2 is installed without its dependencies (``requirements-nnunet.txt``: they would pull another torch);
nnU-Net's own defaults are kept except the epoch budget, the iterations per epoch (``--iterations``: 250 is
nnU-Net's) and the data-augmentation processes (``--processes``; 0 = in this process). A smoke run on a CPU may
also shrink the planned batch (``--batch-size``) and predict without nnU-Net's mirrored copies
(``--no-mirroring``, 4× faster in 2d): the test suite runs it that way on two phantom exams.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from spar_core.data.dataset import Dataset, load_dataset, load_volume
from spar_core.data.nifti import read_label_volume
from spar_core.data.nnunet_raw import write_raw_dataset
from spar_core.errors import SparError
from spar_core.evaluation.report import load_metrics, select
from spar_core.evaluation.rows import metric_rows
from spar_core.evaluation.significance import METRICS, markdown_table
from spar_core.methods import display_name, method_order
from spar_core.paths import write_csv, write_json
from spar_core.runs.run_folder import RunFolder

PEER = "nnunet"
TRAINER, PLANS = "nnUNetTrainer", "nnUNetPlans"


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


def train_fold(dataset_id: int, configuration: str, fold: int, device: str, epochs: int, iterations: int,
               val_iterations: int, processes: int, batch_size: int | None = None, mirroring: bool = True
               ) -> tuple[Path, float]:
    """nnU-Net's training of one fold for the budget, then its prediction of the fold's held-out exams; returns
    the folder of those predictions and the seconds it took."""
    import torch
    from nnunetv2.run.run_training import get_trainer_from_args

    os.environ["nnUNet_n_proc_DA"] = str(processes)  # 0: the augmentation in this process
    start = time.perf_counter()
    trainer = get_trainer_from_args(str(dataset_id), configuration, fold, TRAINER, PLANS, device=torch.device(device))
    trainer.num_epochs = epochs
    trainer.num_iterations_per_epoch = iterations
    trainer.num_val_iterations_per_epoch = val_iterations
    if batch_size is not None:  # read from the plans when training starts
        trainer.configuration_manager.configuration["batch_size"] = batch_size
    trainer.run_training()
    if not mirroring:
        trainer.inference_allowed_mirroring_axes = None
    trainer.perform_actual_validation(False)
    return Path(trainer.output_folder) / "validation", time.perf_counter() - start


def score(run: RunFolder, dataset: Dataset, fold: int, predictions: Path) -> list[dict]:
    """spar's metric rows of nnU-Net's predictions of the fold's test exams."""
    rows = []
    for case in run.read_split(fold).test:
        path = predictions / f"{case}.nii.gz"
        if not path.is_file():
            raise SparError(f"{path}: nnU-Net wrote no prediction of test exam {case}")
        truth = load_volume(dataset, case)
        pred, _ = read_label_volume(path, dataset.labels.values())
        rows += metric_rows(pred, truth.label, truth.spacing, dataset.structures,
                            {"case": case, "fold": fold, "method": PEER}, postprocessed=True)
    return rows


def table(run: RunFolder, peer: pd.DataFrame, folds: list[int]) -> pd.DataFrame:
    """Exam-mean metrics per method over the test exams of ``folds``: the run's methods (post-processed) and
    nnU-Net."""
    ours = load_metrics(run.metrics_csv)
    ours = ours[ours["fold"].isin(folds) & ours["postprocessed"].astype(bool)]
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
        out.append(row)
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished spar run (crossval) whose folds and test exams to use")
    parser.add_argument("--work", type=Path, required=True, help="folder for nnU-Net's data, models and results")
    parser.add_argument("--folds", default="all", help="'all' (the run's folds with test exams) or e.g. 0,2")
    parser.add_argument("--epochs", type=int, default=50, help="nnU-Net's epochs (its default: 1000)")
    parser.add_argument("--iterations", type=int, default=250, help="training iterations per epoch (nnU-Net: 250)")
    parser.add_argument("--val-iterations", type=int, default=50, help="validation iterations per epoch (50)")
    parser.add_argument("--device", default="cuda", help="cuda (nnU-Net's default) or cpu")
    parser.add_argument("--configuration", default="2d", help="nnU-Net configuration (2d: spar's peer)")
    parser.add_argument("--dataset-id", type=int, default=990, help="nnU-Net dataset id to use in --work")
    parser.add_argument("--processes", type=int, default=2, help="data-augmentation processes (0: in this one)")
    parser.add_argument("--batch-size", type=int, default=None, help="instead of the planned batch (smoke runs)")
    parser.add_argument("--no-mirroring", action="store_true", help="predict without mirrored copies (smoke runs)")
    args = parser.parse_args(argv)
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
        work = args.work.resolve()
        nnunet_environment(work, args.processes)
        start = time.perf_counter()
        dataset = load_dataset(config.get("dataset", ""))
        name, prepare_s = prepare(run, dataset, work, args.dataset_id, args.configuration, args.processes)
        timing = {"prepare_s": prepare_s, "folds": {}}
        rows = []
        for fold in folds:
            done = (work / "nnUNet_results" / name / f"{TRAINER}__{PLANS}__{args.configuration}" / f"fold_{fold}"
                    / "validation")
            seconds = 0.0
            if not all((done / f"{c}.nii.gz").is_file() for c in run.read_split(fold).test):
                done, seconds = train_fold(args.dataset_id, args.configuration, fold, args.device, args.epochs,
                                           args.iterations, args.val_iterations, args.processes, args.batch_size,
                                           not args.no_mirroring)
            timing["folds"][fold] = seconds
            rows += score(run, dataset, fold, done)
        peer = pd.DataFrame(rows)
        write_csv(work / "metrics.csv", peer)
        result = table(run, peer, folds)
        write_csv(work / "table.csv", result)
        timing.update(total_s=time.perf_counter() - start, epochs=args.epochs, iterations=args.iterations,
                      batch_size=args.batch_size or "planned", mirroring=not args.no_mirroring, device=args.device,
                      configuration=args.configuration, run=str(run.root), spar_preset=config.get("preset"))
        write_json(work / "timing.json", timing)
        shown = result.drop(columns=["method"]).round(3)
        (work / "table.md").write_text(markdown_table(shown) + "\n")
        print(shown.to_string(index=False))
        print(f"nnU-Net {args.configuration}: {args.epochs} epoch(s) × {args.iterations} iterations, folds "
              f"{folds}, {timing['total_s']:.0f} s (prepare {prepare_s:.0f} s); {work / 'table.md'}")
        return 0
    except SparError as err:
        print(f"nnunet_peer: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
