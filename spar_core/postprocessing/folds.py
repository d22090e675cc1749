"""The post-processing of a run's folds: what each fold's training labels say, what its out-of-fold predictions
decide, both recorded in the run folder and read back as typed records, and the configuration a finished run
applies to a method's predictions.

The decision for a fold is made on the raw predictions of its training exams by the fold in which each was a
test exam (out of fold), so no exam a fold reports on takes part in its own choice. A fold without such exams
(a hold-out, ``--folds all``) cannot decide and applies the ``largest`` steps.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

import numpy as np

from spar_core.data.dataset import Dataset, load_volume
from spar_core.data.nifti import Volume, read_label_volume
from spar_core.data.splits import Split
from spar_core.errors import SparError, note
from spar_core.paths import read_json_object, write_json
from spar_core.postprocessing.choice import Exam, choose_postprocess, exam_scores
from spar_core.postprocessing.decision import Decision, LabelFacts, combine_decisions, postprocess_config
from spar_core.postprocessing.levels import LevelEvidence
from spar_core.postprocessing.settings import PostprocessSettings, run_settings
from spar_core.postprocessing.settings import DEFAULT_CONNECTIVITY
from spar_core.postprocessing.steps import PostprocessConfig
from spar_core.layout.run_folder import RunFolder

NO_DECIDING_EXAMS = "no out-of-fold prediction of a training exam"


def read_label_facts(run: RunFolder, fold: int) -> LabelFacts | None:
    """The fold's label facts as recorded, None when not yet found."""
    path = run.existing_label_facts(fold)
    if path is None:
        return None
    return LabelFacts.from_json(read_json_object(path, "the fold's label facts (chain, parts)"), str(path))


def read_decision(run: RunFolder, fold: int, method: str) -> Decision | None:
    """``method``'s decision on ``fold`` as recorded; None when not yet made or when the fold could not decide."""
    path = run.method_folder(fold, method).existing_decision()
    if path is None:
        return None
    return Decision.from_json(read_json_object(path, "a post-processing decision"), str(path))


def fold_label_facts(dataset: Dataset, split: Split, run: RunFolder,
                     connectivity: int = DEFAULT_CONNECTIVITY) -> LabelFacts:
    """What the fold's training labels say (the structures in a row they form, the labels of several parts):
    found once, recorded in the run folder, read back after (an unreadable record is found again, said so)."""
    try:
        facts = read_label_facts(run, split.fold)
    except SparError as err:
        note(f"{err}; finding the fold's label facts again")
        facts = None
    if facts is None:
        truths, spacings = [], []
        for case in split.train:  # the labels only: the images are not kept
            volume = load_volume(dataset, case)
            truths.append(volume.label)
            spacings.append(volume.spacing)
        facts = LabelFacts.of(truths, dataset.labels.values(), spacings, connectivity)
        write_json(run.label_facts_path(split.fold), facts.to_json())
    return facts


def run_postprocess_config(run: RunFolder, folds: Sequence[int], method: str, mode: str | None = None) -> PostprocessConfig:
    """The post-processing a finished run applies to ``method``'s predictions by the models of ``folds`` (an
    ensemble of them, or one): the run's settings (its mode, or ``mode``), the first fold's label facts, and with
    ``auto`` the steps most of the folds kept."""
    settings = run_settings(run.read_config(), str(run.config_path))
    if mode is not None:
        settings = replace(settings, mode=mode)
    decision = combine_decisions([read_decision(run, f, method) for f in folds])
    return postprocess_config(settings, read_label_facts(run, folds[0]), decision)


def out_of_fold(splits: Sequence[Split]) -> dict[int, list[str]]:
    """Fold -> its training exams that another fold tested: the exams whose raw predictions (by a model that never
    trained on them) may decide the fold's post-processing."""
    tested_in = {case: s.fold for s in splits for case in s.test}
    return {s.fold: [c for c in s.train if tested_in.get(c, s.fold) != s.fold] for s in splits}


def out_of_fold_reader(dataset: Dataset, splits: Sequence[Split], method: str, run: RunFolder,
                       evidence: Callable[[int, str, np.ndarray, Volume], LevelEvidence | None] | None = None
                       ) -> Callable[[Sequence[str]], tuple[list[Exam], np.ndarray]]:
    """cases -> (their (out-of-fold raw prediction by ``method``, truth, spacing, level evidence) as
    :data:`~spar_core.postprocessing.choice.Exam`, their raw scores as :func:`choose_postprocess` takes them): each
    exam read and scored once, then shared by every fold it helps decide. ``evidence`` (fold, case, raw prediction,
    exam) gives the level evidence: that of the level model of the fold that tested the exam (which never saw it)."""
    tested_in = {case: s.fold for s in splits for case in s.test}
    values = list(dataset.structures.values())
    cache: dict[str, tuple[Exam, np.ndarray]] = {}

    def exams(cases: Sequence[str]) -> tuple[list[Exam], np.ndarray]:
        for case in cases:
            if case not in cache:
                vol = load_volume(dataset, case)
                fold = tested_in[case]
                raw = read_label_volume(run.prediction_path(fold, method, case, raw=True))[0]
                exam = (raw, vol.label, vol.spacing, None if evidence is None else evidence(fold, case, raw, vol))
                cache[case] = (exam, exam_scores([exam], values, None)[0])
        return [cache[c][0] for c in cases], np.array([cache[c][1] for c in cases])

    return exams


def decide_fold(dataset: Dataset, split: Split, method: str, run: RunFolder, settings: PostprocessSettings,
                facts: LabelFacts, deciding: Sequence[str],
                read_exams: Callable[[Sequence[str]], tuple[list[Exam], np.ndarray]]) -> Decision | None:
    """``method``'s decision on one fold, from the out-of-fold raw predictions of its ``deciding`` exams, recorded
    in the run folder (a fold without any records why it could not decide, and returns None)."""
    path = run.method_folder(split.fold, method).decision
    if not deciding:
        write_json(path, Decision.undecided_json(NO_DECIDING_EXAMS))
        return None
    exams, raw = read_exams(deciding)
    decision = choose_postprocess(exams, list(dataset.structures.values()), settings, facts, raw=raw)
    write_json(path, decision.to_json())
    return decision
