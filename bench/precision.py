"""Does bf16 autocast train as well as fp32? Final held-out Dice of the same split in both precisions, next to
the spread that another seed gives anyway, and the wall time of each run.

    python bench/precision.py --data DIR --out RUNS [--methods baseline] [--seeds 0,1,2] [--preset cpu]

The demo's split of the ankle phantoms (written to DIR if absent); one run folder per (precision, seed) under
RUNS, resumable. bf16 agrees when its difference to fp32 on the same seed is within the seed-to-seed spread.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd

from spar_core.scoring.identity import is_true
from spar_core.data.dataset import load_dataset
from spar_core.methods import parse_methods
from spar_core.pipeline.crossval import run_crossval
from spar_core.pipeline.demo import demo_split, ensure_phantoms
from spar_core.layout.run_folder import RunFolder
from spar_core.training.device import pick_device
from spar_core.training.precision import resolve
from spar_core.training.presets import get_preset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--methods", default="baseline")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--preset", default="cpu")
    args = parser.parse_args()
    device = pick_device()
    ankle = ensure_phantoms(args.data)["ankle"]
    dataset = load_dataset(ankle)
    methods = parse_methods(args.methods)
    rows = []
    for precision in ("fp32", "bf16"):
        print(f"{precision}: runs as {resolve(precision, device)} on {device}")
        for seed in (int(s) for s in args.seeds.split(",")):
            base = get_preset(args.preset).with_precision(precision)
            preset = dataclasses.replace(base, train=dataclasses.replace(base.train, seed=seed))
            splits = demo_split(ankle, [c.case_id for c in dataset.cases], seed=0)  # one split for every run
            start = time.perf_counter()
            frame = run_crossval(dataset, splits, methods, preset, RunFolder(args.out / f"{precision}_seed{seed}"),
                                 device=device)
            seconds = time.perf_counter() - start
            post = frame[frame["postprocessed"].map(is_true)]
            for method, group in post.groupby("method"):
                per_bone = group.groupby("structure")["dice"].mean()
                rows.append({"precision": precision, "seed": seed, "method": method,
                             "dice_pct": 100 * group["dice"].mean(), "seconds": round(seconds),
                             **{f"{b}_pct": 100 * v for b, v in per_bone.items()}})
    table = pd.DataFrame(rows)
    print(table.round(1).to_string(index=False))
    for method, group in table.groupby("method"):
        wide = group.pivot(index="seed", columns="precision", values="dice_pct")
        spread = float(np.std(wide["fp32"], ddof=1)) if len(wide) > 1 else float("nan")
        diff = (wide["bf16"] - wide["fp32"]).abs()
        print(f"{method}: |bf16 − fp32| per seed {', '.join(f'{d:.2f}' for d in diff)} points; seed-to-seed "
              f"std (fp32) {spread:.2f} points; mean Dice fp32 {wide['fp32'].mean():.2f}, bf16 "
              f"{wide['bf16'].mean():.2f}")


if __name__ == "__main__":
    main()
