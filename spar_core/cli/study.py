"""``spar study data-efficiency|robustness``: when do shape priors pay off? Curves over training-set size and
over image degradation, each cell a run folder or a resumable unit, tabulated with intervals and paired tests."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from spar_core.cli.commands import summary
from spar_core.cli.options import add_dataset, add_device, add_precision, add_preset, add_seed
from spar_core.data.corruptions import CORRUPTIONS, SEVERITIES
from spar_core.errors import SparError
from spar_core.methods import parse_methods
from spar_core.pipeline.shard import Shard
from spar_core.progress import cli_progress
from spar_core.runs.lock import hold
from spar_core.layout.run_folder import RunFolder
from spar_core.paths import output_folder


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("study", help=summary("study"),
                       description="Two studies the paper did not draw: how each method's accuracy and shape "
                                   "errors change as the training set shrinks (data-efficiency) and as the images "
                                   "degrade (robustness). Both are resumable and shardable over a job array.")
    kinds = p.add_subparsers(dest="study", metavar="STUDY")
    kinds.required = True
    d = kinds.add_parser("data-efficiency", help="train on nested subsets of each fold's training patients",
                         description="Per fold the test exams stay fixed; the training side is cut to nested random "
                                     "subsets of patients (seeded, --repeats draws per size), every cell trained for "
                                     "the same number of updates. One run folder per cell under OUT/cells/, "
                                     "OUT/study.json, OUT/table.csv (exam-mean metrics with bootstrap 95 % "
                                     "intervals, paired differences to the baseline, Wilcoxon p with Holm over the "
                                     "grid).")
    add_dataset(d)
    d.add_argument("--train-exams", default="2,4,8,16,all", help="training-set sizes in patients (default: "
                   "2,4,8,16,all)")
    d.add_argument("--methods", default="all", help="'all' or a comma-separated list")
    d.add_argument("--folds", default="5", help="the outer split: a number K of folds, loo or holdout (default: 5)")
    add_seed(d, "the training, the folds and the subsets", default=None)
    d.add_argument("--repeats", type=int, default=1, help="random draws per size (default 1)")
    add_preset(d)
    d.add_argument("--out", required=True, type=Path, help="study folder to write (or to continue)")
    d.add_argument("--shard", default="0/1", help="i/n: the i-th of n shares of the cells (job arrays)")
    add_device(d)
    add_precision(d)
    r = kinds.add_parser("robustness", help="a run's models on corrupted held-out exams",
                         description="Every held-out exam of RUN corrupted at graded severities (Rician noise, motion "
                                     "ghosting, bias field, gamma, thicker slices, a coarser acquisition, the field "
                                     "of view moved with either fill; seeded, the same image for every method), "
                                     "segmented by its fold's models, post-processed as the run decided and scored. "
                                     "Writes RUN/studies/robustness/ (units, metrics.csv, table.csv, identity.csv; "
                                     "for a row, levels.csv: each exam's level call and the ends of the row in "
                                     "view).")
    r.add_argument("run", type=Path, metavar="RUN", help="a cross-validation run folder")
    r.add_argument("--corruptions", default="all", help=f"'all' or a list of {', '.join(CORRUPTIONS)}")
    r.add_argument("--severities", default=",".join(map(str, SEVERITIES)), help="severities 0..4 (0: clean); gamma, fov_shift and fov_mirror run at "
                   "both signs (-2: the other direction)")
    r.add_argument("--methods", default="all", help="'all' (the run's) or a comma-separated list")
    r.add_argument("--seed", type=int, default=0, help="seed of the corruptions (default 0)")
    r.add_argument("--shard", default="0/1", help="i/n: the i-th of n shares of the units (job arrays)")
    add_device(r)
    add_precision(r, "auto")
    return p


def _ints(text: str, option: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SparError(f"{option} {text!r}: expected comma-separated integers") from None


def run(args: argparse.Namespace) -> int:
    from spar_core.data.dataset import load_dataset
    from spar_core.pipeline.data_efficiency import parse_sizes, run_data_efficiency
    from spar_core.pipeline.robustness import run_robustness
    from spar_core.layout.study_folder import StudyFolder
    from spar_core.training.device import pick_device
    from spar_core.training.presets import preset_for

    start = time.perf_counter()
    shard = Shard.parse(args.shard)
    if args.study == "data-efficiency":
        preset = preset_for(args.preset, args.precision, args.seed)
        dataset = load_dataset(args.dataset)
        with hold(output_folder(args.out), "spar study data-efficiency", (shard.index, shard.count)):
            table = run_data_efficiency(dataset, preset, parse_methods(args.methods), args.folds,
                                        parse_sizes(args.train_exams), args.repeats, args.out,
                                        device=pick_device(args.device), shard=shard, progress=cli_progress(None))
        where = StudyFolder(args.out).table_csv
    else:
        corruptions = list(CORRUPTIONS) if args.corruptions == "all" else \
            [c.strip() for c in args.corruptions.split(",") if c.strip()]
        methods = None if args.methods == "all" else parse_methods(args.methods)
        with hold(StudyFolder.robustness(RunFolder(args.run)).root, "spar study robustness",
                  (shard.index, shard.count)):
            table = run_robustness(RunFolder(args.run), corruptions, _ints(args.severities, "--severities"),
                                   methods, seed=args.seed, device=pick_device(args.device),
                                   precision=args.precision, shard=shard,
                                   progress=cli_progress(None))
        where = StudyFolder.robustness(RunFolder(args.run)).table_csv
    state = f"table: {where}" if not table.empty else "grid not complete yet (run the other shards)"
    print(f"spar study {args.study}: shard {shard.index}/{shard.count} done in "
          f"{time.perf_counter() - start:.0f} s; {state}")
    return 0
