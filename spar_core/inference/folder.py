"""Prediction of a file or a folder of exams by an ensemble of segmenters: each exam oriented as the training
exams, segmented, finished (the caller's post-processing) and written back on its own grid and affine, with its
uncertainty maps, the mean probabilities on request, and the level call where the finish makes one.

``OUT/<case>.nii.gz`` (labels; nnU-Net's ``_0000`` channel suffix dropped), ``OUT/uncertainty/<case>_entropy``
and ``_disagreement`` (with several members), ``OUT/probabilities/<case>.npz`` and ``OUT/levels/<case>.json``
(:data:`~spar_core.paths.PREDICTION_FILES`). The maps are written before the labels: labels on disk mean the exam
is done, and an exam with every output there is skipped unless told to overwrite. One input file with an OUT
ending in ``.nii.gz`` writes the labels alone, to OUT (its level call beside it). A bad exam is reported to
``on_error`` and the others go on.

Post-processing is a later layer: the caller hands it in as a ``finish`` (raw labels, oriented exam) → (labels,
level call record or None).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from spar_core.data.nifti import (NIFTI_SUFFIXES, Volume, case_id_of, load_image, write_label_volume,
                                  write_map_volume)
from spar_core.data.orientation import orient_to
from spar_core.errors import SparError
from spar_core.inference.ensemble import TTA_SHIFTS, predict_ensemble
from spar_core.models import UNet
from spar_core.paths import DATASET_JSON, PREDICTION_FILES, output_folder, save_npz, write_json
from spar_core.progress import Progress, ProgressEvent, silent

Finish = Callable[[np.ndarray, Volume], tuple[np.ndarray, "dict | None"]]


@dataclass(frozen=True)
class PredictOptions:
    """What a prediction adds beyond the labels: test-time shifts, the mean probabilities, overwriting done exams,
    the numerical precision."""

    tta: bool = False
    save_probabilities: bool = False
    overwrite: bool = False
    precision: str = "auto"


@dataclass(frozen=True)
class Ensemble:
    """The segmenters whose softmax is averaged, their slice size, and where the exams must be turned to (the
    training exams' orientation codes, None: as they are) along which slice axis."""

    unets: Sequence[UNet]
    size: int
    orientation: str | None = None
    slice_axis: int | None = None
    names: Sequence[str] = ()

    def members(self, options: PredictOptions) -> int:
        return len(self.unets) * (len(TTA_SHIFTS) if options.tta else 1)


@dataclass(frozen=True)
class FolderResult:
    done: int
    skipped: int
    failed: int
    members: int
    seconds: float


def input_exams(path: Path) -> list[Path]:
    """The NIfTI exams of ``path``: the file itself, the NIfTI files of a folder, or a dataset's imagesTr.

    Raises:
        SparError: a missing path, or a folder without NIfTI files.
    """
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


def single_output(image: Path, exams: list[Path], out: Path) -> bool:
    """True when one input file is written to one label file ``out``; refuses a file name for several exams."""
    single = len(exams) == 1 and image.is_file() and out.name.endswith(NIFTI_SUFFIXES)
    if image.is_file() and not single and out.name.endswith((".nii", ".gz")):
        raise SparError(f"--out {out}: expected a .nii or .nii.gz file name, or a folder")
    return single


def exam_outputs(out: Path, case: str, members: int, options: PredictOptions) -> list[Path]:
    """Every file a folder prediction writes for one exam, the labels last."""
    kinds = ["entropy"] + (["disagreement"] if members > 1 else []) + (["probabilities"] if options.save_probabilities
                                                                        else []) + ["labels"]
    # (the level call, where the finish makes one, is written with the maps: not checked here)
    return [out / PREDICTION_FILES[kind].format(case=case) for kind in kinds]


def predict_exam(path: Path, target: Path, ensemble: Ensemble, options: PredictOptions, finish: Finish,
                 single: bool, out: Path, device: torch.device) -> None:
    """One exam predicted, finished and written (``target``: its labels)."""
    volume = load_image(path, ensemble.slice_axis)
    moved, move = (orient_to(volume, ensemble.orientation, ensemble.slice_axis) if ensemble.orientation
                   else (volume, None))
    pred = predict_ensemble(list(ensemble.unets), moved, ensemble.size, tta=options.tta, device=device,
                            precision=options.precision, keep_probabilities=options.save_probabilities)
    labels, level = finish(pred.labels, moved)
    back = (lambda a: a) if move is None else move.undo
    case = case_id_of(path)
    if level is not None:  # beside the labels, not among them: what fixed the level, or that nothing did
        where = target.with_name(target.name.split(".")[0] + ".level.json") if single else \
            out / PREDICTION_FILES["levels"].format(case=case)
        write_json(where, level)
    if not single:  # the maps first, the labels last: labels on disk mean the exam is done
        write_map_volume(back(pred.entropy), volume, out / PREDICTION_FILES["entropy"].format(case=case))
        if pred.n_members > 1:
            write_map_volume(back(pred.disagreement), volume, out / PREDICTION_FILES["disagreement"].format(case=case))
        if pred.probabilities is not None:
            probs = back(pred.probabilities.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)  # (C, X, Y, Z)
            names = list(ensemble.names) or [str(i) for i in range(len(probs))]
            save_npz(out / PREDICTION_FILES["probabilities"].format(case=case), probabilities=probs, labels=names)
    write_label_volume(back(labels), volume, target)


def predict_exams(exams: Sequence[Path], single: bool, out: Path, ensemble: Ensemble, options: PredictOptions,
                  finish: Finish, *, device: torch.device, progress: Progress = silent,
                  on_error: Callable[[Path, SparError], None] | None = None) -> FolderResult:
    """``exams`` (:func:`input_exams`) predicted into the folder ``out``, or with ``single``
    (:func:`single_output`) the one exam's labels into the file ``out``; done exams skipped.

    Raises:
        SparError: an output path in the way, or the one exam of a single-file prediction failing.
    """
    if not single:
        output_folder(out)
    members = ensemble.members(options)
    start, failed, done, skipped = time.perf_counter(), 0, 0, 0
    for n, path in enumerate(exams):
        case = case_id_of(path)
        target = out if single else out / PREDICTION_FILES["labels"].format(case=case)
        # an exam is done only when every output it should have is there (a full disk may have cut it short)
        if not single and not options.overwrite and all(p.is_file() for p in exam_outputs(out, case, members,
                                                                                             options)):
            skipped += 1
            continue
        progress(ProgressEvent("predict", 1, 1, n, len(exams), label="predict"))
        try:
            predict_exam(path, target, ensemble, options, finish, single, out, device)
            done += 1
        except SparError as err:
            if single or on_error is None:
                raise
            failed += 1
            on_error(path, err)
    progress(ProgressEvent("predict", 1, 1, len(exams), len(exams), label="predict"))
    return FolderResult(done, skipped, failed, members, time.perf_counter() - start)
