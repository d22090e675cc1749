"""Cross-validation: per fold one shape auto-encoder shared by the methods, each method trained, the
fold's test exams predicted, post-processed and scored; one metrics row per exam × structure × method,
with and without post-processing.

The (fold, method) grid is the unit of work: a unit whose ``metrics.csv`` exists is finished and skipped,
and ``Shard(i, n)`` takes a deterministic share of the grid, so that a job array covers it exactly once.
Shards that share a fold each train its auto-encoder if it is missing: training is seeded, so on the same
hardware they write the same weights, and the write is atomic.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from spar_core.data.dataset import Dataset, load_volume, read_label_volume
from spar_core.data.duplicates import Twins, find_twins
from spar_core.data.orientation import dataset_orientation
from spar_core.errors import SparError
from spar_core.training.fold import fold_shape_ae, fold_slices, needs_shape_ae
from spar_core.postprocessing.chain import find_chain
from spar_core.postprocessing.components import structure_parts
from spar_core.inference.predict import predict_volume, write_label_volume
from spar_core.evaluation.metrics import evaluate_labels
from spar_core.paths import write_csv, write_json
from spar_core.postprocessing.steps import PostprocessConfig, count_components, decided_postprocess, postprocess
from spar_core.postprocessing.decision import (check_mode, choose_postprocess, combine_decisions, config_for,
                                                     exam_scores)
from spar_core.training.presets import Preset
from spar_core.progress import Progress, ProgressEvent, silent
from spar_core.runs.run_folder import RunFolder
from spar_core.data.splits import Split, make_splits, read_splits_file
from spar_core.training.segmenter import load_unet, train_segmenter


@dataclass(frozen=True)
class Shard:
    """The ``index``-th of ``count`` shares of the grid (0 ≤ index < count), e.g. a job array task."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> "Shard":
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not m or not 0 <= int(m.group(1)) < int(m.group(2)):
            raise SparError(f"--shard {text!r}: expected i/n with 0 <= i < n, e.g. 0/4 "
                            "(the task id of a job array of n tasks)")
        return cls(int(m.group(1)), int(m.group(2)))

    def take(self, units: Sequence[tuple[int, str]]) -> list[tuple[int, str]]:
        """This shard's units: contiguous blocks, so a shard mostly works within one fold."""
        bounds = np.linspace(0, len(units), self.count + 1).round().astype(int)
        return list(units[bounds[self.index]:bounds[self.index + 1]])


def grid(splits: Sequence[Split], methods: Sequence[str]) -> list[tuple[int, str]]:
    return [(s.fold, m) for s in splits for m in methods]


def score_case(
    labels_raw: np.ndarray, truth: np.ndarray, spacing: tuple[float, float, float], structures: dict[str, int],
    post: np.ndarray | None,
) -> list[dict]:
    """Metric rows of one exam, raw and (unless ``post`` is None) post-processed, with the raw prediction's
    component counts."""
    rows = []
    for flag, pred in ((False, labels_raw), (True, post)):
        if pred is None:
            continue
        for row in evaluate_labels(pred, truth, spacing, structures):
            row["postprocessed"] = flag
            row["n_components_raw"] = count_components(labels_raw == row["label"], 3)
            rows.append(row)
    return rows


