"""Does ordering the structures in a row help? Re-scores a run's raw predictions post-processed several ways:
as before (largest component + closing), after giving each body its majority label, after giving the
bodies consecutive labels in order by the votes alone, and in order with each prior the training labels give
(where each structure sits: "position@W"; its volume relative to the row: "volume@W"; one per vote weight W;
spar_core.postprocessing.chain).

    python bench/chain.py RUN [RUN ...] [--vote-weights 5,10,20] [--methods baseline,spar]

The chain is the one each fold's training labels form (found again, with its prior). Prints exam-mean
Dice, MSSD and exams with a shifted structure per run, method and way.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from spar_core.data.dataset import load_dataset, load_volume
from spar_core.data.nifti import read_label_volume
from spar_core.postprocessing.chain import VOTE_WEIGHT, find_chain, relabel_chain
from spar_core.scoring.identity import shifted_structures
from spar_core.scoring.metrics import evaluate_labels
from spar_core.postprocessing.settings import CHAIN_PRIORS
from spar_core.postprocessing.steps import PostprocessConfig, postprocess
from spar_core.postprocessing.folds import fold_label_facts
from spar_core.layout.run_folder import RunFolder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--vote-weights", default=str(VOTE_WEIGHT))
    parser.add_argument("--methods", default=None, help="comma-separated; default: every method of the run")
    args = parser.parse_args()
    weights = [float(w) for w in args.vote_weights.split(",") if w]
    print(f"{'run':<40} {'way':<12} {'Dice %':>7} {'MSSD mm':>8} {'shifted':>7}  per exam")
    for root in args.runs:
        run = RunFolder(root)
        dataset = load_dataset(run.read_config()["dataset"])
        scores: dict[tuple[str, str], list[tuple[float, float, bool]]] = {}
        for fold in run.folds():
            split = run.read_split(fold)
            chain = fold_label_facts(dataset, split, run).chain
            if chain is None:
                continue
            train = [load_volume(dataset, case) for case in split.train]
            placed = find_chain([v.label for v in train], chain.labels, spacings=[v.spacing for v in train])
            chain = chain.with_prior("none")  # the order alone
            methods = run.methods(fold) if args.methods is None else args.methods.split(",")
            for method in methods:
                for case in split.test:
                    vol = load_volume(dataset, case)
                    raw, _ = read_label_volume(run.prediction_path(fold, method, case, raw=True))
                    ways = {"plain": raw, "majority": relabel_chain(raw, chain, "majority"),
                            "ordered": relabel_chain(raw, chain, "ordered")}
                    for weight in weights:
                        for prior in CHAIN_PRIORS:
                            ways[f"{prior}@{weight:g}"] = relabel_chain(raw, placed.with_prior(prior), "ordered",
                                                                        vol.spacing, weight)
                    for way, labels in ways.items():
                        post = postprocess(labels, vol.spacing, PostprocessConfig())
                        rows = evaluate_labels(post, vol.label, vol.spacing, dataset.structures)
                        shifted = any(shifted_structures(post, vol.label, dataset.structures).values())
                        scores.setdefault((method, way), []).append((np.mean([r["dice"] for r in rows]),
                                            np.nanmean([r["mssd_mm"] for r in rows]), shifted))
        for (method, way), values in sorted(scores.items()):
            v = np.array(values, dtype=float)
            if len(v):
                print(f"{root.name + ' ' + method:<40} {way:<12} {100 * v[:, 0].mean():7.2f} {v[:, 1].mean():8.2f} "
                      f"{int(v[:, 2].sum()):7d}  " + " ".join(f"{100 * d:.0f}" for d in v[:, 0]), flush=True)


if __name__ == "__main__":
    main()
