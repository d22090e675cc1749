"""How long does ``--postprocess auto`` take to decide? Times the decision of every fold of a finished run for
one method, as `spar crossval` makes it after training (spar_core.pipeline.crossval.decide_and_score). It
writes no decision into the run; a fold whose label facts the run has not recorded yet gets them recorded
(``fold_label_facts``, as crossval would).

    python bench/decide_speed.py RUN [--method baseline]

Prints, per fold, the seconds to read and score raw its deciding exams (the out-of-fold raw predictions and
their truths, read and scored once per method and shared by the folds) and to decide, and the decision's steps.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from spar_core.data.dataset import load_dataset
from spar_core.postprocessing.choice import choose_postprocess
from spar_core.postprocessing.settings import PostprocessSettings
from spar_core.postprocessing.folds import fold_label_facts, out_of_fold, out_of_fold_reader
from spar_core.layout.run_folder import RunFolder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--method", default="baseline")
    args = parser.parse_args()
    run = RunFolder(args.run)
    dataset = load_dataset(run.read_config()["dataset"])
    splits = [run.read_split(f) for f in run.folds()]
    read_exams = out_of_fold_reader(dataset, splits, args.method, run)
    values = list(dataset.structures.values())
    total = 0.0
    for split in splits:
        start = time.perf_counter()
        exams, raw = read_exams(out_of_fold(splits)[split.fold])
        read = time.perf_counter() - start
        facts = fold_label_facts(dataset, split, run)
        start = time.perf_counter()
        decision = choose_postprocess(exams, values, PostprocessSettings(), facts, raw=raw)
        decide = time.perf_counter() - start
        total += read + decide
        print(f"fold {split.fold}: {decision.n_exams} exams, read and score raw {read:5.1f} s, decide "
              f"{decide:5.1f} s; chain {decision.chain}, closing {decision.closing}, "
              f"largest {list(decision.largest)}", flush=True)
    print(f"{args.method}: {total:.1f} s for {len(splits)} folds")


if __name__ == "__main__":
    main()
