"""``spar predict``: segment exams (no label needed) with a trained method of a run: a file or a folder in,
labels and uncertainty maps out, the fold models ensembled."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spar_core.cli.commands import summary
from spar_core.cli.options import add_device, add_precision, add_progress_file
from spar_core.errors import SparError
from spar_core.postprocessing.settings import MODE_HELP, MODES
from spar_core.progress import cli_progress
from spar_core.layout.run_folder import RunFolder


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("predict", help=summary("predict"),
                       description="Each exam is oriented as the training exams through its affine, sliced along "
                                   "the training data's slice axis and segmented by every chosen fold model (and "
                                   "four shifted copies of each slice with --tta); the softmax is averaged, "
                                   "post-processed as the run decided, and written back on the exam's own grid and "
                                   "affine: OUT/<case>.nii.gz (labels; <case> without nnU-Net's _0000 channel "
                                   "suffix), OUT/uncertainty/<case>_entropy.nii.gz (predictive entropy, nats), "
                                   "OUT/uncertainty/<case>_disagreement.nii.gz (mutual information between the "
                                   "members, nats; with several folds or --tta) and, with --save-probabilities, "
                                   "OUT/probabilities/<case>.npz (array 'probabilities', (classes, X, Y, Z) "
                                   "float16, 'labels': class names). OUT's top level holds label maps only. With "
                                   "one input file and an OUT ending in .nii.gz, only the labels are written, to "
                                   "OUT.")
    p.add_argument("run", nargs="?", type=Path, metavar="RUN",
                   help="run folder written by spar train / crossval / demo, named first as in every command")
    p.add_argument("--run", dest="run_option", type=Path, default=None, help=argparse.SUPPRESS)  # earlier spelling
    p.add_argument("--method", required=True, help="a method trained in that run")
    p.add_argument("-i", "--image", required=True, type=Path,
                   help="a 3D NIfTI exam, a folder of them, or a dataset folder (its imagesTr)")
    p.add_argument("-o", "--out", required=True, type=Path, help="output folder (or a .nii.gz file for one exam)")
    p.add_argument("--models", default="all", metavar="FOLDS",
                   help="the fold models to ensemble: all (default: every fold's) or 0,1,...")
    p.add_argument("--fold", type=int, default=None, help="one fold's model only (same as --models K)")
    p.add_argument("--tta", action="store_true", help="test-time augmentation: add four copies of each slice shifted by ±5 %% of its side "
                        "(the training augmentation shifts; never mirrored: a mirror swaps vertebra levels and sides)")
    p.add_argument("--save-probabilities", action="store_true", help="also write the mean class probabilities")
    p.add_argument("--overwrite", action="store_true", help="predict exams whose labels already exist in OUT")
    p.add_argument("--postprocess", choices=MODES, default=None,
                   help="the run's post-processing (default: as the run decided it), or another mode: "
                        + "; ".join(f"{mode}: {MODE_HELP[mode]}" for mode in MODES))
    add_precision(p, "auto")
    add_device(p)
    add_progress_file(p)
    return p


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm
    from spar_core.inference.folder import PredictOptions
    from spar_core.pipeline.predict import predict_with_run
    from spar_core.training.device import pick_device
    from spar_core.training.precision import resolve

    if (args.run is None) == (args.run_option is None):
        raise SparError("RUN: expected the run folder once (spar predict RUN --method M -i IN -o OUT)")
    device = pick_device(args.device)
    resolve(args.precision, device)
    options = PredictOptions(tta=args.tta, save_probabilities=args.save_probabilities, overwrite=args.overwrite,
                             precision=args.precision)

    def skipped(path: Path, err: SparError) -> None:
        tqdm.write(f"spar predict: {path}: skipped: {err}", file=sys.stderr)

    folds, result = predict_with_run(RunFolder(args.run or args.run_option), args.method, args.image, args.out,
                                     options, models=args.models, fold=args.fold, postprocess_mode=args.postprocess,
                                     device=device, progress=cli_progress(args.progress_file), on_error=skipped)
    print(f"{result.done} exam(s) segmented into {args.out} ({args.method}, folds {','.join(map(str, folds))}, "
          f"{result.members} member(s), {result.seconds:.1f} s)"
          + (f"; {result.skipped} already there" if result.skipped else "")
          + (f"; {result.failed} failed" if result.failed else ""))
    return 1 if result.failed else 0
