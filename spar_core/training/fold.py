"""One fold of an experiment: its slices, its shared shape auto-encoder, then each method's segmenter."""

from __future__ import annotations

from typing import Sequence

import torch

from spar_core.data.dataset import Dataset, load_volume
from spar_core.methods import METHODS
from spar_core.training.distributed import DistInfo, barrier
from spar_core.models import ShapeAutoEncoder
from spar_core.training.presets import Preset
from spar_core.progress import Progress, silent
from spar_core.layout.run_folder import RunFolder
from spar_core.data.slice_set import SliceSet, build_slice_set, snapshot_indices
from spar_core.data.splits import Split
from spar_core.training.segmenter import train_segmenter
from spar_core.training.level import LevelModel, LevelTrainConfig, train_level_model
from spar_core.training.shape_ae import load_shape_ae, save_shape_ae, train_shape_ae
from spar_core.paths import write_json
from spar_core.errors import SparError, note


def fold_slices(dataset: Dataset, split: Split, preset: Preset) -> tuple[SliceSet, SliceSet]:
    """(training slices, fixed snapshot slices): snapshots come from the fold's test exams where it has
    some (the codes then show how predictions on unseen exams approach true shapes), else from training."""
    tc, unet = preset.train, preset.unet
    ctx = {"context": unet.context, "stride": unet.context_stride, "context_mm": unet.context_mm}
    train = build_slice_set(dataset, split.train, tc.size, empty_fraction=tc.empty_fraction, seed=tc.seed, **ctx)
    source = build_slice_set(dataset, split.test, tc.size, empty_fraction=0.0, **ctx) if split.test else train
    return train, source.subset(snapshot_indices(source, tc.snapshot_slices, seed=tc.seed))


def needs_shape_ae(methods: Sequence[str], preset: Preset) -> bool:
    """Whether a fold training ``methods`` needs its shape auto-encoder: as F of a method, or for the latent
    snapshots (a baseline run without snapshots trains none)."""
    return bool(preset.train.snapshot_epochs) or any(METHODS[m].needs_shape_encoder for m in methods)


def fold_shape_ae(
    run: RunFolder, fold: int, train: SliceSet, preset: Preset, *, device: torch.device,
    progress: Progress = silent, dist: DistInfo = DistInfo(),
) -> ShapeAutoEncoder:
    """The fold's frozen shape auto-encoder: loaded when it exists, trained on true masks otherwise (or when the
    file on disk is unreadable: said so, and trained again)."""
    path = run.shape_ae_path(fold)
    ae = None
    if path.is_file():
        try:
            ae = load_shape_ae(path, device)
        except SparError as err:
            if dist.is_main:
                note(f"{err}; training the fold's shape auto-encoder again")
    barrier(dist)  # every rank has read the file before one is written in its place
    if ae is not None:
        return ae
    if dist.is_main:
        save_shape_ae(train_shape_ae(train.labels, preset, device=device, progress=progress), path)
    barrier(dist)
    return load_shape_ae(path, device)


def fold_level_model(
    run: RunFolder, dataset: Dataset, split: Split, row: tuple[tuple[int, ...], int, bool], preset: Preset, *,
    device: torch.device, progress: Progress = silent,
) -> LevelModel:
    """The fold's level model for ``row`` (labels in order, axis, ascending): loaded when it exists, trained on
    the truth of the fold's training exams otherwise (or when the file is unreadable: said so), with its held-out
    accuracy on the fold's test exams recorded beside it (``level_model.json``)."""
    path = run.level_model_path(split.fold)
    if path.is_file():
        try:
            return LevelModel.load(path, device)
        except SparError as err:
            note(f"{err}; training the fold's level model again")
    labels, axis, ascending = row
    train = [load_volume(dataset, case) for case in split.train]
    held_out = [load_volume(dataset, case) for case in split.test
                if dataset.case(case).label_path is not None]
    augment = preset.train.augment if preset.train.augment is not None and preset.train.augment.has_intensity \
        else None
    cfg = LevelTrainConfig(steps=preset.train.level_steps, seed=preset.train.seed, augment=augment)
    model = train_level_model(train, labels, axis, ascending, cfg, device=device, held_out=held_out,
                              progress=progress)
    model.save(path)
    write_json(run.level_report_path(split.fold), {"fold": split.fold, **model.report})
    return LevelModel.load(path, device)


def train_fold(
    dataset: Dataset,
    split: Split,
    methods: Sequence[str],
    preset: Preset,
    run: RunFolder,
    *,
    device: torch.device,
    resume: bool = True,
    progress: Progress = silent,
    dist: DistInfo = DistInfo(),
) -> dict[str, list[dict]]:
    """Train every method of ``methods`` on ``split``; returns each method's history.

    A method whose checkpoint has reached the last epoch is not trained again; with ``resume`` an unfinished
    one continues where it stopped.
    """
    preset = preset.for_dataset(dataset)
    if dist.is_main:
        run.write_split(split)
    train, snapshot = fold_slices(dataset, split, preset)
    ae = (fold_shape_ae(run, split.fold, train, preset, device=device, progress=progress, dist=dist)
          if needs_shape_ae(methods, preset) else None)
    return {
        m: train_segmenter(m, train, ae, preset, run.method_dir(split.fold, m), device=device,
                           snapshot=snapshot, resume=resume, progress=progress, dist=dist)
        for m in methods
    }