def run_unit(
    dataset: Dataset, split: Split, method: str, preset: Preset, run: RunFolder, *,
    device: torch.device, post_cfg: PostprocessConfig | None, progress: Progress = silent,
    slices=None,
) -> pd.DataFrame:
    """Train (or resume) one method on one fold, predict its test exams, score them; returns the rows.

    ``post_cfg`` None (``--postprocess auto``): only the raw predictions are written and scored; the
    post-processed ones wait for the decision (:func:`decide_auto_postprocess`)."""
    train, snapshot = slices if slices is not None else fold_slices(dataset, split, preset)
    ae = (fold_shape_ae(run, split.fold, train, preset, device=device, progress=progress)
          if needs_shape_ae([method], preset) else None)
    train_segmenter(method, train, ae, preset, run.method_dir(split.fold, method), device=device,
                    snapshot=snapshot, resume=True, progress=progress)
    unet, _ = load_unet(run.model_path(split.fold, method), device)
    rows = []
    for i, case_id in enumerate(split.test):
        vol = load_volume(dataset, case_id)
        raw = predict_volume(unet, vol, preset.train.size, device=device, precision=preset.train.precision)
        post = None if post_cfg is None else postprocess(raw, vol.spacing, post_cfg)
        write_label_volume(raw, vol, run.prediction_path(split.fold, method, case_id, raw=True))
        if post is not None:
            write_label_volume(post, vol, run.prediction_path(split.fold, method, case_id))
        for row in score_case(raw, vol.label, vol.spacing, dataset.structures, post):
            rows.append({"case": case_id, "fold": split.fold, "method": method, **row})
        progress(ProgressEvent("predict", 1, 1, i + 1, len(split.test), label=f"{method} fold {split.fold}"))
    frame = pd.DataFrame(rows)
    write_csv(run.unit_metrics_path(split.fold, method), frame)
    return frame


def merge_metrics(run: RunFolder) -> pd.DataFrame:
    """Gather every finished unit's rows into ``RUN/metrics.csv`` (rewritten atomically)."""
    parts = [pd.read_csv(p) for p in run.unit_metrics_files() if p.stat().st_size > 1]  # a fold without test exams

    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if not frame.empty:
        frame = frame.sort_values(["fold", "method", "case", "label", "postprocessed"], kind="stable")
        write_csv(run.metrics_csv, frame)
    return frame


def fold_postprocess(dataset: Dataset, split: Split, run: RunFolder, post_cfg: PostprocessConfig,
                     chain: bool = True) -> PostprocessConfig:
    """``post_cfg`` with what the fold's training labels decide: the structures in a row they form (with
    ``chain``) and the structures of several parts (left and right). Found once, written to the fold's
    postprocess.json, read back after."""
    decided = run.read_fold_postprocess(split.fold)
    if decided is None:
        labels = [v for v in dataset.labels.values() if v > 0]
        truths, spacings = [], []
        for case in split.train:
            volume = load_volume(dataset, case)
            truths.append(volume.label)
            spacings.append(volume.spacing)
        found = find_chain(truths, labels, spacings=spacings)
        decided = {"chain": found.as_dict() if found is not None else None,
                   "parts": {str(k): n for k, n in structure_parts(truths, labels, post_cfg.connectivity).items()}}
        run.write_fold_postprocess(split.fold, decided)
    return decided_postprocess(post_cfg, decided, chain)


def run_postprocess(run: RunFolder, folds: Sequence[int], method: str) -> PostprocessConfig:
    """The post-processing a finished run applies to ``method``'s predictions by the models of ``folds`` (an
    ensemble of them, or one): what the first fold's training labels decided (structures in a row, parts), the
    run's closing and chain settings, and with ``--postprocess auto`` the steps most of the folds kept."""
    settings = run.read_config().get("postprocess", {})
    closing = settings.get("closing_mm", PostprocessConfig().closing_mm)
    base = decided_postprocess(PostprocessConfig(closing_mm=closing), run.read_fold_postprocess(folds[0]),
                               settings.get("chain", True))
    decision = combine_decisions([run.method_folder(f, method).read_postprocess() for f in folds])
    return config_for(settings.get("mode", "largest"), base, decision)


def out_of_fold(splits: Sequence[Split]) -> dict[int, list[str]]:
    """Fold -> its training exams that another fold tested: the exams whose raw predictions (by a model that never
    trained on them) may decide the fold's post-processing."""
    tested_in = {case: s.fold for s in splits for case in s.test}
    return {s.fold: [c for c in s.train if tested_in.get(c, s.fold) != s.fold] for s in splits}


