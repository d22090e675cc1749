"""Where does a run lose its Dice points? The post-processed predictions of one method, against the truth:

- the resolution ceiling: each truth taken to the network's slice grid and back (nearest down, bilinear up on
  the one-hot, argmax), scored like a prediction;
- Dice by position along the slicing axis, in tenths of each structure's own extent there (0: its first slice,
  1: its last), and the share of the structures' voxels each tenth holds;
- the share of wrong voxels within 2 voxels of the truth's foreground boundary, false positives and false
  negatives as a share of the true foreground;
- the mean offset of each structure's centroid (predicted − true, voxels per axis: a systematic shift?);
- the Dice if each predicted structure were cut to its true extent along the slicing axis (an oracle: what the
  ends of the structures would give at most);
- how many exams look resampled from thicker slices: the mean difference between neighbouring slices changes
  only every k-th slice (k = 2..6; interpolation between acquired slices k voxels apart).

    python bench/error_anatomy.py RUN [--method baseline] [--exclude spine_039,...]

Exams in ``--exclude`` (e.g. those with a shifted structure) are left out of every figure.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from spar_core.data.dataset import load_dataset, load_volume
from spar_core.data.nifti import read_label_volume
from spar_core.data.slicing import SquareGeometry, from_slices, from_square, to_slices, to_square
from spar_core.layout.run_folder import RunFolder

BINS = 10


def mean_dice(pred: np.ndarray, truth: np.ndarray, labels: list[int]) -> float:
    return float(np.mean([2 * np.count_nonzero((pred == v) & (truth == v))
                          / max(1, np.count_nonzero(pred == v) + np.count_nonzero(truth == v)) for v in labels]))


def round_trip(truth: np.ndarray, axis: int, size: int, classes: int) -> np.ndarray:
    """``truth`` on the network's size×size slices and back, as a prediction at best could be."""
    slices = torch.from_numpy(np.ascontiguousarray(to_slices(truth.astype(np.int64), axis)))
    geom = SquareGeometry(int(slices.shape[1]), int(slices.shape[2]), size)
    onehot = F.one_hot(to_square(slices, geom, mode="nearest"), classes).permute(0, 3, 1, 2).float()
    return from_slices(from_square(onehot, geom, mode="bilinear").argmax(1).numpy(), axis)


def resampled_period(image: np.ndarray, axis: int, tolerance: float = 0.01) -> int | None:
    """k when the mean |difference| between neighbouring slices along ``axis`` changes only at one phase
    modulo k (k = 2..6; ≥ 90 % of the changes), as after linear interpolation from slices k voxels apart."""
    steps = np.abs(np.diff(image.astype(np.float64), axis=axis)).mean(axis=tuple(a for a in range(3) if a != axis))
    changes = np.flatnonzero(np.abs(np.diff(steps)) >= tolerance * np.maximum(steps[1:], 1e-9))
    for k in range(6, 1, -1):  # the longest period first: every 4th is also every 2nd
        if len(changes) >= 3 and np.bincount(changes % k, minlength=k).max() >= 0.9 * len(changes):
            return k
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--method", default="baseline")
    parser.add_argument("--exclude", default="", help="comma-separated case ids left out")
    args = parser.parse_args()
    run = RunFolder(args.run)
    config = run.read_config()
    dataset = load_dataset(config["dataset"])
    size = int(config["preset_settings"]["train"]["size"])
    labels = [v for v in dataset.labels.values() if v]
    excluded = {c for c in args.exclude.split(",") if c}
    dice, ceiling, near, fp, fn, offsets, trimmed, periods = [], [], [], [], [], [], [], []
    overlap, total = np.zeros(BINS), np.zeros(BINS)
    for fold in run.folds():
        for case in run.read_split(fold).test:
            if case in excluded:
                continue
            vol = load_volume(dataset, case)
            pred, _ = read_label_volume(run.prediction_path(fold, args.method, case))
            truth, axis = vol.label, vol.slice_axis
            periods.append(resampled_period(vol.image, axis))
            dice.append(mean_dice(pred, truth, labels))
            ceiling.append(mean_dice(round_trip(truth, axis, size, max(labels) + 1), truth, labels))
            fg = truth > 0
            boundary = fg ^ ndimage.binary_erosion(fg)
            wrong = (pred != truth) & (fg | (pred > 0))
            near.append(np.count_nonzero(wrong & (ndimage.distance_transform_edt(~boundary) <= 2))
                        / max(1, np.count_nonzero(wrong)))
            fp.append(np.count_nonzero((pred > 0) & ~fg) / np.count_nonzero(fg))
            fn.append(np.count_nonzero((pred == 0) & fg) / np.count_nonzero(fg))
            cut = pred.copy()
            # the slicing axis last: views, so that a structure's slices are [..., k]
            t_all, p_all, c_all = (np.moveaxis(a, axis, -1) for a in (truth, pred, cut))
            for v in labels:
                t, p = t_all == v, p_all == v
                if not t.any() or not p.any():
                    continue
                offsets.append(np.argwhere(np.moveaxis(p, -1, axis)).mean(0)
                               - np.argwhere(np.moveaxis(t, -1, axis)).mean(0))
                along = np.flatnonzero(t.any(axis=(0, 1)))
                first, last = along[0], along[-1]
                outside = p.copy()
                outside[..., first:last + 1] = False
                c_all[outside] = 0
                span = slice(first, last + 1)
                bins = np.minimum(BINS - 1, (BINS * np.arange(last - first + 1)) // (last - first + 1))
                np.add.at(overlap, bins, 2 * (t[..., span] & p[..., span]).sum(axis=(0, 1)))
                np.add.at(total, bins, t[..., span].sum(axis=(0, 1)) + p[..., span].sum(axis=(0, 1)))
            trimmed.append(mean_dice(cut, truth, labels))
    print(f"{args.method}: {len(dice)} exams{' (without ' + ', '.join(sorted(excluded)) + ')' if excluded else ''}")
    print(f"exam-mean Dice {100 * np.mean(dice):.1f} %; resolution ceiling at {size}×{size}: "
          f"{100 * np.mean(ceiling):.1f} %")
    print(f"wrong voxels within 2 voxels of the true boundary: {100 * np.mean(near):.0f} %; "
          f"false positives {100 * np.mean(fp):.1f} %, false negatives {100 * np.mean(fn):.1f} % of the truth")
    off = np.array(offsets)
    print("centroid offset (voxels, per axis): mean " + " ".join(f"{m:+.2f}" for m in off.mean(0))
          + ", sd " + " ".join(f"{s:.2f}" for s in off.std(0)))
    print(f"cut to the true extent along the slicing axis: {100 * np.mean(trimmed):.1f} %")
    found = [k for k in periods if k]
    print(f"resampled from thicker slices: {len(found)} of {len(periods)} exams"
          + (f" (every {', '.join(str(k) for k in sorted(set(found)))} slices)" if found else ""))
    print(f"{'tenth of the extent':<22}" + "".join(f"{b:>6}" for b in range(BINS)))
    print(f"{'Dice %':<22}" + "".join(f"{100 * o / max(1, t):>6.1f}" for o, t in zip(overlap, total)))
    print(f"{'share of voxels %':<22}" + "".join(f"{100 * t / total.sum():>6.1f}" for t in total))


if __name__ == "__main__":
    main()
