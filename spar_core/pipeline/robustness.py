"""The robustness study: a finished run's models on their held-out exams corrupted at graded severities
(:mod:`spar_core.data.corruptions`), each method post-processed as the run decided and scored against the
exam's own truth.

``RUN/studies/robustness/`` holds one ``folds/<k>/<corruption>_<severity>.csv`` per finished unit (``clean_0``
for the exams as they are, shared by every corruption's curve; a unit is skipped when
the study is started again: resumable; ``Shard`` splits the units over a job array), ``metrics.csv`` (all rows),
``table.csv`` (:func:`~spar_core.evaluation.study_table.study_table` per corruption and severity) and
``identity.csv`` (per corruption, severity and method: the exams with a shifted structure,
:func:`~spar_core.scoring.identity.identity_table`) and ``study.json``. Every method sees the very same
corrupted image; a two-sided corruption runs at both signs of each severity asked for.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

import pandas as pd
import torch

from spar_core.data.corruptions import (CORRUPTIONS, SEVERITIES, content_extent, corrupt, corrupt_label, level,
                                       severities_of)
from spar_core.data.level_crops import anchor_in_view, ends_in_view
from spar_core.data.dataset import load_dataset, load_volume
from spar_core.data.nifti import Volume
from spar_core.errors import SparError
from spar_core.inference.predict import predict_volume
from spar_core.scoring.identity import identity_table
from spar_core.evaluation.rows import metric_rows
from spar_core.postprocessing.steps import postprocess
from spar_core.evaluation.study_table import study_table
from spar_core.paths import write_csv, write_json
from spar_core.pipeline.shard import Shard
from spar_core.postprocessing.decision import LabelFacts
from spar_core.postprocessing.folds import run_postprocess_config
from spar_core.postprocessing.levels import LEVEL_CALL_COLUMNS
from spar_core.postprocessing.run_levels import RunLevels, level_columns
from spar_core.postprocessing.settings import run_settings
from spar_core.training.presets import recorded_preset
from spar_core.progress import Progress, ProgressEvent, silent
from spar_core.layout.run_folder import RunFolder
from spar_core.layout.study_folder import StudyFolder
from spar_core.training.segmenter import load_unet


CLEAN = "clean"


def run_robustness(run: RunFolder | str | Path, corruptions: Sequence[str] = CORRUPTIONS,
                   severities: Sequence[int] = SEVERITIES, methods: Sequence[str] | None = None, *,
                   seed: int = 0, device: torch.device | str = "cpu", precision: str = "auto",
                   shard: Shard = Shard(), progress: Progress = silent) -> pd.DataFrame:
    """Score this shard's (fold, corruption, severity) units not yet done, then merge and tabulate everything.

    Returns:
        The study table (empty until every unit exists).
    Raises:
        SparError: not a finished run (no held-out fold, unreadable dataset), a method it did not train,
            an unknown corruption or severity.
    """
    run = run if isinstance(run, RunFolder) else RunFolder(run)
    for kind in corruptions:
        for severity in severities_of(kind, severities):
            level(kind, severity)  # an unknown kind or severity fails before any work
    if not corruptions or not severities:
        raise SparError("--corruptions / --severities: expected at least one of each")
    config = run.read_config()
    dataset = load_dataset(config.get("dataset", ""))
    splits = [s for s in (run.read_split(f) for f in run.folds()) if s.test]
    if not splits:
        raise SparError(f"{run.root}: no fold with held-out exams: a robustness study needs a cross-validation")
    trained = sorted(set.intersection(*(set(run.methods(s.fold)) for s in splits)))
    methods = list(methods) if methods is not None else [m for m in config.get("methods", trained) if m in trained]
    missing = [m for m in methods if m not in trained]
    if missing or not methods:
        raise SparError(f"--methods: {missing or methods} not trained in every fold of {run.root} "
                        f"(trained: {', '.join(trained) or 'none'})")
    device = torch.device(device)
    folder = StudyFolder.robustness(run)
    levels = RunLevels(run, dataset, run_settings(config), recorded_preset(config.get("preset")), device=device)
    # severity 0 is the clean exam, whatever the kind: scored once per fold ("clean"), shown in every kind's curve
    conditions = ([(CLEAN, 0)] if 0 in severities else []) + [(k, v) for k in corruptions for v in severities_of(k, severities) if v]
    units = [(s, kind, sev) for s in splits for kind, sev in conditions]
    mine = shard.take(units)  # type: ignore[arg-type]
    loaded: dict[int, dict] = {}
    for n, (split, kind, severity) in enumerate(mine):
        path = folder.unit(split.fold, kind, severity)
        if path.is_file():
            continue
        progress(ProgressEvent("robustness", n + 1, len(mine), 0, len(split.test),
                               label=f"fold {split.fold} {kind} {severity}"))
        if split.fold not in loaded:
            loaded.clear()
            loaded[split.fold] = {m: (load_unet(run.model_path(split.fold, m), device),
                                      run_postprocess_config(run, [split.fold], m)) for m in methods}
        rows = []
        facts = levels.facts(split.fold)
        for i, case in enumerate(split.test):
            vol = load_volume(dataset, case)
            corrupted, ends = corrupted_exam(vol, kind, severity, seed, facts)
            for method, ((unet, meta), cfg) in loaded[split.fold].items():
                raw = predict_volume(unet, corrupted, meta.size, device=device, precision=precision)
                found = levels.evidence(split.fold, raw, corrupted)
                rows += metric_rows(postprocess(raw, vol.spacing, cfg, None if found is None else found[0]),
                                    corrupted.label, vol.spacing, dataset.structures,
                                    {"case": case, "fold": split.fold, "method": method, "corruption": kind,
                                     "severity": severity, "level": None if kind == CLEAN else level(kind, severity),
                                     **ends, **level_columns(found)})
            progress(ProgressEvent("robustness", n + 1, len(mine), i + 1, len(split.test),
                                   label=f"fold {split.fold} {kind} {severity}"))
        write_csv(path, pd.DataFrame(rows))
    write_json(folder.study_json, {"kind": "robustness", "run": str(run.root), "methods": methods,
                                               "corruptions": list(corruptions), "severities": list(severities),
                                               "seed": seed, "folds": [s.fold for s in splits]})
    done = [folder.unit(s.fold, k, v) for s, k, v in units]
    if not all(p.is_file() for p in done):
        return pd.DataFrame()
    metrics = pd.concat([pd.read_csv(p, dtype={"case": str}) for p in done], ignore_index=True)
    write_csv(folder.metrics_csv, metrics)
    # the clean exams tested once (one family member each), then shown at severity 0 of every corruption's curve
    table = study_table(metrics, ["corruption", "severity", "level"])
    clean = table[table["corruption"] == CLEAN]
    table = pd.concat([table[table["corruption"] != CLEAN], *(clean.assign(corruption=k) for k in corruptions)],
                      ignore_index=True)
    write_csv(folder.table_csv, table)
    identity = [identity_table(part).assign(corruption=kind, severity=severity)
                for (kind, severity), part in metrics.groupby(["corruption", "severity"], sort=True)]
    identity = pd.concat(identity, ignore_index=True)
    extra = [c for c in identity.columns if c not in IDENTITY_COLUMNS and c not in ("shifted_pct", "corruption",
                                                                                      "severity", "method")]
    write_csv(folder.identity_csv, identity[["corruption", "severity", "method", *IDENTITY_COLUMNS[:-1], *extra,
                                             IDENTITY_COLUMNS[-1]]])
    per_exam = [c for c in LEVEL_COLUMNS if c in metrics]
    if per_exam:  # one row per condition, method and exam: its level call and the ends in view
        keys = ["corruption", "severity", "method", "case"]
        shifted = metrics.assign(shifted=metrics["shifted_to"].astype(object).fillna("").astype(str).str.strip() != "") \
            .groupby(keys, sort=True)["shifted"].sum().rename("shifted_structures")
        levels_table = metrics.drop_duplicates(keys).set_index(keys)[per_exam].join(shifted).reset_index()
        write_csv(folder.levels_csv, levels_table)
    return table


def corrupted_exam(vol: Volume, kind: str, severity: int, seed: int, facts: LabelFacts | None
                   ) -> tuple[Volume, dict[str, object]]:
    """The exam (image and truth) as the study sees it under ``kind`` at ``severity`` (``clean``: as it is), and
    where the row's ends stay in view of the moved truth (``before_in_view_mm``, ``after_in_view_mm``,
    ``anchor_in_view``; {} where the labels form no row). Seeded from (seed, case, kind, severity): every model
    scored on a condition sees the very same exam."""
    where = {"case": vol.case_id, "seed": seed, "affine": vol.affine}
    if kind == CLEAN:
        corrupted = vol
    else:
        corrupted = replace(vol, image=corrupt(vol.image, vol.spacing, vol.slice_axis, kind, severity, **where),
                            label=corrupt_label(vol.label, vol.spacing, vol.slice_axis, kind, severity, **where))
    if facts is None or facts.chain is None:
        return corrupted, {}
    extent = None if kind == CLEAN else content_extent(vol.image.shape, vol.spacing, vol.slice_axis, kind, severity,
                                                       **where)
    before, after = ends_in_view(corrupted.label, facts.chain.labels, facts.chain.axis, facts.chain.ascending, extent,
                                 vol.spacing)
    return corrupted, {"before_in_view_mm": round(before, 1), "after_in_view_mm": round(after, 1),
                       "anchor_in_view": anchor_in_view(before, after)}


IDENTITY_COLUMNS = ["exams", "exams_with_shift", "shifted", "pairs", "shifted_exams"]
LEVEL_COLUMNS = ["anchor_in_view", "before_in_view_mm", "after_in_view_mm", *LEVEL_CALL_COLUMNS]

