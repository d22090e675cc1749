"""What does deciding the post-processing from out-of-fold predictions give? Re-scores a finished run's raw
predictions three ways — none, the paper's steps (``largest``: ordering of a chain, largest components,
closing), and ``auto`` (per fold and method, the steps chosen on the other folds' predictions of its training
exams, spar_core.postprocessing.decision). It writes no decision and no prediction into the run; a fold whose
label facts the run has not recorded yet gets them recorded (``fold_label_facts``, as crossval would).

    python bench/postprocess_auto.py RUN

Prints, per method and way, exam-mean Dice and MSSD over every test exam, and each fold's auto decision.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from spar_core.data.dataset import load_dataset, load_volume
from spar_core.data.nifti import read_label_volume
from spar_core.scoring.metrics import evaluate_labels
from spar_core.postprocessing.steps import postprocess
from spar_core.postprocessing.choice import choose_postprocess
from spar_core.postprocessing.settings import PostprocessSettings
from spar_core.postprocessing.decision import postprocess_config
from spar_core.postprocessing.folds import fold_label_facts, out_of_fold, out_of_fold_reader
from spar_core.layout.run_folder import RunFolder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    args = parser.parse_args()
    start = time.perf_counter()
    run = RunFolder(args.run)
    dataset = load_dataset(run.read_config()["dataset"])
    splits = [run.read_split(f) for f in run.folds()]
    deciding = out_of_fold(splits)
    values = list(dataset.structures.values())
    methods = sorted(set.intersection(*(set(run.methods(s.fold)) for s in splits)))
    print(f"{'method':<12} {'way':<8} {'Dice %':>7} {'MSSD mm':>8}")
    for method in methods:
        read_exams = out_of_fold_reader(dataset, splits, method, run)  # the core's reader: each exam read once
        scores: dict[str, list[tuple[float, float]]] = {"none": [], "largest": [], "auto": []}
        decisions = []
        for split in splits:
            facts = fold_label_facts(dataset, split, run)
            oof = deciding[split.fold]
            if oof:
                exams, raw = read_exams(oof)
                decision = choose_postprocess(exams, values, PostprocessSettings(), facts, raw=raw)
            else:
                decision = None
            decisions.append((split.fold, decision))
            for case in split.test:
                vol = load_volume(dataset, case)
                truth, spacing = vol.label, vol.spacing
                raw_case = read_label_volume(run.prediction_path(split.fold, method, case, raw=True))[0]
                for way in scores:
                    pred = postprocess(raw_case, spacing, postprocess_config(PostprocessSettings(way), facts, decision))
                    rows = evaluate_labels(pred, truth, spacing, dataset.structures)
                    scores[way].append((np.mean([r["dice"] for r in rows]), np.nanmean([r["mssd_mm"] for r in rows])))
        for way, v in scores.items():
            a = np.asarray(v)
            print(f"{method:<12} {way:<8} {100 * a[:, 0].mean():7.2f} {a[:, 1].mean():8.2f}")
        for fold, d in decisions:
            if d is not None:
                print(f"  fold {fold}: chain {d.chain}, closing {d.closing}, largest {list(d.largest)}, "
                      f"out-of-fold Dice raw {100 * d.dice_raw:.2f} -> {100 * d.dice:.2f} ({d.n_exams} exams)")
    print(f"wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