def out_of_fold_reader(dataset: Dataset, splits: Sequence[Split], method: str,
                       run: RunFolder) -> Callable[[Sequence[str]], tuple[list[tuple], np.ndarray]]:
    """cases -> (their (out-of-fold raw prediction by ``method``, truth, spacing) triples, their raw scores as
    :func:`choose_postprocess` takes them): each exam read and scored once, then shared by every fold it helps
    decide."""
    tested_in = {case: s.fold for s in splits for case in s.test}
    values = list(dataset.structures.values())
    cache: dict[str, tuple[tuple, np.ndarray]] = {}

    def exams(cases: Sequence[str]) -> tuple[list[tuple], np.ndarray]:
        for case in cases:
            if case not in cache:
                vol = load_volume(dataset, case)
                raw = read_label_volume(run.prediction_path(tested_in[case], method, case, raw=True))[0]
                triple = (raw, vol.label, vol.spacing)
                cache[case] = (triple, exam_scores([triple], values, None)[0])
        return [cache[c][0] for c in cases], np.array([cache[c][1] for c in cases])

    return exams


def decide_auto_postprocess(dataset: Dataset, splits: Sequence[Split], method: str, run: RunFolder,
                            post_cfg: PostprocessConfig, chain: bool = True, progress: Progress = silent) -> None:
    """``--postprocess auto`` once every fold of ``method`` has its raw predictions: per fold, the steps chosen
    on the out-of-fold raw predictions of its training exams (:func:`choose_postprocess`; a fold without any,
    as in a hold-out or ``--folds all``, keeps the ``largest`` steps), recorded, applied to its test exams and
    scored. Folds already decided are skipped."""
    deciding_exams = out_of_fold(splits)
    values = list(dataset.structures.values())
    read_exams = out_of_fold_reader(dataset, splits, method, run)

    for n, split in enumerate(splits):
        folder = run.method_folder(split.fold, method)
        if folder.post_metrics.is_file():
            continue
        progress(ProgressEvent("postprocess", n + 1, len(splits), 0, 1, label=f"{method} fold {split.fold}"))
        base = fold_postprocess(dataset, split, run, post_cfg, chain)
        deciding = deciding_exams[split.fold]
        if deciding:
            exams, raw = read_exams(deciding)
            decision = choose_postprocess(exams, values, base, raw=raw)
        else:
            decision = {"fallback": "largest", "why": "no out-of-fold prediction of a training exam"}
        write_json(folder.postprocess, decision)
        cfg = config_for("auto", base, decision)
        rows = []
        for case in split.test:
            vol = load_volume(dataset, case)
            raw = read_label_volume(run.prediction_path(split.fold, method, case, raw=True))[0]
            post = postprocess(raw, vol.spacing, cfg)
            write_label_volume(post, vol, run.prediction_path(split.fold, method, case))
            for row in evaluate_labels(post, vol.label, vol.spacing, dataset.structures):
                rows.append({"case": case, "fold": split.fold, "method": method, **row, "postprocessed": True,
                             "n_components_raw": count_components(raw == row["label"], 3)})
        write_csv(folder.post_metrics, pd.DataFrame(rows))


def run_crossval(
    dataset: Dataset, splits: Sequence[Split], methods: Sequence[str], preset: Preset, run: RunFolder, *,
    device: torch.device, shard: Shard = Shard(), post_cfg: PostprocessConfig = PostprocessConfig(),
    chain: bool = True, post_mode: str = "auto", progress: Progress = silent,
) -> pd.DataFrame:
    """Run this shard's share of the (fold, method) grid, skipping finished units; returns all merged rows.

    Each fold's post-processing keeps as many parts of a structure as its training labels show and, with
    ``chain``, orders the structures in a row they form (:func:`fold_postprocess`); ``post_mode`` (``auto``,
    ``largest``, ``none``: :mod:`spar_core.postprocessing.decision`) says which of these steps run. With
    ``auto``, the invocation that finds every raw prediction of a method present decides and scores its
    post-processing (:func:`decide_auto_postprocess`)."""
    check_mode(post_mode)
    preset = preset.for_classes(len(dataset.labels))
    units = shard.take(grid(splits, methods))
    by_fold = {s.fold: s for s in splits}
    cached: dict[int, tuple] = {}
    for n, (fold, method) in enumerate(units):
        progress(ProgressEvent("crossval", n + 1, len(units), 0, 1, label=f"fold {fold} {method}"))
        if run.unit_metrics_path(fold, method).is_file():
            continue
        split = by_fold[fold]
        run.write_split(split)
        if fold not in cached:
            cached.clear()  # one fold's slices in memory at a time
            cached[fold] = fold_slices(dataset, split, preset)
        unit_post = (None if post_mode == "auto" else
                     config_for(post_mode, fold_postprocess(dataset, split, run, post_cfg, chain)))
        run_unit(dataset, split, method, preset, run, device=device, post_cfg=unit_post, progress=progress,
                 slices=cached[fold])
    if post_mode == "auto":
        for method in methods:
            if all(run.unit_metrics_path(s.fold, method).is_file() for s in splits):
                decide_auto_postprocess(dataset, splits, method, run, post_cfg, chain, progress)
    return merge_metrics(run)


