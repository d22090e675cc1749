"""Cross-validation: per fold one shape auto-encoder shared by the methods, each method trained, the
fold's test exams predicted, post-processed and scored; one metrics row per exam × structure × method,
with and without post-processing.

The (fold, method) grid is the unit of work: a unit whose ``metrics.csv`` exists is finished and skipped,
and a :class:`~spar_core.pipeline.shard.Shard` takes a deterministic share of the grid, so that a job array
covers it exactly once. Shards that share a fold each train its auto-encoder if it is missing: training is
seeded, so on the same hardware they write the same weights, and the write is atomic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd
import torch

from spar_core.data.dataset import Dataset, load_volume
from spar_core.data.nifti import read_label_volume, write_label_volume
from spar_core.data.splits import Split, splits_final
from spar_core.errors import SparError, note
from spar_core.evaluation.report import REQUIRED_COLUMNS, check_metrics
from spar_core.evaluation.rows import metric_rows
from spar_core.inference.predict import predict_volume
from spar_core.paths import read_table, write_csv, write_json
from spar_core.pipeline.shard import Shard
from spar_core.postprocessing.settings import PostprocessMode, PostprocessSettings
from spar_core.postprocessing.decision import postprocess_config
from spar_core.postprocessing.folds import decide_fold, fold_label_facts, out_of_fold, out_of_fold_reader
from spar_core.postprocessing.run_levels import RunLevels, level_columns
from spar_core.postprocessing.steps import PostprocessConfig, postprocess
from spar_core.progress import Progress, ProgressEvent, silent
from spar_core.layout.run_folder import RunFolder
from spar_core.training.fold import fold_shape_ae, fold_slices, needs_shape_ae
from spar_core.training.presets import Preset
from spar_core.training.segmenter import load_unet, train_segmenter


UNIT_ROWS = "a unit's metric rows (spar crossval writes them)"


def grid(splits: Sequence[Split], methods: Sequence[str]) -> list[tuple[int, str]]:
    return [(s.fold, m) for s in splits for m in methods]


def _read_rows(path: Path) -> pd.DataFrame:
    """A unit's metric rows, checked; a file of one line break (an empty table) is a fold without test exams."""
    if path.stat().st_size == 1:
        return pd.DataFrame()
    return check_metrics(read_table(path, REQUIRED_COLUMNS, UNIT_ROWS, text=("case", "structure")), str(path))


def finished(path: Path, cases: Sequence[str]) -> bool:
    """Whether a unit's metric rows (its mark of being finished) are there, read, and score every one of its test
    ``cases``; otherwise (unreadable, truncated) they are removed, said so, and the unit is done again."""
    if not path.is_file():
        return False
    try:
        rows = _read_rows(path)
        scored = set(rows["case"]) if not rows.empty else set()
        if scored != set(cases):
            raise SparError(f"{path}: scores {len(scored)} of the fold's {len(set(cases))} test exams")
    except SparError as err:
        note(f"{err}; doing that unit again")
        path.unlink()
        return False
    return True


def run_unit(
    dataset: Dataset, split: Split, method: str, preset: Preset, run: RunFolder, *,
    device: torch.device, post_cfg: PostprocessConfig | None, settings: PostprocessSettings = PostprocessSettings(),
    progress: Progress = silent, slices=None,
) -> pd.DataFrame:
    """Train (or resume) one method on one fold, predict its test exams, score them; returns the rows.

    ``post_cfg`` None (``--postprocess auto``): only the raw predictions are written and scored; the
    post-processed ones wait for the decision (:func:`decide_and_score`). Otherwise a row ordered by the level
    model gets its evidence (the fold's level model trained first if needed)."""
    train, snapshot = slices if slices is not None else fold_slices(dataset, split, preset)
    ae = (fold_shape_ae(run, split.fold, train, preset, device=device, progress=progress)
          if needs_shape_ae([method], preset) else None)
    train_segmenter(method, train, ae, preset, run.method_dir(split.fold, method), device=device,
                    snapshot=snapshot, resume=True, progress=progress)
    unet, _ = load_unet(run.model_path(split.fold, method), device)
    levels = RunLevels(run, dataset, settings, preset, device=device, progress=progress)
    rows = []
    for i, case_id in enumerate(split.test):
        vol = load_volume(dataset, case_id)
        raw = predict_volume(unet, vol, preset.train.size, device=device, precision=preset.train.precision)
        write_label_volume(raw, vol, run.prediction_path(split.fold, method, case_id, raw=True))
        keys = {"case": case_id, "fold": split.fold, "method": method}
        rows += metric_rows(raw, vol.label, vol.spacing, dataset.structures, keys, postprocessed=False, raw=raw,
                            connectivity=settings.connectivity)
        if post_cfg is not None:
            found = levels.evidence(split.fold, raw, vol, (method, case_id))
            post = postprocess(raw, vol.spacing, post_cfg, None if found is None else found[0])
            write_label_volume(post, vol, run.prediction_path(split.fold, method, case_id))
            rows += metric_rows(post, vol.label, vol.spacing, dataset.structures, {**keys, **level_columns(found)},
                                postprocessed=True, raw=raw, connectivity=settings.connectivity)
        progress(ProgressEvent("predict", 1, 1, i + 1, len(split.test), label=f"{method} fold {split.fold}"))
    frame = pd.DataFrame(rows)
    write_csv(run.unit_metrics_path(split.fold, method), frame)
    return frame


