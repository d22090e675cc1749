"""Seconds per segmenter step of each method, as ratios to `baseline`, and the share of a step spent
outside the networks (batch indexing and augmentation).

    python bench/train_step.py [--steps 20] [--sizes 96,256]

Targets: `spar` ≤ 1.3× `baseline`; data and augmentation ≤ 10 % of a step. The slices are random blobs of the
right shape: speed does not depend on what the pixels show.
"""

from __future__ import annotations

import argparse
import time

import torch

from spar_core.data.augment import augment_batch
from spar_core.models import ShapeAutoEncoder
from spar_core.training.presets import get_preset
from spar_core.training.regularizers import REGULARIZERS
from spar_core.training.segmenter import SegmenterTrainer

NUM_CLASSES = 4


def blobs(n: int, size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n random slices with three elliptical structures each: (n, 1, S, S) images, (n, S, S) labels."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    labels = torch.zeros(n, size, size, dtype=torch.long)
    for s in range(1, NUM_CLASSES):
        c = torch.rand(n, 2, generator=gen) - 0.5
        r = 0.15 + 0.2 * torch.rand(n, 2, generator=gen)
        inside = ((xx - c[:, :1, None]) / r[:, :1, None]) ** 2 + ((yy - c[:, 1:, None]) / r[:, 1:, None]) ** 2 < 1
        labels[inside] = s
    images = labels[:, None].float() / NUM_CLASSES + 0.1 * torch.randn(n, 1, size, size, generator=gen)
    return images, labels


def bench(size: int, steps: int) -> None:
    preset = get_preset("cpu").for_classes(NUM_CLASSES).with_size(size)
    tc, device = preset.train, torch.device("cpu")
    gen = torch.Generator().manual_seed(0)
    images, labels = blobs(4 * tc.batch_size, size, gen)
    ae = ShapeAutoEncoder(preset.shape_ae).eval()
    print(f"\nsize {size}×{size}, batch {tc.batch_size}, cpu preset networks, {torch.get_num_threads()} threads")
    print(f"{'method':<12} {'s/step':>8} {'ratio':>6} {'data share':>10}")
    base = None
    for method in REGULARIZERS:
        trainer = SegmenterTrainer(method, preset, ae, device=device)
        trainer.train()
        data_t = total_t = 0.0
        for step in range(steps + 2):
            t0 = time.perf_counter()
            idx = torch.randint(0, len(images), (tc.batch_size,), generator=gen)
            x, y = augment_batch(images[idx], labels[idx], tc.augment, gen)
            t1 = time.perf_counter()
            trainer.step(x, y)
            t2 = time.perf_counter()
            if step >= 2:  # warm-up steps excluded
                data_t += t1 - t0
                total_t += t2 - t0
        per_step = total_t / steps
        base = base or per_step
        print(f"{method:<12} {per_step:8.4f} {per_step / base:6.2f} {data_t / total_t:10.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--sizes", default="96,256")
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        bench(size, args.steps)


if __name__ == "__main__":
    main()
