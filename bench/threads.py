"""Do two cores train faster as one process with two threads or as two processes with one thread each (e.g.
`spar crossval --shard 0/2` and `--shard 1/2` side by side)? Segmenter steps per second of one method of a
preset, both ways, in one run; prints the throughput ratio.

    python bench/threads.py [--preset cpu] [--method baseline] [--steps 60] [--cores 2]

Each worker trains its own network on random blobs of the preset's shape (bf16 where the CPU has it, as
``--precision auto``); the side-by-side workers start together and their steps are counted over the same span.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import torch
from synthetic import NUM_CLASSES, blobs

from spar_core.data.augment import augment_batch
from spar_core.models import ShapeAutoEncoder
from spar_core.training.presets import get_preset
from spar_core.training.segmenter import SegmenterTrainer


def worker(preset_name: str, method: str, steps: int, threads: int, start: "mp.synchronize.Barrier",
           out: "mp.Queue") -> None:
    torch.set_num_threads(threads)
    preset = get_preset(preset_name).for_classes(NUM_CLASSES)
    gen = torch.Generator().manual_seed(0)
    images, labels = blobs(4 * preset.train.batch_size, preset.train.size, gen, channels=preset.unet.input_channels)
    trainer = SegmenterTrainer(method, preset, ShapeAutoEncoder(preset.shape_ae).eval(), device=torch.device("cpu"))
    trainer.train()

    def step() -> None:
        idx = torch.randint(0, len(images), (preset.train.batch_size,), generator=gen)
        trainer.step(*augment_batch(images[idx], labels[idx], preset.train.augment, gen))

    for _ in range(3):  # warm-up
        step()
    start.wait()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    out.put(time.perf_counter() - t0)


def run(workers: int, threads: int, args: argparse.Namespace) -> float:
    """Steps per second of ``workers`` processes of ``threads`` threads each, together."""
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(args.preset, args.method, args.steps, threads, start, out))
             for _ in range(workers)]
    for p in procs:
        p.start()
    seconds = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return workers * args.steps / max(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--method", default="baseline")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    one = run(1, args.cores, args)
    many = run(args.cores, 1, args)
    print(f"{args.preset} {args.method}: 1 process × {args.cores} threads {one:.1f} steps/s; "
          f"{args.cores} processes × 1 thread {many:.1f} steps/s together; ratio {many / one:.2f}")


if __name__ == "__main__":
    main()
