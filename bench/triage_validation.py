"""How well does each triage score find the bad exams of a run? Reads what ``spar triage RUN`` wrote and prints
every score's Spearman ρ with exam Dice and MSSD over the held-out exams, the combined scores' ρ (the plain mean
of z's, and ``triage_fitted`` whose weights come from the other folds only), each fold's fitted weights, and
where the worst-segmented exams rank.

    python bench/triage_validation.py RUN [--method spar]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from spar_core.layout.run_folder import RunFolder
from spar_core.triage.ranking import exam_means, fitted_combination


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--method", default="spar")
    args = parser.parse_args()
    run = RunFolder(args.run)
    table = pd.read_csv(run.triage_table("triage", args.method), dtype={"case": str})
    spearman = pd.read_csv(run.triage_table("spearman", args.method))
    metrics = pd.read_csv(run.metrics_csv, dtype={"case": str})
    wide = spearman.pivot(index="score", columns="metric", values="rho").reindex(spearman["score"].unique())
    print(f"{run.root.name}, {args.method}: {len(table)} held-out exams, {table['fold'].nunique()} fold(s)")
    print("Spearman rho (useful: negative with Dice, positive with MSSD)")
    print(wide.round(3).to_string())
    fitted = fitted_combination(table.drop(columns=["triage_fitted"], errors="ignore"), metrics)
    for fold, weights in fitted.attrs.get("weights", {}).items():
        used = {k: round(v, 2) for k, v in weights.items() if v > 0}
        print(f"fold {fold} weights (fitted on the other folds): {used}")
    truth = exam_means(metrics[metrics["method"] == args.method]).sort_values("dice")
    ranks = {name: frame.sort_values(name, ascending=False)["case"].tolist()
             for name, frame in (("triage_score", table), ("triage_fitted", fitted)) if frame[name].notna().any()}
    print("worst exams by Dice, and their rank (of", len(table), ") by each combined score:")
    for _, row in truth.head(5).iterrows():
        where = ", ".join(f"{k} #{v.index(row['case']) + 1}" for k, v in ranks.items() if row["case"] in v)
        print(f"  {row['case']}: Dice {100 * row['dice']:.1f} %, MSSD {row['mssd_mm']:.1f} mm — {where}")


if __name__ == "__main__":
    main()