def merge_metrics(run: RunFolder) -> pd.DataFrame:
    """Gather every finished unit's rows into ``RUN/metrics.csv`` (rewritten atomically)."""
    parts = [rows for rows in map(_read_rows, run.unit_metrics_files()) if not rows.empty]

    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if not frame.empty:
        frame = frame.sort_values(["fold", "method", "case", "label", "postprocessed"], kind="stable")
        write_csv(run.metrics_csv, frame)
    return frame


def decide_and_score(dataset: Dataset, splits: Sequence[Split], method: str, run: RunFolder,
                     settings: PostprocessSettings, progress: Progress = silent, *, preset: Preset | None = None,
                     device: torch.device | str = "cpu") -> None:
    """``--postprocess auto`` once every fold of ``method`` has its raw predictions: per fold, the steps chosen
    on the out-of-fold raw predictions of its training exams
    (:func:`~spar_core.postprocessing.folds.decide_fold`), applied to its test exams and scored. Folds already
    decided are skipped. Rows ordered by the level model: each fold's model (``preset``'s steps) trained the first
    time it is needed, its evidence recorded per prediction."""
    deciding_exams = out_of_fold(splits)
    levels = RunLevels(run, dataset, settings, preset, device=device, progress=progress)
    read_exams = out_of_fold_reader(dataset, splits, method, run, levels.recorded(method))
    for n, split in enumerate(splits):
        folder = run.method_folder(split.fold, method)
        if finished(folder.post_metrics, split.test):
            continue
        progress(ProgressEvent("postprocess", n + 1, len(splits), 0, 1, label=f"{method} fold {split.fold}"))
        facts = fold_label_facts(dataset, split, run, settings.connectivity)
        decision = decide_fold(dataset, split, method, run, settings, facts, deciding_exams[split.fold], read_exams)
        cfg = postprocess_config(settings, facts, decision)
        rows = []
        for case in split.test:
            vol = load_volume(dataset, case)
            raw = read_label_volume(run.prediction_path(split.fold, method, case, raw=True))[0]
            found = levels.evidence(split.fold, raw, vol, (method, case))
            post = postprocess(raw, vol.spacing, cfg, None if found is None else found[0])
            write_label_volume(post, vol, run.prediction_path(split.fold, method, case))
            rows += metric_rows(post, vol.label, vol.spacing, dataset.structures,
                                {"case": case, "fold": split.fold, "method": method, **level_columns(found)},
                                postprocessed=True, raw=raw, connectivity=settings.connectivity)
        write_csv(folder.post_metrics, pd.DataFrame(rows))


def run_crossval(
    dataset: Dataset, splits: Sequence[Split], methods: Sequence[str], preset: Preset, run: RunFolder, *,
    device: torch.device, shard: Shard = Shard(), settings: PostprocessSettings = PostprocessSettings(),
    progress: Progress = silent,
) -> pd.DataFrame:
    """Run this shard's share of the (fold, method) grid, skipping finished units; returns all merged rows.

    Each fold's post-processing keeps as many parts of a structure as its training labels show and, with
    ``settings.chain``, orders the structures in a row they form; ``settings.mode`` (``auto``, ``largest``,
    ``none``: :mod:`spar_core.postprocessing.decision`) says which of these steps run. With ``auto``, the
    invocation that finds every raw prediction of a method present decides and scores its post-processing
    (:func:`decide_and_score`)."""
    preset = preset.for_dataset(dataset)
    write_json(run.splits_final, splits_final(splits))  # nnU-Net trains on these folds as they are
    units = shard.take(grid(splits, methods))
    by_fold = {s.fold: s for s in splits}
    cached: dict[int, tuple] = {}
    for n, (fold, method) in enumerate(units):
        progress(ProgressEvent("crossval", n + 1, len(units), 0, 1, label=f"fold {fold} {method}"))
        if finished(run.unit_metrics_path(fold, method), by_fold[fold].test):
            continue
        split = by_fold[fold]
        run.write_split(split)
        if fold not in cached:
            cached.clear()  # one fold's slices in memory at a time
            cached[fold] = fold_slices(dataset, split, preset)
        unit_post = (None if settings.mode == PostprocessMode.DECIDED else
                     postprocess_config(settings, fold_label_facts(dataset, split, run, settings.connectivity)))
        run_unit(dataset, split, method, preset, run, device=device, post_cfg=unit_post, settings=settings,
                 progress=progress, slices=cached[fold])
    if settings.mode == PostprocessMode.DECIDED:
        for method in methods:
            if all(run.unit_metrics_path(s.fold, method).is_file() for s in splits):
                decide_and_score(dataset, splits, method, run, settings, progress, preset=preset, device=device)
    return merge_metrics(run)


def is_complete(run: RunFolder, splits: Sequence[Split], methods: Sequence[str],
                settings: PostprocessSettings = PostprocessSettings()) -> bool:
    """Every unit of the grid finished (and, with ``auto``, its post-processing decided and scored)."""
    return all(run.unit_metrics_path(f, m).is_file()
               and (settings.mode != PostprocessMode.DECIDED or run.method_folder(f, m).post_metrics.is_file())
               for f, m in grid(splits, methods))
