"""``spar predict``: segment exams (no label needed) with a trained method of a run: a file or a folder in,
labels and uncertainty maps out, the fold models ensembled."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from spar_core.cli.commands import summary
from spar_core.cli.options import add_device, add_precision, add_progress_file
from spar_core.errors import SparError
from spar_core.postprocessing.settings import MODE_HELP, MODES
from spar_core.paths import DATASET_JSON, PREDICTION_FILES, output_folder, save_npz, write_json
from spar_core.progress import JsonProgress, ProgressEvent, silent
from spar_core.layout.run_folder import RunFolder

if TYPE_CHECKING:
    import torch
    from spar_core.postprocessing.steps import PostprocessConfig


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


def chosen_folds(run: RunFolder, method: str, models: str, fold: int | None) -> list[int]:
    """The folds whose model of ``method`` to ensemble.

    Raises:
        SparError: a fold list that is not integers, a fold without that method's model, or no model at all.
    """
    trained = [f for f in run.folds() if run.model_path(f, method).is_file()]
    folds = str(fold) if fold is not None else models
    if folds.strip().lower() == "all":
        if not trained:
            every = sorted({m for f in run.folds() for m in run.methods(f)})
            raise SparError(f"--method: {method!r} has no trained model in {run.root} "
                            f"(trained: {', '.join(every) or 'none'})")
        return trained
    try:
        wanted = [int(v) for v in folds.split(",") if v.strip()]
    except ValueError:
        raise SparError(f"--models {folds!r}: expected all or a comma-separated list of fold numbers") from None
    missing = [f for f in wanted if f not in trained]
    if missing or not wanted:
        raise SparError(f"--models {folds!r}: {method!r} has no model in fold(s) {missing or wanted} of {run.root} "
                        f"(folds with one: {', '.join(map(str, trained)) or 'none'})")
    return wanted


def input_exams(path: Path) -> list[Path]:
    """The NIfTI exams of ``path``: the file itself, the NIfTI files of a folder, or a dataset's imagesTr.

    Raises:
        SparError: a missing path, or a folder without NIfTI files.
    """
    from spar_core.data.nifti import NIFTI_SUFFIXES

    if path.is_file():
        return [path]
    if not path.is_dir():
        raise SparError(f"--image {path}: no such file or folder; expected a NIfTI exam or a folder of them")
    folder = path / "imagesTr" if (path / DATASET_JSON).is_file() and (path / "imagesTr").is_dir() else path
    exams = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(NIFTI_SUFFIXES))
    exams = _first_channels(exams)
    if not exams:
        raise SparError(f"--image {path}: no .nii or .nii.gz file in it; expected NIfTI exams")
    return exams


def _first_channels(exams: list[Path]) -> list[Path]:
    """``exams`` without nnU-Net's ``<case>_0001.nii.gz`` and later channels of a case whose ``_0000`` is there:
    spar reads the first channel only."""
    stems = {p.name.split(".")[0] for p in exams}

    def later_channel(stem: str) -> bool:
        head, _, channel = stem.rpartition("_")
        return len(channel) == 4 and channel.isdigit() and channel != "0000" and f"{head}_0000" in stems

    return [p for p in exams if not later_channel(p.name.split(".")[0])]


def _training_orientation(config: dict) -> str | None:
    from spar_core.data.dataset import load_dataset
    from spar_core.data.orientation import dataset_orientation

    if config.get("orientation"):
        return str(config["orientation"])
    root = config.get("dataset")  # a run written before spar recorded it
    try:
        return dataset_orientation(load_dataset(root)) if root else None
    except SparError:
        return None


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm
    from spar_core.data.nifti import NIFTI_SUFFIXES, case_id_of
    from spar_core.inference.ensemble import TTA_SHIFTS
    from spar_core.postprocessing.folds import run_postprocess_config
    from spar_core.postprocessing.run_levels import ensemble_levels
    from spar_core.training.device import pick_device
    from spar_core.training.precision import resolve
    from spar_core.training.segmenter import load_unet

    if (args.run is None) == (args.run_option is None):
        raise SparError("RUN: expected the run folder once (spar predict RUN --method M -i IN -o OUT)")
    run_dir = RunFolder(args.run or args.run_option)
    config = run_dir.read_config()
    folds = chosen_folds(run_dir, args.method, args.models, args.fold)
    exams = input_exams(args.image)
    single = len(exams) == 1 and args.image.is_file() and args.out.name.endswith(NIFTI_SUFFIXES)
    if args.image.is_file() and not single and args.out.name.endswith((".nii", ".gz")):
        raise SparError(f"--out {args.out}: expected a .nii or .nii.gz file name, or a folder")
    if not single:
        output_folder(args.out)
    device = pick_device(args.device)
    resolve(args.precision, device)
    models = [load_unet(run_dir.model_path(f, args.method), device) for f in folds]
    sizes = {meta.size for _, meta in models}
    if len(sizes) > 1:
        raise SparError(f"{run_dir.root}: the fold models of {args.method!r} were trained at sizes {sorted(sizes)}")
    unets, size = [u for u, _ in models], sizes.pop()
    cfg = run_postprocess_config(run_dir, folds, args.method, args.postprocess)
    levels = ensemble_levels(run_dir, folds, args.postprocess, device)
    codes = _training_orientation(config)
    names = list(config.get("labels", {}))
    progress = silent if args.progress_file is None else JsonProgress(args.progress_file)
    members = len(unets) * (len(TTA_SHIFTS) if args.tta else 1)
    start, failed, done, skipped = time.perf_counter(), 0, 0, 0
    # a bar on a terminal only (disable=None), so that a failed exam stays one line in a log
    bar = tqdm(exams, desc="predict", unit="exam", file=sys.stderr, disable=None, leave=False)
    for n, path in enumerate(bar):
        case = case_id_of(path)
        target = args.out if single else args.out / PREDICTION_FILES["labels"].format(case=case)
        # an exam is done only when every output it should have is there (a full disk may have cut it short)
        if not single and not args.overwrite and all(p.is_file() for p in _outputs(args, case, members)):
            skipped += 1
            continue
        progress(ProgressEvent("predict", 1, 1, n, len(exams), label="predict"))
        try:
            _predict_one(path, target, unets, size, cfg, codes, config.get("slice_axis"), args, names, single, device,
                         levels)
            done += 1
        except SparError as err:
            if single:
                raise
            failed += 1
            tqdm.write(f"spar predict: {path}: skipped: {err}", file=sys.stderr)
    bar.close()
    progress(ProgressEvent("predict", 1, 1, len(exams), len(exams), label="predict"))
    print(f"{done} exam(s) segmented into {args.out} ({args.method}, folds {','.join(map(str, folds))}, "
          f"{members} member(s), {time.perf_counter() - start:.1f} s)" + (f"; {skipped} already there" if skipped
                                                                         else "") + (f"; {failed} failed" if failed
                                                                                     else ""))
    return 1 if failed else 0


def _outputs(args: argparse.Namespace, case: str, members: int) -> list[Path]:
    """Every file ``spar predict`` writes for one exam into the folder ``args.out``, the labels last."""
    kinds = ["entropy"] + (["disagreement"] if members > 1 else []) + (["probabilities"] if args.save_probabilities
                                                                        else []) + ["labels"]
    # (the level call, where the run orders a row by its level model, is written with the maps: not checked here)
    return [args.out / PREDICTION_FILES[kind].format(case=case) for kind in kinds]


def _predict_one(path: Path, target: Path, unets, size: int, cfg: PostprocessConfig, codes: str | None,
                 slice_axis: int | None, args: argparse.Namespace, names: list[str], single: bool,
                 device: torch.device, levels=None) -> None:
    from spar_core.data.nifti import case_id_of, load_image, write_label_volume, write_map_volume
    from spar_core.data.orientation import orient_to
    from spar_core.inference.ensemble import predict_ensemble
    from spar_core.postprocessing.steps import postprocess

    volume = load_image(path, slice_axis)
    moved, move = orient_to(volume, codes, slice_axis) if codes else (volume, None)
    pred = predict_ensemble(unets, moved, size, tta=args.tta, device=device,
                            precision=args.precision, keep_probabilities=args.save_probabilities)
    found = None if levels is None else levels(pred.labels, moved)
    labels = postprocess(pred.labels, moved.spacing, cfg, None if found is None else found[0])
    back = (lambda a: a) if move is None else move.undo
    if found is not None:  # beside the labels, not among them: what fixed the level, or that nothing did
        first, last = (names[1], names[-1]) if len(names) > 2 else ("the first", "the last")
        where = target.with_name(target.name.split(".")[0] + ".level.json") if single else \
            args.out / PREDICTION_FILES["levels"].format(case=case_id_of(path))
        write_json(where, {**found[1].to_json(), "says": found[1].describe(first, last),
                           "evidence": found[0].to_json()})
    if not single:  # the maps first, the labels last: labels on disk mean the exam is done
        case = case_id_of(path)
        write_map_volume(back(pred.entropy), volume, args.out / PREDICTION_FILES["entropy"].format(case=case))
        if pred.n_members > 1:
            write_map_volume(back(pred.disagreement), volume, args.out / PREDICTION_FILES["disagreement"].format(case=case))
        if pred.probabilities is not None:
            probs = back(pred.probabilities.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)  # (C, X, Y, Z)
            save_npz(args.out / PREDICTION_FILES["probabilities"].format(case=case), probabilities=probs,
                     labels=names if names else [str(i) for i in range(len(probs))])
    write_label_volume(back(labels), volume, target)
