"""The data-efficiency study: each method trained on nested random subsets of every fold's training patients,
scored on the fold's fixed test exams, so that a curve shows what a shape prior buys as data shrink.

Per fold, repeat r draws one seeded order of the fold's training patients (twins count as one patient); the
subset of size n is the first n patients of that order, so subsets are nested (2 ⊂ 4 ⊂ 8 …) and never touch
the test exams. ``all`` is the whole training side (one repeat). Each (size, repeat) is a *cell*: a run
folder in the usual layout (``STUDY/cells/n<size>_r<r>/``) that ``spar report``, the app and triage read.

Budget: every cell trains for the same number of updates — the preset's ``steps_per_epoch`` × epochs, or, for a
preset that counts epochs as passes, one pass over the *whole* fold's training slices per epoch — so a small set
is seen more often rather than trained less. The shape auto-encoder of a cell learns from that cell's exams
only. Post-processing is the paper's fixed steps (``largest``) in every cell: the study compares regularizers,
not post-processing decisions taken on two exams.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import nibabel
import numpy as np
import pandas as pd
import torch

from spar_core.data.dataset import Dataset
from spar_core.data.nifti import resolve_slice_axis
from spar_core.data.splits import Split
from spar_core.errors import SparError
from spar_core.postprocessing.settings import PostprocessMode, PostprocessSettings
from spar_core.evaluation.study_table import study_table
from spar_core.scoring.identity import is_true
from spar_core.paths import read_json_object, write_csv, write_json
from spar_core.pipeline.crossval import is_complete, run_crossval
from spar_core.pipeline.experiment import dataset_splits, run_summary
from spar_core.pipeline.shard import Shard
from spar_core.progress import Progress, ProgressEvent, silent
from spar_core.layout.run_folder import RunStatus
from spar_core.layout.study_folder import ALL, StudyFolder, cell_name
from spar_core.training.presets import Preset
from spar_core.evaluation.report import load_metrics

# Every cell post-processed alike, whatever its folds could decide: the paper's steps.
POST = PostprocessSettings(mode=PostprocessMode.ALL_STEPS.value)


def parse_sizes(text: str) -> list[int | None]:
    """``"2,4,8,all"`` -> [2, 4, 8, None] (None: every training patient), ascending, without repeats.

    Raises:
        SparError: a value that is neither ``all`` nor an integer ≥ 1.
    """
    sizes: list[int | None] = []
    for token in (t.strip().lower() for t in text.split(",") if t.strip()):
        if token == "all":
            sizes.append(None)
        elif token.isdigit() and int(token) >= 1:
            sizes.append(int(token))
        else:
            raise SparError(f"--train-exams {text!r}: expected sizes like 2,4,8,16,all (integers ≥ 1 or 'all')")
    if not sizes:
        raise SparError(f"--train-exams {text!r}: expected at least one size")
    numbers = sorted({s for s in sizes if s is not None})
    return [*numbers, *([None] if None in sizes else [])]


def nested_subsets(split: Split, sizes: Sequence[int | None], repeats: int, seed: int,
                   groups: dict[str, str]) -> dict[tuple[int | None, int], tuple[str, ...]]:
    """(size, repeat) -> the training cases of that cell for ``split`` (nested across sizes within a repeat).

    Raises:
        SparError: a size above the fold's number of training patients.
    """
    patients: dict[str, list[str]] = {}
    for case in split.train:
        patients.setdefault(groups.get(case, case), []).append(case)
    names = sorted(patients)
    too_big = [s for s in sizes if s is not None and s > len(names)]
    if too_big:
        raise SparError(f"--train-exams {too_big[0]}: fold {split.fold} has {len(names)} training patients; "
                        f"expected sizes up to {len(names)} (or 'all')")
    out = {}
    for r in range(repeats):
        order = [names[i] for i in np.random.default_rng([seed, split.fold, r]).permutation(len(names))]
        for size in sizes:
            if size is None and r > 0:
                continue  # the whole training side is one draw
            chosen = order if size is None else order[:size]
            out[(size, r)] = tuple(sorted(c for p in chosen for c in patients[p]))
    return out


def _full_pass_steps(dataset: Dataset, cases: Sequence[str], batch: int) -> int:
    """Updates of one pass over the slices of ``cases`` (headers only are read)."""
    slices = 0
    for case in cases:
        header = nibabel.load(dataset.case(case).image_path).header
        slices += int(header.get_data_shape()[resolve_slice_axis(header.get_zooms()[:3], dataset.slice_axis)])
    return max(1, math.ceil(slices / batch))


def run_data_efficiency(dataset: Dataset, preset: Preset, methods: Sequence[str], folds: str, sizes: Sequence[int | None],
                        repeats: int, out: str | Path, *, device: torch.device, shard: Shard = Shard(),
                        progress: Progress = silent) -> pd.DataFrame:
    """Train and score this shard's cells not yet complete, then tabulate the whole grid when it is.

    ``shard`` takes cells (each a run folder) in turn: cells[i::n].
    Returns:
        The study table by training-set size (empty until every cell is complete).
    """
    if repeats < 1:
        raise SparError(f"--repeats {repeats}: expected an integer ≥ 1")
    study = StudyFolder(Path(out))
    splits, twins = dataset_splits(dataset, folds, preset.train.seed)
    groups = twins.groups()
    per_fold = {s.fold: nested_subsets(s, sizes, repeats, preset.train.seed, groups) for s in splits}
    cells = list(per_fold[splits[0].fold])
    steps = preset.train.steps_per_epoch or max(_full_pass_steps(dataset, s.train, preset.train.batch_size)
                                                for s in splits)
    fixed = replace(preset, train=replace(preset.train, steps_per_epoch=steps))
    write_json(study.study_json, {"kind": "data-efficiency", "dataset": str(dataset.root), "preset": preset.name,
                                    "methods": list(methods), "folds": folds, "sizes": ["all" if s is None else s
                                                                                         for s in sizes],
                                    "repeats": repeats, "steps_per_epoch": steps, "epochs": preset.train.epochs,
                                    "postprocess": POST.mode,
                                    "cells": {cell_name(*c): {"size": c[0], "repeat": c[1]} for c in cells}})
    mine = [c for i, c in enumerate(cells) if i % shard.count == shard.index]
    for n, cell in enumerate(mine):
        run = study.cell(*cell)
        cell_splits = [Split(s.fold, per_fold[s.fold][cell], s.test) for s in splits]
        if run.exists() and is_complete(run, cell_splits, methods, POST):
            continue
        progress(ProgressEvent("study", n + 1, len(mine), 0, 1, label=cell_name(*cell)))
        summary = run_summary(dataset, cell_splits, methods, fixed, folds, POST, twins)
        if run.exists():
            run.check_same_experiment(summary, defaults=fixed.default_settings())
        run.start({**summary, "study": {"kind": "data-efficiency", "size": cell[0], "repeat": cell[1]}})
        with run.stopped_on_interrupt():
            run_crossval(dataset, cell_splits, methods, fixed, run, device=device, settings=POST,
                         progress=progress)
        run.finish(is_complete(run, cell_splits, methods, POST))
    return study_results(study.root)


def study_results(out: str | Path) -> pd.DataFrame:
    """The table of a data-efficiency study folder once every cell is complete (else empty); written to
    ``table.csv`` with the rows of every cell in ``metrics.csv``."""
    study = StudyFolder(Path(out))
    meta = read_json_object(study.study_json, "a data-efficiency study's record (study.json)")
    frames = []
    cells = meta.get("cells")
    if not isinstance(cells, dict):
        raise SparError(f"{study.study_json}: no \"cells\"; expected a data-efficiency study's record")
    for name, cell in cells.items():
        run = study.cell(cell["size"], cell["repeat"])
        if not run.metrics_csv.is_file() or run.read_config().get("status") != RunStatus.COMPLETE:
            return pd.DataFrame()
        rows = load_metrics(run.metrics_csv)
        rows = rows[rows["postprocessed"].map(is_true)]
        frames.append(rows.assign(cell=name, train_exams=ALL if cell["size"] is None else cell["size"],
                                  repeat=cell["repeat"]))
    metrics = pd.concat(frames, ignore_index=True)
    write_csv(study.metrics_csv, metrics)
    table = study_table(metrics, ["train_exams"])
    write_csv(study.table_csv, table)
    return table
