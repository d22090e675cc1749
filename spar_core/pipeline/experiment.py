"""What a run records of its experiment in run.json, and the folds it runs on: the dataset, its labels, the preset
and its settings, the split scheme (or a splits file) over the dataset's patients, the twin exams kept in one
fold, and for a cross-validation its methods and post-processing settings."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

from spar_core.data.dataset import Dataset
from spar_core.data.duplicates import Twins, find_twins
from spar_core.data.orientation import dataset_orientation
from spar_core.data.patients import declared_patients
from spar_core.data.splits import Split, make_splits, merge_groups, read_splits_file, untested
from spar_core.errors import SparError, note
from spar_core.postprocessing.settings import PostprocessSettings
from spar_core.layout.run_folder import RunRecord
from spar_core.training.presets import Preset


def dataset_splits(dataset: Dataset, scheme: str, seed: int, splits_file: str | Path | None = None
                   ) -> tuple[list[Split], Twins]:
    """The folds of ``scheme`` (or of ``splits_file``, nnU-Net's splits_final.json) over the dataset's
    patients, twin exams (identical or near-identical) kept on one side by the schemes; and those twins.

    Raises:
        SparError: a scheme the dataset cannot give, an invalid splits file, or an unreadable file.
    """
    case_ids = [c.case_id for c in dataset.cases if c.label_path is not None]  # unlabelled: predicted, not trained
    if not case_ids:
        raise SparError(f"{dataset.root}: no case has a label; training needs labelled cases")
    if splits_file is not None:
        splits = read_splits_file(splits_file, case_ids)  # checked before the exams are read
        left = untested(splits, case_ids)
        if left:  # legitimate (a published split may leave exams out), said and recorded, never scored
            note(f"--splits {splits_file}: {len(left)} of {len(case_ids)} labelled exams are tested by no fold and "
                 f"appear in no table: {', '.join(left[:10])}{', ...' if len(left) > 10 else ''}")
        return splits, find_twins(dataset)
    twins = find_twins(dataset)
    groups = merge_groups(twins.groups(), declared_patients(dataset))  # twins and a patient's exams stay together
    return make_splits(case_ids, scheme, seed=seed, groups=groups), twins


def scheme_label(scheme: str, splits_file: str | Path | None = None) -> str:
    """What run.json records as ``folds``: the scheme, or ``splits:<file name>:<digest of its folds>`` so that
    a run refuses to continue under an edited splits file."""
    if splits_file is None:
        return str(scheme)
    return f"splits:{Path(splits_file).name}:{hashlib.sha256(Path(splits_file).read_bytes()).hexdigest()[:12]}"


def experiment_summary(dataset: Dataset, preset: Preset, folds: str, twins: Twins = Twins()) -> RunRecord:
    """What run.json records of any run: the dataset, its labels, the preset and its settings, the split scheme
    and the twin exams it keeps in one fold."""
    return {"dataset": str(Path(dataset.root).resolve()), "dataset_name": dataset.name, "labels": dataset.labels,
            "slice_axis": dataset.slice_axis, "preset": preset.name,
            "preset_settings": preset.for_dataset(dataset).settings(), "folds": folds,
            "orientation": dataset_orientation(dataset), "identical_exams": [list(t) for t in twins.identical],
            "similar_exams": [[a, b] for a, b, _ in twins.similar]}


def run_summary(dataset: Dataset, splits: Sequence[Split], methods: Sequence[str], preset: Preset,
                folds: str, settings: PostprocessSettings = PostprocessSettings(), twins: Twins = Twins()) -> RunRecord:
    """What run.json records about a cross-validation: :func:`experiment_summary`, the methods and folds, and
    the post-processing settings."""
    record: RunRecord = {"kind": "crossval", **experiment_summary(dataset, preset, folds, twins),
                         "n_folds": len(splits), "methods": list(methods), "postprocess": settings.to_json()}
    if folds.startswith("splits:"):  # a splits file may leave exams out: the report names them
        left = untested(splits, [c.case_id for c in dataset.cases if c.label_path is not None])
        if left:
            record["untested_exams"] = left
    return record

