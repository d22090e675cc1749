"""A run's level models (``--chain-prior level``) and their evidence on its predictions: each read where the run
folder holds it, made (and recorded) otherwise, so that a run resumes and a run whose raw predictions exist can be
ordered anew; the evidence of several folds' models for an ensemble's prediction (``spar predict``); and the
per-exam columns a metrics row gains from the level call."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

import numpy as np
import torch

from spar_core.data.dataset import Dataset
from spar_core.data.nifti import Volume
from spar_core.errors import SparError, note
from spar_core.paths import read_json_object, write_json
from spar_core.postprocessing.chain import call_row_level
from spar_core.postprocessing.decision import LabelFacts
from spar_core.postprocessing.folds import fold_label_facts, read_label_facts
from spar_core.postprocessing.level_evidence import row_evidence
from spar_core.postprocessing.levels import LEVEL_CALL_COLUMNS, LevelCall, LevelEvidence, combine_evidence
from spar_core.postprocessing.settings import PostprocessMode, PostprocessSettings, run_settings
from spar_core.progress import Progress, silent
from spar_core.layout.run_folder import RunFolder
from spar_core.training.fold import fold_level_model
from spar_core.training.level import LevelModel
from spar_core.training.presets import Preset


class RunLevels:
    """The level models of a run's folds (``--chain-prior level``) and their evidence on its raw predictions, each
    read where the run folder holds it and made (then recorded) otherwise: a fold's model is trained the first
    time one of its predictions needs it, so a run resumes, and a run whose raw predictions exist can be ordered
    anew. Inactive (every answer None) unless the settings order rows by the level model."""

    def __init__(self, run: RunFolder, dataset: Dataset | None, settings: PostprocessSettings, preset: Preset | None,
                 *, device: torch.device | str = "cpu", progress: Progress = silent) -> None:
        self.run, self.dataset, self.settings, self.preset = run, dataset, settings, preset
        self.device, self.progress = torch.device(device), progress
        self.models: dict[int, LevelModel] = {}
        self.fold_facts: dict[int, LabelFacts | None] = {}

    def facts(self, fold: int) -> LabelFacts | None:
        """The fold's label facts: found (and recorded) where the dataset is at hand, else as the run recorded them;
        read once."""
        if fold not in self.fold_facts:
            self.fold_facts[fold] = (read_label_facts(self.run, fold) if self.dataset is None else
                                     fold_label_facts(self.dataset, self.run.read_split(fold), self.run,
                                                      self.settings.connectivity))
        return self.fold_facts[fold]

    def active(self, fold: int) -> bool:
        """Whether the fold's row is ordered by its level model."""
        if not (self.settings.chain and self.settings.mode != PostprocessMode.RAW and self.settings.chain_prior == "level"):
            return False
        facts = self.facts(fold)
        return facts is not None and facts.chain is not None

    def model(self, fold: int) -> LevelModel:
        """The fold's level model: read, or (with a dataset and a preset) trained where missing or unreadable."""
        if fold not in self.models:
            path = self.run.level_model_path(fold)
            if self.dataset is None or self.preset is None:  # read only: a missing or broken file is one error
                if not path.is_file():
                    raise SparError(f"{path}: missing; the run orders its rows by a level model: finish it with "
                                    "spar crossval")
                self.models[fold] = LevelModel.load(path, self.device)
            else:
                chain = self.facts(fold).chain  # type: ignore[union-attr]
                self.models[fold] = fold_level_model(self.run, self.dataset, self.run.read_split(fold),
                                                     (chain.labels, chain.axis, chain.ascending),  # type: ignore
                                                     self.preset, device=self.device, progress=self.progress)
        return self.models[fold]

    def evidence(self, fold: int, raw: np.ndarray, vol: Volume,
                 record: tuple[str, str] | None = None) -> tuple[LevelEvidence, LevelCall] | None:
        """The evidence of fold ``fold``'s level model on ``raw`` (a prediction of ``vol``) and its call; with
        ``record`` (method, case), read from (or written to) that method's ``levels/<case>.json`` (evidence of
        another prediction, or unreadable, is made again, said so). None when inactive."""
        if not self.active(fold):
            return None
        chain = self.facts(fold).chain.with_prior("level")  # type: ignore[union-attr]
        path = None if record is None else self.run.method_folder(fold, record[0]).level_evidence(record[1])
        if path is not None and path.is_file():
            try:
                data = read_json_object(path, "the level model's evidence on a prediction")
                evidence = LevelEvidence.from_json(data.get("evidence"), str(path))
                call = call_row_level(raw, chain, evidence, vol.spacing)  # refuses evidence of another prediction
                if data.get("call") != call.to_json():  # the call of this version
                    write_json(path, {"evidence": evidence.to_json(), "call": call.to_json()})
                return evidence, call
            except SparError as err:
                note(f"{err}; made again")
        evidence = row_evidence(self.model(fold), vol.image, vol.spacing, raw, chain)
        call = call_row_level(raw, chain, evidence, vol.spacing)
        if path is not None:
            write_json(path, {"evidence": evidence.to_json(), "call": call.to_json()})
        return evidence, call

    def recorded(self, method: str) -> Callable[[int, str, np.ndarray, Volume], LevelEvidence | None]:
        """(fold, case, raw prediction, exam) -> the recorded evidence on ``method``'s prediction, as
        :func:`~spar_core.postprocessing.folds.out_of_fold_reader` takes it."""
        def evidence(fold: int, case: str, raw: np.ndarray, vol: Volume) -> LevelEvidence | None:
            found = self.evidence(fold, raw, vol, (method, case))
            return None if found is None else found[0]
        return evidence


def ensemble_levels(run: RunFolder, folds: Sequence[int], mode: str | None = None,
                    device: torch.device | str = "cpu") -> Callable[[np.ndarray, Volume], tuple[LevelEvidence, LevelCall]] | None:
    """(prediction, exam) -> the evidence of the level models of ``folds`` combined (the mean probability) and its
    call, for an ensemble of those folds' segmenters; None where the run does not order a row by its level model
    (or ``mode`` is ``none``)."""
    settings = run_settings(run.read_config(), str(run.config_path))
    if mode is not None:
        settings = replace(settings, mode=mode)
    levels = RunLevels(run, None, settings, None, device=device)
    if not folds or not all(levels.active(f) for f in folds):
        return None
    chain = levels.facts(folds[0]).chain.with_prior("level")  # type: ignore[union-attr]
    for f in folds:  # read before any exam: a broken model is one error, not one per exam
        levels.model(f)

    def call(labels: np.ndarray, volume: Volume) -> tuple[LevelEvidence, LevelCall]:
        evidence = combine_evidence([levels.evidence(f, labels, volume)[0] for f in folds])  # type: ignore
        return evidence, call_row_level(labels, chain, evidence, volume.spacing)

    return call


def level_columns(found: tuple[LevelEvidence, LevelCall] | None) -> dict[str, object]:
    """The per-exam columns a metrics row gains from the level call (none without a level model)."""
    if found is None:
        return {}
    call = found[1]
    return dict(zip(LEVEL_CALL_COLUMNS, (call.anchor, round(call.margin, 3), call.unknown)))
