"""``spar train``: train one method on one fold of a dataset, writing a run folder."""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext
from pathlib import Path

from spar_core.cli.commands import summary
from spar_core.cli.options import (add_dataset, add_device, add_folds, add_precision, add_preset, add_seed,
                                   report_twins)
from spar_core.errors import SparError
from spar_core.methods import METHODS, method
from spar_core.progress import TqdmProgress, silent
from spar_core.runs.lock import hold
from spar_core.layout.run_folder import RunFolder, RunStatus
from spar_core.paths import output_folder


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help=summary("train"),
                       description="Pre-train the fold's shape auto-encoder (once, shared by all methods), then "
                                   "train the segmenter of one method. Multi-GPU: torchrun --nproc_per_node=N "
                                   "-m spar_core train ...")
    add_dataset(p)
    p.add_argument("--method", required=True, help=f"one of: {', '.join(METHODS)}")
    add_preset(p)
    p.add_argument("--out", required=True, type=Path, help="run folder to write")
    add_folds(p, "5")
    add_seed(p, "the training and the folds", default=None)
    p.add_argument("--fold", type=int, default=0, help="which fold of the scheme to train (default: 0)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    add_device(p)
    add_precision(p)
    return p


def run(args: argparse.Namespace) -> int:
    from spar_core.data.dataset import load_dataset
    from spar_core.training.device import pick_device
    from spar_core.training.distributed import device_for, init_distributed, shutdown
    from spar_core.training.fold import train_fold
    from spar_core.training.precision import resolve
    from spar_core.training.presets import preset_for
    from spar_core.pipeline.experiment import dataset_splits, experiment_summary, scheme_label

    method(args.method)
    preset = preset_for(args.preset, args.precision, args.seed)
    resolve(preset.train.precision, pick_device(args.device))  # an unusable precision fails before any work
    dataset = load_dataset(args.dataset)
    splits, twins = dataset_splits(dataset, args.folds, preset.train.seed, args.splits)
    report_twins(twins, splits, args.splits)
    if not 0 <= args.fold < len(splits):
        raise SparError(f"--fold: {args.fold} is out of range; scheme {args.folds!r} has folds 0..{len(splits) - 1}")
    run_dir = RunFolder(output_folder(args.out))
    model = run_dir.model_path(args.fold, args.method)
    if model.is_file() and not args.resume:
        raise SparError(f"{model} exists; pass --resume to continue it, or choose another --out")
    summary = experiment_summary(dataset, preset, scheme_label(args.folds, args.splits), twins)
    config = run_dir.read_config() if run_dir.exists() else {}
    if config:  # another method, or the same resumed: same dataset, split scheme and preset definition
        run_dir.check_same_experiment(summary, keys=("dataset", "preset", "folds", "identical_exams", "similar_exams"),
                                      defaults=preset.default_settings())
    dist = init_distributed()
    device = device_for(dist, pick_device(args.device))
    with hold(run_dir.root, "spar train") if dist.is_main else nullcontext():  # one job per run folder
        if dist.is_main:
            methods = sorted(set(config.get("methods", [])) | {args.method})
            run_dir.start({**config, **summary, "methods": methods}, RunStatus.TRAINING)
        start = time.perf_counter()
        history = train_fold(dataset, splits[args.fold], [args.method], preset, run_dir, device=device,
                             resume=True, progress=TqdmProgress() if dist.is_main else silent, dist=dist)
        shutdown(dist)
        if dist.is_main:
            run_dir.update_config(status=RunStatus.TRAINED)
    if dist.is_main:
        last = history[args.method][-1]
        print(f"trained {args.method} on fold {args.fold} ({len(splits[args.fold].train)} training exams) "
              f"on {device} in {time.perf_counter() - start:.1f} s; final loss {last['loss']:.4f}; "
              f"wrote {run_dir.method_dir(args.fold, args.method)}")
    return 0
