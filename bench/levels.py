"""What the level model does on a run: its held-out accuracy per class and training time per fold, the clean
exams (exam-mean Dice, exams with a shifted structure, exams flagged "level unknown"), and under the field-of-view
shift study (both fills) the exams a level off split by whether the structure beyond the row's end stayed in view
and whether they were flagged.

    python bench/levels.py RUN [--markdown]

Reads RUN/folds/<k>/level_model.json, RUN/metrics.csv and, where it exists, RUN/studies/robustness/levels.csv;
writes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from spar_core.scoring.identity import is_true
from spar_core.layout.run_folder import RunFolder
from spar_core.layout.study_folder import StudyFolder


def level_models(run: RunFolder) -> pd.DataFrame:
    rows = []
    for fold in run.folds():
        path = run.level_report_path(fold)
        if path.is_file():
            report = json.loads(path.read_text())
            rows.append({"fold": fold, "seconds": report.get("seconds"), "held_out_crops": report.get("held_out_crops"),
                         "accuracy": report.get("held_out_accuracy"),
                         **{f"acc_{k}": v for k, v in (report.get("held_out_accuracy_by_class") or {}).items()}})
    return pd.DataFrame(rows)


def clean(run: RunFolder) -> pd.DataFrame:
    metrics = pd.read_csv(run.metrics_csv, dtype={"case": str})
    post = metrics[metrics["postprocessed"].map(is_true)]
    shifted = post["shifted_to"].astype(object).fillna("").astype(str).str.strip() != ""
    rows = []
    for method, group in post.assign(shifted=shifted).groupby("method", sort=False):
        if "level_unknown" not in group:  # a run ordered without the level model: nothing flagged
            group = group.assign(level_unknown=False)
        per_exam = group.groupby("case").agg(dice=("dice", "mean"), shifted=("shifted", "sum"),
                                             unknown=("level_unknown", "first"))
        flagged = per_exam["unknown"].map(is_true)
        off = per_exam["shifted"] > 0
        rows.append({"method": method, "exam_mean_dice": round(100 * per_exam["dice"].mean(), 2),
                     "exams": len(per_exam), "exams_shifted": int(off.sum()),
                     "shifted_unflagged": int((off & ~flagged).sum()), "flagged": int(flagged.sum()),
                     "shifted_cases": ", ".join(per_exam.index[off])})
    return pd.DataFrame(rows)


def shifts(run: RunFolder) -> pd.DataFrame:
    path = StudyFolder.robustness(run).levels_csv
    if not path.is_file():
        return pd.DataFrame()
    table = pd.read_csv(path, dtype={"case": str})
    table = table[table["corruption"].isin(["clean", "fov_shift", "fov_mirror"])]
    rows = []
    for (kind, severity, method), g in table.groupby(["corruption", "severity", "method"], sort=True):
        off = g["shifted_structures"] > 0
        flagged = g["level_unknown"].map(is_true) if "level_unknown" in g else pd.Series(False, index=g.index)
        last = g["anchor_in_view"].isin(["last", "both"])
        first = g["anchor_in_view"].isin(["first", "both"])
        rows.append({"fill": kind, "severity": severity, "method": method, "exams": len(g),
                     "S1_in_view": int(last.sum()), "T12_in_view": int(first.sum()), "off": int(off.sum()),
                     "off_S1_in_view": int((off & last).sum()), "off_unflagged": int((off & ~flagged).sum()),
                     "flagged": int(flagged.sum()), "unflagged_cases": ", ".join(g.loc[off & ~flagged, "case"])})
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--markdown", action="store_true", help="tables as Markdown (for a results README)")
    args = parser.parse_args(argv)
    run = RunFolder(args.run)
    show = markdown if args.markdown else (lambda f: f.to_string(index=False))
    for title, frame in (("level models", level_models(run)), ("clean exams", clean(run)),
                         ("field-of-view shift", shifts(run))):
        print(f"\n{title}\n")
        print(show(frame) if not frame.empty else "(none)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
