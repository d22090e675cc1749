"""Exams segmented by a run's trained method: the chosen fold models ensembled
(:mod:`spar_core.inference.folder`), post-processed as the run decided (or in another mode), rows ordered by the
run's level models where it orders them so, each exam's level call written beside its labels."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from spar_core.data.dataset import load_dataset
from spar_core.data.nifti import Volume
from spar_core.data.orientation import dataset_orientation
from spar_core.errors import SparError
from spar_core.inference.folder import (Ensemble, FolderResult, PredictOptions, input_exams, predict_exams,
                                        single_output)
from spar_core.layout.run_folder import RunFolder
from spar_core.postprocessing.folds import run_postprocess_config
from spar_core.postprocessing.run_levels import ensemble_levels
from spar_core.postprocessing.steps import postprocess
from spar_core.progress import Progress, silent
from spar_core.training.segmenter import load_unet


def chosen_folds(run: RunFolder, method: str, models: str, fold: int | None) -> list[int]:
    """The folds whose model of ``method`` to ensemble (``models``: ``all`` or ``0,1,...``; ``fold``: one).

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


def training_orientation(config: dict) -> str | None:
    """The orientation codes of the run's training exams (read from its dataset where the run did not record
    them); None where neither says."""
    if config.get("orientation"):
        return str(config["orientation"])
    root = config.get("dataset")  # a run written before spar recorded it
    try:
        return dataset_orientation(load_dataset(root)) if root else None
    except SparError:
        return None


def run_ensemble(run: RunFolder, method: str, folds: list[int], device: torch.device) -> Ensemble:
    """The fold models of ``method`` as one ensemble, with the run's orientation, slice axis and label names."""
    config = run.read_config()
    models = [load_unet(run.model_path(f, method), device) for f in folds]
    sizes = {meta.size for _, meta in models}
    if len(sizes) > 1:
        raise SparError(f"{run.root}: the fold models of {method!r} were trained at sizes {sorted(sizes)}")
    return Ensemble([u for u, _ in models], sizes.pop(), training_orientation(config), config.get("slice_axis"),
                    list(config.get("labels", {})))


def run_finish(run: RunFolder, method: str, folds: list[int], mode: str | None, device: torch.device
               ) -> Callable[[np.ndarray, Volume], tuple[np.ndarray, dict | None]]:
    """(raw labels, exam) → (labels post-processed as the run does for ``method``'s ensemble of ``folds``, or in
    ``mode``; the level call's record where the run orders a row by its level models)."""
    cfg = run_postprocess_config(run, folds, method, mode)
    levels = ensemble_levels(run, folds, mode, device)
    names = list(run.read_config().get("labels", {}))
    first, last = (names[1], names[-1]) if len(names) > 2 else ("the first", "the last")

    def finish(raw: np.ndarray, volume: Volume) -> tuple[np.ndarray, dict | None]:
        found = None if levels is None else levels(raw, volume)
        labels = postprocess(raw, volume.spacing, cfg, None if found is None else found[0])
        record = None if found is None else {**found[1].to_json(), "says": found[1].describe(first, last),
                                             "evidence": found[0].to_json()}
        return labels, record

    return finish


def predict_with_run(run: RunFolder, method: str, image: Path, out: Path, options: PredictOptions, *,
                     models: str = "all", fold: int | None = None, postprocess_mode: str | None = None,
                     device: torch.device, progress: Progress = silent,
                     on_error: Callable[[Path, SparError], None] | None = None) -> tuple[list[int], FolderResult]:
    """Segment ``image`` (a file, a folder, a dataset) with ``method``'s fold models into ``out``; returns the
    folds ensembled and what was done."""
    folds = chosen_folds(run, method, models, fold)
    exams = input_exams(image)
    single = single_output(image, exams, out)  # a bad input or output path fails before any model is read
    ensemble = run_ensemble(run, method, folds, device)
    finish = run_finish(run, method, folds, postprocess_mode, device)
    return folds, predict_exams(exams, single, out, ensemble, options, finish, device=device, progress=progress,
                                on_error=on_error)
