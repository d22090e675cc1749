"""Seconds per exam of ``spar predict`` on one exam, for one fold model, the run's fold ensemble, and the
ensemble with test-time flips, with the peak resident memory of each; ratios to the single model.

    python bench/predict.py RUN CASE_IMAGE.nii.gz [--method spar] [--repeats 3]

Target: a 5-fold ensemble of a spine exam (224 × 224 × 77) in ≤ 10 s on two CPU cores. Timings are the median
of ``--repeats`` after one warm-up; the models are loaded once (as ``spar predict`` does for a folder).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from pathlib import Path

import torch

from spar_core.data.nifti import load_image
from spar_core.inference.ensemble import predict_ensemble
from spar_core.layout.run_folder import RunFolder
from spar_core.training.segmenter import load_unet


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("image", type=Path)
    parser.add_argument("--method", default="spar")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    run = RunFolder(args.run)
    folds = [f for f in run.folds() if run.model_path(f, args.method).is_file()]
    models = [load_unet(run.model_path(f, args.method)) for f in folds]
    unets, size = [u for u, _ in models], models[0][1]["size"]
    volume = load_image(args.image, run.read_config().get("slice_axis"))
    print(f"exam {args.image.name} {volume.image.shape}, {args.method}, {len(folds)} folds, size {size}, "
          f"{torch.get_num_threads()} torch threads")
    setups = {"1 model": (unets[:1], False), f"{len(unets)}-fold ensemble": (unets, False),
              f"{len(unets)}-fold ensemble + TTA": (unets, True)}
    reference = None
    for name, (members, tta) in setups.items():
        predict_ensemble(members, volume, size, tta=tta)  # warm-up
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            predict_ensemble(members, volume, size, tta=tta, keep_probabilities=True)
            times.append(time.perf_counter() - t0)
        seconds = statistics.median(times)
        reference = reference or seconds
        print(f"{name:<28} {seconds:6.2f} s  ({seconds / reference:4.1f}× one model)  peak RSS {peak_mb():7.0f} MB")


if __name__ == "__main__":
    main()
