"""Seconds per segmenter step of each method and numerical variant (fp32, bf16 autocast, channels_last and
both), as ratios to the same method in fp32 and to `baseline` in fp32, and the share of a step spent outside
the networks (batch indexing and augmentation).

    python bench/train_step.py [--steps 20] [--presets cpu,paper] [--variants fp32,bf16,cl,bf16+cl]
    python bench/train_step.py --profile [--steps 40] [--presets cpu] [--dataset DIR]

``--profile``: where one step of each method goes, at the preset's own precision, in milliseconds and as a share
of the step: batch assembly, the spatial augmentation, each intensity transform (its time over all steps, as
a transform runs on the samples drawn for it), the forward pass, the discriminator update, the loss, the
regularizer's term, the backward pass and the optimizer.

Each preset runs at its own slice size, batch and networks (`cpu`: 96×96, batch 8; `paper`: 256×256, batch 32).
Targets: `spar` ≤ 1.3× `baseline`; data and augmentation ≤ 10 % of a step. The slices are random blobs of the
right shape: speed does not depend on what the pixels show. bf16 on a CPU without native bfloat16 is emulated
and slow; the script prints whether this CPU has it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from synthetic import NUM_CLASSES, blobs

from spar_core.data.augment import INTENSITY_TRANSFORMS, AugmentConfig, augment_batch, augment_intensity
from spar_core.data.dataset import load_dataset
from spar_core.data.slice_set import build_slice_set
from spar_core.models import ShapeAutoEncoder
from spar_core.training.precision import cpu_has_native_bf16
from spar_core.training.presets import get_preset
from spar_core.training.regularizers import REGULARIZERS
from spar_core.training.segmenter import SegmenterTrainer

VARIANTS = {"fp32": ("fp32", False), "bf16": ("bf16", False), "cl": ("fp32", True), "bf16+cl": ("bf16", True)}


def step_seconds(trainer: SegmenterTrainer, images: torch.Tensor, labels: torch.Tensor, batch: int,
                 augment: AugmentConfig, steps: int, channels_last: bool, gen: torch.Generator) -> tuple[float, float]:
    """(seconds per step, share of it spent on the batch and its augmentation), two warm-up steps left out."""
    data_t = total_t = 0.0
    for step in range(steps + 2):
        t0 = time.perf_counter()
        idx = torch.randint(0, len(images), (batch,), generator=gen)
        x, y = augment_batch(images[idx], labels[idx], augment, gen)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        t1 = time.perf_counter()
        trainer.step(x, y)
        t2 = time.perf_counter()
        if step >= 2:
            data_t += t1 - t0
            total_t += t2 - t0
    return total_t / steps, data_t / total_t


def bench(preset_name: str, steps: int, variants: list[str]) -> None:
    preset = get_preset(preset_name).for_classes(NUM_CLASSES)
    tc, device = preset.train, torch.device("cpu")
    gen = torch.Generator().manual_seed(0)
    images, labels = blobs(4 * tc.batch_size, tc.size, gen, channels=preset.unet.input_channels)
    ae = ShapeAutoEncoder(preset.shape_ae).eval()
    print(f"\npreset {preset_name}: {tc.size}×{tc.size}, {preset.unet.input_channels} input channels, "
          f"batch {tc.batch_size}, {torch.get_num_threads()} threads, "
          f"native bf16: {cpu_has_native_bf16()}")
    print(f"{'method':<12} {'variant':<8} {'s/step':>8} {'vs fp32':>8} {'vs base':>8} {'data share':>10}")
    base = None
    for method in REGULARIZERS:
        own = None
        for variant in variants:
            precision, channels_last = VARIANTS[variant]
            run_preset = preset.with_precision(precision)
            trainer = SegmenterTrainer(method, run_preset, ae, device=device)
            if channels_last:
                trainer.unet.to(memory_format=torch.channels_last)
            trainer.train()
            per_step, share = step_seconds(trainer, images, labels, tc.batch_size, tc.augment, steps, channels_last,
                                           gen)
            own = own or per_step
            base = base or per_step
            print(f"{method:<12} {variant:<8} {per_step:8.4f} {per_step / own:8.2f} {per_step / base:8.2f} "
                  f"{share:10.1%}")


def profile(preset_name: str, steps: int, dataset_dir: Path | None = None) -> None:
    """Milliseconds per step of each part, per method, at the preset's precision (a profile's laps); on the
    slices of ``dataset_dir``'s first eight exams where given (what the pixels hold can matter: denormal
    numbers, empty slices), else on random blobs."""
    gen = torch.Generator().manual_seed(0)
    if dataset_dir is not None:
        dataset = load_dataset(dataset_dir)
        preset = get_preset(preset_name).for_dataset(dataset)
        tc, unet = preset.train, preset.unet
        slices = build_slice_set(dataset, [c.case_id for c in dataset.cases][:8], tc.size,
                                 empty_fraction=tc.empty_fraction, seed=tc.seed, context=unet.context,
                                 stride=unet.context_stride, context_mm=unet.context_mm)
        images, labels = slices.images, slices.labels
    else:
        preset = get_preset(preset_name).for_classes(NUM_CLASSES)
        tc = preset.train
        images, labels = blobs(4 * tc.batch_size, tc.size, gen, channels=preset.unet.input_channels)
    ae = ShapeAutoEncoder(preset.shape_ae).eval()
    parts = ["batch", "spatial", *INTENSITY_TRANSFORMS, "forward", "discriminator", "loss", "regularizer",
             "backward", "optimizer"]
    print(f"\npreset {preset_name} on {dataset_dir or 'random blobs'}: {tc.size}×{tc.size}, "
          f"{preset.unet.input_channels} input channels, batch "
          f"{tc.batch_size}, precision {tc.precision}, {torch.get_num_threads()} threads; ms per step "
          f"(share of the step)")
    print(f"{'part':<14}" + "".join(f"{m:>20}" for m in REGULARIZERS))
    table: dict[str, dict[str, float]] = {}
    for method in REGULARIZERS:
        trainer = SegmenterTrainer(method, preset, ae, device=torch.device("cpu"))
        trainer.train()
        spent = dict.fromkeys(parts, 0.0)
        for step in range(steps + 2):
            mark = [time.perf_counter()]

            def clock(part: str) -> None:
                now = time.perf_counter()
                if step >= 2:  # two warm-up steps left out
                    spent[part] += now - mark[0]
                mark[0] = now

            idx = torch.randint(0, len(images), (tc.batch_size,), generator=gen)
            x, y = images[idx], labels[idx]
            clock("batch")
            x, y = augment_batch(x, y, tc.augment, gen)
            clock("spatial")
            x = augment_intensity(x, tc.augment, gen, clock)
            trainer.step(x, y, clock)
        table[method] = {k: v / steps for k, v in spent.items()}
    for part in [*parts, "augmentation", "step"]:
        cells = []
        for method in REGULARIZERS:
            got = table[method]
            total = sum(got.values())
            value = (total if part == "step" else
                     sum(got[k] for k in ("spatial", *INTENSITY_TRANSFORMS)) if part == "augmentation" else got[part])
            cells.append(f"{value * 1000:9.2f} ({value / total:6.1%})")
        print(f"{part:<14}" + "".join(f"{c:>20}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--presets", default="cpu,paper")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--profile", action="store_true", help="where a step's time goes, part by part")
    parser.add_argument("--dataset", type=Path, default=None, help="with --profile: slices of this dataset")
    args = parser.parse_args()
    if args.profile:
        for name in args.presets.split(","):
            profile(name, args.steps, args.dataset)
        return
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {', '.join(unknown)}; expected some of {', '.join(VARIANTS)}")
    for name in args.presets.split(","):
        bench(name, args.steps, variants)


if __name__ == "__main__":
    main()
