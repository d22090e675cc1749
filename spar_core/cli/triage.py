"""``spar triage RUN``: rank exams by how suspicious their predicted segmentation looks, without labels."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from spar_core.triage.ranking import SCORES, TABLE_LEAD, TABLE_TAIL

from spar_core.cli.commands import summary
from spar_core.cli.options import add_precision, add_device, add_run
from spar_core.errors import SparError
from spar_core.progress import TqdmProgress

if TYPE_CHECKING:
    import pandas as pd

SHOWN = [*TABLE_LEAD, *SCORES, *TABLE_TAIL]


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("triage", help=summary("triage"),
                       description="Score every held-out exam of a run without its ground truth: from the predicted "
                                   "masks (SPAR discriminator plausibility, shape AE reconstruction error, latent "
                                   "distance to training shapes, extra connected components, volume z) and from "
                                   "the model's own uncertainty (entropy and disagreement of test-time shifts inside "
                                   "the predicted structures, mean and worst structure; maps written beside the "
                                   "predictions); combine robust z's into one triage score (and, with several "
                                   "folds, triage_fitted: weights fitted on the other folds only) and write "
                                   "RUN/triage/triage_<method>.csv, plus the Spearman correlation of each score "
                                   "with Dice and MSSD where metrics exist (RUN/triage/spearman_<method>.csv). "
                                   "With --images, predict and rank unlabeled exams instead "
                                   "(RUN/triage/images_<method>.csv). With --predictions, rank label maps another "
                                   "model made (nnU-Net's, say) with the run's shape model, code discriminator and "
                                   "level model (RUN/triage/predictions/<name>.csv; with the truth at hand, "
                                   "<name>_spearman.csv).")
    add_run(p, "spar crossval / demo")
    p.add_argument("--fold", type=int, default=None,
                   help="one fold (default: every fold; with --images: fold 0's model; with --predictions: the models "
                        "for exams no fold tested, default 0)")
    p.add_argument("--method", default=None, help="whose predictions to score (default: spar if trained)")
    p.add_argument("--images", type=Path, default=None, metavar="DIR",
                   help="a folder of unlabeled .nii/.nii.gz exams (or a dataset folder's imagesTr) to triage; "
                        "with --predictions: the images those label maps segment (default: the run's dataset)")
    p.add_argument("--predictions", type=Path, default=None, metavar="DIR",
                   help="a folder of label maps <case>.nii.gz made by another model, to rank without its network "
                        "(entropy and disagreement are then not computed)")
    p.add_argument("--truth", type=Path, default=None, metavar="DIR",
                   help="with --predictions: truth label maps <case>.nii.gz, to check the ranking against Dice "
                        "(default: the labels of the images' dataset, where it has them)")
    p.add_argument("--name", default=None,
                   help="with --predictions: the table's name (default: the predictions folder's name)")
    add_precision(p, "auto")
    add_device(p)
    return p


def _show(table: pd.DataFrame, rows: int = 20) -> str:
    cols = [c for c in SHOWN if c in table]
    return table[cols].head(rows).to_string(index=False, float_format=lambda v: f"{v:.3g}")


def run(args: argparse.Namespace) -> int:
    from spar_core.training.device import pick_device
    from spar_core.training.precision import resolve
    from spar_core.triage.exams import write_triage, write_triage_images

    device = pick_device(args.device)
    resolve(args.precision, device)
    progress = TqdmProgress()
    if args.truth is not None and args.predictions is None:
        raise SparError("--truth: only with --predictions (the truth of another model's label maps)")
    spearman, against = None, ""
    if args.predictions is not None:
        from spar_core.triage.predictions import PredictionSet, write_triage_predictions

        sets = [PredictionSet(args.predictions, args.images, args.truth)]
        table, spearman, paths = write_triage_predictions(args.run, sets, args.name or args.predictions.name,
                                                          0 if args.fold is None else args.fold, device=device,
                                                          progress=progress)
        against = "the metrics of these label maps"
    elif args.images is not None:
        table, path = write_triage_images(args.run, args.images, args.method,
                                          0 if args.fold is None else args.fold, device=device,
                                          precision=args.precision, progress=progress)
        paths = [path]
    else:
        table, spearman, path, spath = write_triage(args.run, args.method, args.fold, device=device,
                                                    progress=progress)
        paths, against = [path, spath], "the post-processed metrics (held-out exams)"
    progress.close()
    print(_show(table))
    if spearman is not None and not spearman.empty:
        print(f"\nSpearman correlation with {against}:")
        print(spearman.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    for note in table.attrs.get("notes", []):
        print(f"note: {note}")
    print("written: " + ", ".join(str(p) for p in paths))
    return 0
