"""The level model alone, without the segmenter: each fold's level model on its held-out exams, the prediction
replaced by the exam's own truth labelled one level up, right, or one level down (the errors a segmenter makes), in
the exam as it is and with its content moved toward the head or the feet (both fills). Per condition: how many
exams get the right level, how many are flagged "level unknown", and how many are labelled confidently wrong.

    python bench/levels_truth.py RUN [--severities -4,-3,-2,0,2,3,4] [--kinds fov_shift,fov_mirror]

RUN: a run whose folds hold level models (spar crossval --chain-prior level). Writes nothing; a few minutes on
two cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from spar_core.data.corruptions import corrupt, corrupt_label
from spar_core.data.dataset import load_dataset, load_volume
from spar_core.postprocessing.chain import call_row_level, relabel_chain
from spar_core.postprocessing.folds import read_label_facts
from spar_core.postprocessing.level_evidence import row_evidence
from spar_core.layout.run_folder import RunFolder
from spar_core.training.level import LevelModel

OFFSETS = (-1, 0, 1)  # the truth labelled one level up (a body taken for the next), as it is, one level down


def mislabelled(truth: np.ndarray, offset: int, members: tuple[int, ...]) -> np.ndarray:
    """The truth with every member's label moved ``offset`` places along the row (a member pushed past either end
    of the row becomes background)."""
    out = np.zeros_like(truth)
    for i, value in enumerate(members):
        j = i + offset
        if 0 <= j < len(members):
            out[truth == value] = members[j]
    return out


def right_level(fixed: np.ndarray, truth: np.ndarray, members: tuple[int, ...]) -> bool:
    """Every member the ordered labels hold sits on its own truth (most of its voxels); islands the ordering
    leaves alone (under 1 % of the largest member: the component step removes them) are not judged."""
    sizes = {v: int(np.count_nonzero(fixed == v)) for v in members}
    for value, size in sizes.items():
        if size >= 0.01 * max(sizes.values()) and \
                np.count_nonzero(truth[fixed == value] == value) < 0.5 * size:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--severities", default="-4,-3,-2,0,2,3,4")
    parser.add_argument("--kinds", default="fov_shift,fov_mirror")
    args = parser.parse_args(argv)
    run = RunFolder(args.run)
    dataset = load_dataset(run.read_config()["dataset"])
    severities = [int(v) for v in args.severities.split(",")]
    kinds = args.kinds.split(",")
    start = time.perf_counter()
    tally: dict[tuple[str, int], Counter] = {}
    wrong: dict[tuple[str, int], list[str]] = {}
    for fold in run.folds():
        facts = read_label_facts(run, fold)
        if facts is None or facts.chain is None or not run.level_model_path(fold).is_file():
            continue
        chain = facts.chain.with_prior("level")
        model = LevelModel.load(run.level_model_path(fold))
        for case in run.read_split(fold).test:
            vol = load_volume(dataset, case)
            for kind in kinds:
                for severity in severities:
                    if severity == 0 and kind != kinds[0]:
                        continue
                    where = {"case": case, "seed": 0, "affine": vol.affine}
                    image = corrupt(vol.image, vol.spacing, vol.slice_axis, kind, severity, **where)
                    truth = corrupt_label(vol.label, vol.spacing, vol.slice_axis, kind, severity, **where)
                    key = ("clean" if severity == 0 else kind, severity)
                    for offset in OFFSETS:
                        pred = mislabelled(truth, offset, chain.labels)
                        evidence = row_evidence(model, image, vol.spacing, pred, chain)
                        call = call_row_level(pred, chain, evidence, vol.spacing)
                        fixed = relabel_chain(pred, chain, "ordered", vol.spacing, evidence=evidence)
                        ok = right_level(fixed, truth, chain.labels)
                        outcome = "right" if ok and not call.unknown else "right, flagged" if ok else \
                            "wrong, flagged" if call.unknown else "WRONG"
                        tally.setdefault(key, Counter())[outcome] += 1
                        if outcome == "WRONG":
                            wrong.setdefault(key, []).append(f"{case}{offset:+d}")
        print(f"fold {fold} done ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    columns = ["right", "right, flagged", "wrong, flagged", "WRONG"]
    print("| condition | severity | " + " | ".join(columns) + " | confidently wrong |")
    print("|---|---|" + "---|" * (len(columns) + 1))
    for (kind, severity), counts in sorted(tally.items(), key=lambda kv: (kv[0][0] != "clean", kv[0])):
        print(f"| {kind} | {severity} | " + " | ".join(str(counts[c]) for c in columns)
              + f" | {', '.join(wrong.get((kind, severity), [])) or '–'} |")
    print(f"\n{time.perf_counter() - start:.0f} s; each exam three times (labelled one level up, right, one level "
          "down)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
