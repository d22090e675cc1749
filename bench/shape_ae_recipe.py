"""How short can the shape auto-encoder's training be? Reconstruction Dice of held-out true masks per variant
of the auto-encoder's epochs, rate and schedule, on the inner split of bench/recipe.py, with the wall time.

    python bench/shape_ae_recipe.py --dataset DIR [--variants ...] [--preset cpu]

A prior that cannot reconstruct a structure has nothing to say about it (the shape and SPAR methods regularize
through F), so the reconstruction of masks the auto-encoder never saw is its measure of quality.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from recipe import inner_split

from spar_core.data.dataset import load_dataset
from spar_core.data.slice_set import build_slice_set
from spar_core.training.device import pick_device
from spar_core.training.presets import get_preset
from spar_core.training.shape_ae import train_shape_ae

# name -> TrainConfig overrides of the auto-encoder's settings
VARIANTS: dict[str, dict] = {
    "e30_1e-3": {"ae_epochs": 30, "ae_lr": 1e-3, "lr_schedule": "constant"},
    "e10_3e-3_poly": {"ae_epochs": 10, "ae_lr": 3e-3, "lr_schedule": "poly"},
    "e10_1e-2_poly": {"ae_epochs": 10, "ae_lr": 1e-2, "lr_schedule": "poly"},
    "e6_3e-3_poly": {"ae_epochs": 6, "ae_lr": 3e-3, "lr_schedule": "poly"},
    "e10_3e-3_poly_250": {"ae_epochs": 10, "ae_lr": 3e-3, "lr_schedule": "poly", "ae_steps_per_epoch": 25},
    "e15_3e-3_poly": {"ae_epochs": 15, "ae_lr": 3e-3, "lr_schedule": "poly"},
    "e20_3e-3_poly": {"ae_epochs": 20, "ae_lr": 3e-3, "lr_schedule": "poly"},
    "e10_3e-3_poly_b8": {"ae_epochs": 10, "ae_lr": 3e-3, "lr_schedule": "poly", "ae_batch_size": 8},
    "e10_1e-3_poly_b8": {"ae_epochs": 10, "ae_lr": 1e-3, "lr_schedule": "poly", "ae_batch_size": 8},
}


@torch.no_grad()
def reconstruction_dice(ae, labels: torch.Tensor, num_classes: int, device: torch.device) -> list[float]:
    """Per structure, the 2D Dice of argmax G(F(y)) against y over all slices (pooled)."""
    inter = torch.zeros(num_classes)
    total = torch.zeros(num_classes)
    for start in range(0, len(labels), 64):
        y = labels[start:start + 64].to(device)
        pred = ae(F.one_hot(y, num_classes).permute(0, 3, 1, 2).float()).argmax(1)
        for c in range(1, num_classes):
            inter[c] += ((pred == c) & (y == c)).sum().cpu()
            total[c] += ((pred == c).sum() + (y == c).sum()).cpu()
    return [float(2 * inter[c] / total[c]) if total[c] > 0 else float("nan") for c in range(1, num_classes)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--preset", default="cpu")
    args = parser.parse_args()
    dataset, device = load_dataset(args.dataset), pick_device()
    split = inner_split(dataset, "5", 0, 0.25)
    base = get_preset(args.preset).for_classes(len(dataset.labels))
    train = build_slice_set(dataset, split.train, base.train.size, empty_fraction=base.train.empty_fraction)
    test = build_slice_set(dataset, split.test, base.train.size, empty_fraction=0.0)
    print(f"{len(train)} training masks, {len(test)} held-out masks; {torch.get_num_threads()} threads")
    for name in args.variants.split(","):
        preset = dataclasses.replace(base, train=dataclasses.replace(base.train, **VARIANTS[name]))
        start = time.perf_counter()
        ae = train_shape_ae(train.labels, preset, device=device)
        seconds = time.perf_counter() - start
        dice = reconstruction_dice(ae, test.labels, base.unet.num_classes, device)
        print(f"{name:<16} {seconds:6.0f} s  held-out reconstruction Dice "
              + " ".join(f"{100 * d:.1f}" for d in dice) + f"  mean {100 * sum(dice) / len(dice):.1f}", flush=True)


if __name__ == "__main__":
    main()
