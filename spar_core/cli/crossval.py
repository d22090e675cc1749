"""``spar crossval``: cross-validate methods on a dataset, resumable and shardable over a job array."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from spar_core.cli.commands import summary
from spar_core.cli.options import (add_dataset, add_device, add_folds, add_precision, add_preset, add_progress_file,
                                   add_seed,
                                   report_twins)
from spar_core.methods import METHODS, parse_methods
from spar_core.pipeline.shard import Shard
from spar_core.errors import SparError
from spar_core.postprocessing.settings import (CHAIN_PRIOR_HELP, CHAIN_PRIORS, DEFAULT_CHAIN_PRIOR, DEFAULT_CLOSING_MM,
                                               DEFAULT_MODE, MODE_HELP, MODES, PostprocessSettings, check_resume)
from spar_core.progress import cli_progress
from spar_core.runs.lock import hold
from spar_core.layout.run_folder import RunFolder
from spar_core.paths import output_folder


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("crossval", help=summary("crossval"),
                       description="For every fold: train the shape auto-encoder once, train each method, predict "
                                   "the test exams, post-process and score them into RUN/metrics.csv. Finished "
                                   "(fold, method) units are skipped when started again.")
    add_dataset(p)
    p.add_argument("--methods", default="all", help=f"'all' or a comma-separated list of {', '.join(METHODS)}")
    add_folds(p, "5")
    add_seed(p, "the training and the folds", default=None)
    add_preset(p)
    p.add_argument("--out", required=True, type=Path, help="run folder to write (or to continue)")
    p.add_argument("--shard", default="0/1", help="i/n: run the i-th of n shares of the grid (job arrays)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="train in N processes side by side on this machine, each with its share of the cores (on "
                        "a CPU, two one-thread workers train ≈ 1.3× the steps of one two-thread process); "
                        "default 1")
    p.add_argument("--closing-mm", type=float, default=DEFAULT_CLOSING_MM,
                   help="radius of the 3D closing in mm, 0 to switch it off")
    p.add_argument("--no-chain", action="store_true",
                   help="do not relabel structures in a row (vertebrae) in their order, even when the training "
                        "labels form one")
    p.add_argument("--chain-prior", choices=CHAIN_PRIORS, default=DEFAULT_CHAIN_PRIOR,
                   help="what orders structures in a row beside the network's votes: " + "; ".join(
                       f"{k}: {v}" for k, v in CHAIN_PRIOR_HELP.items()) + f" (default: {DEFAULT_CHAIN_PRIOR})")
    p.add_argument("--postprocess", choices=MODES, default=DEFAULT_MODE,
                   help="; ".join(f"{mode}: {MODE_HELP[mode]}" for mode in MODES) + f" (default: {DEFAULT_MODE})")
    add_device(p)
    add_precision(p)
    add_progress_file(p)
    return p


def run(args: argparse.Namespace) -> int:
    from spar_core.pipeline.crossval import is_complete, run_crossval
    from spar_core.pipeline.experiment import dataset_splits, run_summary, scheme_label
    from spar_core.pipeline.workers import run_workers, without_option
    from spar_core.data.dataset import load_dataset
    from spar_core.training.device import pick_device
    from spar_core.training.precision import resolve
    from spar_core.training.presets import preset_for

    methods = parse_methods(args.methods)
    preset = preset_for(args.preset, args.precision, args.seed)
    device = pick_device(args.device)
    resolve(preset.train.precision, device)  # an unusable precision fails before any work
    shard = Shard.parse(args.shard)
    if args.workers < 1 or (args.workers > 1 and shard.count > 1):
        raise SparError(f"--workers {args.workers}: expected N ≥ 1, and not beside --shard (a worker is a shard)")
    dataset = load_dataset(args.dataset)
    splits, twins = dataset_splits(dataset, args.folds, preset.train.seed, args.splits)
    report_twins(twins, splits, args.splits)
    settings = PostprocessSettings(mode=args.postprocess, closing_mm=args.closing_mm, chain=not args.no_chain,
                                   chain_prior=args.chain_prior)
    run_dir = RunFolder(output_folder(args.out))
    summary = run_summary(dataset, splits, methods, preset, scheme_label(args.folds, args.splits), settings, twins)
    if args.workers > 1:  # the shares first, side by side; then this process merges, as a lone run would
        with hold(run_dir.root, "spar crossval"):  # nobody else at work in it; its experiment the same
            if run_dir.exists():
                run_dir.check_same_experiment(summary, defaults=preset.default_settings())
        run_workers(without_option(args.argv, "--workers"), args.workers)
    with hold(run_dir.root, "spar crossval", (shard.index, shard.count)):
        if run_dir.exists():
            run_dir.check_same_experiment(summary, defaults=preset.default_settings())
            check_resume(run_dir.read_config(), settings, str(run_dir.config_path))
        run_dir.start(summary)
        start = time.perf_counter()
        with run_dir.stopped_on_interrupt():
            frame = run_crossval(dataset, splits, methods, preset, run_dir, device=device,
                                 shard=shard, settings=settings, progress=cli_progress(args.progress_file))
        done = is_complete(run_dir, splits, methods, settings)
        run_dir.finish(done)
    print(f"shard {shard.index}/{shard.count}: {len(frame)} metric rows in {run_dir.metrics_csv} "
          f"({time.perf_counter() - start:.0f} s); grid {'complete' if done else 'not complete yet'}")
    return 0
