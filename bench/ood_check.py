"""Do the out-of-distribution scores see an exam that lies outside what a model was trained on? Each test exam of
one fold is scored as it is and under the corruptions that reproduce the two ways such exams fail (the field of
view placed elsewhere, another contrast or resolution), against the fold's training exams; prints per condition
the median ``placement_z`` and ``intensity_z`` and the AUC with which each separates the condition's exams from
the clean ones (1 = every corrupted exam scores above every clean one).

    python bench/ood_check.py --dataset DIR [--folds 5] [--fold 0]

The predicted structures are stood in for by the truth (moved with the content where the field of view moves): this
measures what the scores see of an exam, not how well a model segments it (``spar triage`` scores predictions).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from spar_core.data.corruptions import corrupt, corrupt_label, level
from spar_core.data.dataset import load_dataset, load_volume
from spar_core.pipeline.experiment import dataset_splits
from spar_core.triage.ood import intensity_features, ood_scores, placement

CONDITIONS = [("fov_shift", s) for s in (-4, -3, -2, 2, 3, 4)] + [("gamma", -2), ("gamma", 2), ("low_res", 2),
                                                                   ("low_res", 4), ("noise", 2)]


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counting one half."""
    pos, neg = np.asarray(positive, float)[:, None], np.asarray(negative, float)[None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--folds", default="5")
    parser.add_argument("--fold", type=int, default=0)
    args = parser.parse_args()
    dataset = load_dataset(args.dataset)
    split = dataset_splits(dataset, args.folds, seed=0)[0][args.fold]
    train = [load_volume(dataset, case) for case in split.train]
    train_place = np.array([placement(v.label, v.spacing) for v in train])
    train_int = np.array([intensity_features(v.image, v.spacing) for v in train])
    rows = []
    for case in split.test:
        vol = load_volume(dataset, case)
        rows.append({"case": case, "condition": "clean", **ood_scores(vol.image, vol.label, vol.spacing, train_place,
                                                                       train_int)})
        for kind, severity in CONDITIONS:
            where = {"case": case, "affine": vol.affine}
            image = corrupt(vol.image, vol.spacing, vol.slice_axis, kind, severity, **where)
            label = corrupt_label(vol.label, vol.spacing, vol.slice_axis, kind, severity, **where)
            rows.append({"case": case, "condition": f"{kind} {level(kind, severity):g}",
                         **ood_scores(image, label, vol.spacing, train_place, train_int)})
    table = pd.DataFrame(rows)
    clean = table[table["condition"] == "clean"]
    out = []
    for condition, part in table.groupby("condition", sort=False):
        row = {"condition": condition, "exams": len(part)}
        for score in ("placement_z", "intensity_z"):
            row[f"{score} median"] = float(part[score].median())
            row[f"{score} AUC"] = np.nan if condition == "clean" else auc(part[score], clean[score])
        out.append(row)
    print(f"{dataset.root.name}: fold {args.fold} of {args.folds}, {len(split.train)} training exams, "
          f"{len(split.test)} test exams")
    print(pd.DataFrame(out).round(2).to_string(index=False))


if __name__ == "__main__":
    main()