def is_complete(run: RunFolder, splits: Sequence[Split], methods: Sequence[str], post_mode: str = "largest") -> bool:
    """Every unit of the grid finished (and, with ``auto``, its post-processing decided and scored)."""
    return all(run.unit_metrics_path(f, m).is_file()
               and (post_mode != "auto" or run.method_folder(f, m).post_metrics.is_file())
               for f, m in grid(splits, methods))


def dataset_splits(dataset: Dataset, scheme: str, seed: int, splits_file: str | Path | None = None
                   ) -> tuple[list[Split], Twins]:
    """The folds of ``scheme`` (or of ``splits_file``, nnU-Net's splits_final.json) over the dataset's
    patients, twin exams (identical or near-identical) kept on one side by the schemes; and those twins.

    Raises:
        SparError: a scheme the dataset cannot give, an invalid splits file, or an unreadable file.
    """
    case_ids = [c.case_id for c in dataset.cases]
    if splits_file is not None:
        splits = read_splits_file(splits_file, case_ids)  # checked before the exams are read
        return splits, find_twins(dataset)
    twins = find_twins(dataset)
    return make_splits(case_ids, scheme, seed=seed, groups=twins.groups()), twins


def scheme_label(scheme: str, splits_file: str | Path | None = None) -> str:
    """What run.json records as ``folds``: the scheme, or ``splits:<file name>:<digest of its folds>`` so that
    a run refuses to continue under an edited splits file."""
    if splits_file is None:
        return str(scheme)
    return f"splits:{Path(splits_file).name}:{hashlib.sha256(Path(splits_file).read_bytes()).hexdigest()[:12]}"


def experiment_summary(dataset: Dataset, preset: Preset, folds: str, twins: Twins = Twins()) -> dict:
    """What run.json records of any run: the dataset, its labels, the preset and its settings, the split scheme
    and the twin exams it keeps in one fold."""
    return {"dataset": str(Path(dataset.root).resolve()), "dataset_name": dataset.name, "labels": dataset.labels,
            "slice_axis": dataset.slice_axis, "preset": preset.name,
            "preset_settings": preset.for_classes(len(dataset.labels)).settings(), "folds": folds,
            "orientation": dataset_orientation(dataset), "identical_exams": [list(t) for t in twins.identical],
            "similar_exams": [[a, b] for a, b, _ in twins.similar]}


def run_summary(dataset: Dataset, splits: Sequence[Split], methods: Sequence[str], preset: Preset,
                folds: str, post_cfg: PostprocessConfig, twins: Twins = Twins(),
                chain: bool = True, post_mode: str = "auto") -> dict:
    """What run.json records about a cross-validation: :func:`experiment_summary`, the methods and folds, and
    the post-processing."""
    return {"kind": "crossval", **experiment_summary(dataset, preset, folds, twins), "n_folds": len(splits),
            "methods": list(methods),
            "postprocess": {"mode": post_mode, "largest_component": post_cfg.largest_component,
                            "closing_mm": post_cfg.closing_mm, "connectivity": post_cfg.connectivity, "chain": chain}}

