"""Does ordering the structures in a row help? Re-scores a run's raw predictions post-processed three ways:
as before (largest component + closing), after giving each body its majority label, and after giving the
bodies consecutive labels in order (spar_core.evaluation.chain).

    python bench/chain.py RUN [RUN ...]

The chain is the one each fold's training labels form. Prints exam-mean Dice and MSSD per run, method and way.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from spar_core.data.dataset import load_dataset, load_volume, read_label_volume
from spar_core.evaluation.chain import relabel_chain
from spar_core.evaluation.metrics import evaluate_labels
from spar_core.evaluation.postprocess import PostprocessConfig, postprocess
from spar_core.pipeline.crossval import fold_postprocess
from spar_core.runs.run_folder import RunFolder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    print(f"{'run':<40} {'way':<10} {'Dice %':>7} {'MSSD mm':>8}  per exam")
    for root in args.runs:
        run = RunFolder(root)
        dataset = load_dataset(run.read_config()["dataset"])
        scores: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for fold in run.folds():
            split = run.read_split(fold)
            chain = fold_postprocess(dataset, split, run, PostprocessConfig()).chain
            if chain is None:
                continue
            for method in run.methods(fold):
                for case in split.test:
                    vol = load_volume(dataset, case)
                    raw, _ = read_label_volume(run.prediction_path(fold, method, case, raw=True))
                    ways = {"plain": raw, "majority": relabel_chain(raw, chain, "majority"),
                            "ordered": relabel_chain(raw, chain, "ordered")}
                    for way, labels in ways.items():
                        rows = evaluate_labels(postprocess(labels, vol.spacing, PostprocessConfig()),
                                               vol.label, vol.spacing, dataset.structures)
                        scores.setdefault((method, way), []).append((np.mean([r["dice"] for r in rows]),
                                            np.nanmean([r["mssd_mm"] for r in rows])))
        for (method, way), values in sorted(scores.items()):
            v = np.array(values)
            if len(v):
                print(f"{root.name + ' ' + method:<40} {way:<10} {100 * v[:, 0].mean():7.2f} {v[:, 1].mean():8.2f}  "
                      + " ".join(f"{100 * d:.0f}" for d in v[:, 0]))


if __name__ == "__main__":
    main()
