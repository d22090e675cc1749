"""A training step of a preset on a dataset's own slices, its parts timed from outside the trainer (batch
assembly, the spatial augmentation, the intensity transforms, the trainer's step), so that it runs on any version
of spar: the before-and-after of a change to the augmentation, measured in one session.

    PYTHONPATH=CHECKOUT python bench/step_parts.py DATASET [--steps 40] [--preset cpu] [--cases 8]

Prints milliseconds per step of each part per method and the augmentation's share of the step (two warm-up steps
left out). ``bench/train_step.py --profile`` splits the trainer's step further where the version has the clock.
"""

from __future__ import annotations

import argparse
import time

import torch

from spar_core.data.augment import augment_batch, augment_intensity
from spar_core.data.dataset import load_dataset
from spar_core.data.slice_set import build_slice_set
from spar_core.models import ShapeAutoEncoder
from spar_core.training.presets import get_preset
from spar_core.training.segmenter import SegmenterTrainer

METHODS = ("baseline", "adversarial", "shape", "spar")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--cases", type=int, default=8, help="slices of the first N exams")
    args = parser.parse_args()
    dataset = load_dataset(args.dataset)
    preset = get_preset(args.preset).for_classes(len(dataset.labels))  # for_dataset is newer: runs on old versions too
    tc, unet = preset.train, preset.unet
    slices = build_slice_set(dataset, [c.case_id for c in dataset.cases][:args.cases], tc.size,
                             empty_fraction=tc.empty_fraction, seed=tc.seed, context=unet.context,
                             stride=unet.context_stride, context_mm=unet.context_mm)
    gen = torch.Generator().manual_seed(0)
    ae = ShapeAutoEncoder(preset.shape_ae).eval()
    print(f"{args.dataset}: preset {args.preset}, {torch.get_num_threads()} threads, batch {tc.batch_size}, "
          f"{tc.size}×{tc.size}×{unet.input_channels}; ms per step")
    print(f"{'method':<12}{'batch':>8}{'spatial':>8}{'intens.':>8}{'step':>8}{'total':>8}{'aug share':>10}")
    for method in METHODS:
        trainer = SegmenterTrainer(method, preset, ae, device=torch.device("cpu"))
        trainer.train()
        spent = [0.0] * 4
        for k in range(args.steps + 2):
            t0 = time.perf_counter()
            idx = torch.randint(0, len(slices.images), (tc.batch_size,), generator=gen)
            x, y = slices.images[idx], slices.labels[idx]
            t1 = time.perf_counter()
            x, y = augment_batch(x, y, tc.augment, gen)
            t2 = time.perf_counter()
            x = augment_intensity(x, tc.augment, gen)
            t3 = time.perf_counter()
            trainer.step(x, y)
            t4 = time.perf_counter()
            if k >= 2:
                for i, d in enumerate((t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                    spent[i] += d
        ms = [1000 * s / args.steps for s in spent]
        total = sum(ms)
        print(f"{method:<12}" + "".join(f"{v:8.2f}" for v in ms) + f"{total:8.2f}{(ms[1] + ms[2]) / total:10.1%}")


if __name__ == "__main__":
    main()
