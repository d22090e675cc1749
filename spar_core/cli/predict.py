"""``spar predict``: segment a user's exam (no label needed) with a trained method of a run."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from spar_core.data.dataset import load_image
from spar_core.training.device import pick_device
from spar_core.cli.options import add_precision, add_device, add_progress_file
from spar_core.errors import SparError
from spar_core.evaluation.inference import predict_volume, write_label_volume
from spar_core.evaluation.postprocess import PostprocessConfig, decided_postprocess, postprocess
from spar_core.evaluation.postprocess_choice import config_for
from spar_core.training.precision import resolve
from spar_core.progress import JsonProgress, ProgressEvent, silent
from spar_core.runs.run_folder import RunFolder
from spar_core.training.segmenter import load_unet


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("predict", help="segment an exam with a trained method",
                       description="Slice the exam along the training data's slice axis, segment each slice, "
                                   "go back to the native grid, post-process as the run did (structures in a row "
                                   "relabelled in order, left and right parts kept, where its fold found them), "
                                   "and write a NIfTI label volume with the exam's affine and header.")
    p.add_argument("--run", required=True, type=Path, help="run folder written by spar train / crossval / demo")
    p.add_argument("--method", required=True, help="a method trained in that run")
    p.add_argument("--fold", type=int, default=0, help="which fold's model to use (default: 0)")
    p.add_argument("--image", required=True, type=Path, help="the exam, a 3D NIfTI image")
    p.add_argument("--out", required=True, type=Path, help="where to write the label volume (.nii.gz)")
    p.add_argument("--no-postprocess", action="store_true", help="keep the raw stacked 2D predictions")
    add_precision(p, "auto")
    add_device(p)
    add_progress_file(p)
    return p


def run(args: argparse.Namespace) -> int:
    run_dir = RunFolder(args.run)
    config = run_dir.read_config()
    model = run_dir.model_path(args.fold, args.method)
    if not model.is_file():
        trained = run_dir.methods(args.fold)
        raise SparError(f"--method: {args.method!r} has no trained model in fold {args.fold} of {args.run} "
                        f"(trained: {', '.join(trained) or 'none'})")
    if not args.out.name.endswith((".nii", ".nii.gz")):
        raise SparError(f"--out {args.out}: expected a .nii or .nii.gz file name")
    volume = load_image(args.image, config.get("slice_axis"))
    progress = silent if args.progress_file is None else JsonProgress(args.progress_file)  # one exam: no bar
    label = f"predict {volume.case_id}"
    progress(ProgressEvent("predict", 1, 1, 0, 1, label=label))
    device = pick_device(args.device)
    resolve(args.precision, device)
    unet, meta = load_unet(model, device)
    start = time.perf_counter()
    labels = predict_volume(unet, volume, meta["size"], device=device, precision=args.precision)
    if not args.no_postprocess:
        # as the run did: what that fold's training labels decided (structures in a row, parts), and with
        # --postprocess auto the steps its cross-validated predictions chose for this method
        settings = config.get("postprocess", {})
        closing = settings.get("closing_mm", PostprocessConfig().closing_mm)
        base = decided_postprocess(PostprocessConfig(closing_mm=closing), run_dir.read_fold_postprocess(args.fold),
                                   settings.get("chain", True))
        cfg = config_for(settings.get("mode", "largest"), base,
                         run_dir.method_folder(args.fold, args.method).read_postprocess())
        labels = postprocess(labels, volume.spacing, cfg)
    write_label_volume(labels, volume, args.out)
    progress(ProgressEvent("predict", 1, 1, 1, 1, label=label))
    print(f"wrote {args.out} ({args.method}, fold {args.fold}, {time.perf_counter() - start:.1f} s)")
    return 0
