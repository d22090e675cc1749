"""One command that checks the GPU paths: each method of the `paper` preset trained for a few hundred steps with
mixed precision (the loss must fall), the methods' step-time ratios, slices per second and peak memory, and,
with two GPUs, the two-process `torchrun` path over NCCL.

    python bench/gpu_check.py [--steps 300] [--precision auto]

On a machine without CUDA it says so in one line and exits 0. Under 5 minutes on one GPU (300 steps × 4
methods at 256×256, batch 32). Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from synthetic import NUM_CLASSES, blobs

from spar_core.data.augment import augment_batch
from spar_core.methods import METHODS
from spar_core.models import ShapeAutoEncoder
from spar_core.training.precision import PRECISIONS
from spar_core.training.presets import get_preset
from spar_core.training.segmenter import SegmenterTrainer


def train_method(method: str, steps: int, precision: str, device: torch.device) -> dict:
    """``steps`` updates of ``method`` on synthetic slices; loss at the start and end, time, peak memory."""
    preset = get_preset("paper").for_classes(NUM_CLASSES).with_precision(precision)
    tc = preset.train
    gen = torch.Generator().manual_seed(0)
    images, labels = blobs(8 * tc.batch_size, tc.size, gen)
    images, labels = images.to(device), labels.to(device)
    ae = ShapeAutoEncoder(preset.shape_ae).to(device).eval()
    trainer = SegmenterTrainer(method, preset, ae, device=device)
    trainer.train()
    torch.cuda.reset_peak_memory_stats(device)
    losses, seconds = [], 0.0
    aug = torch.Generator(device="cpu").manual_seed(1)
    for step in range(steps):
        idx = torch.randint(0, len(images), (tc.batch_size,), generator=gen).to(device)
        x, y = augment_batch(images[idx], labels[idx], tc.augment, aug)
        torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        losses.append(trainer.step(x, y)["loss"])
        torch.cuda.synchronize(device)
        if step >= 5:  # warm-up (cuDNN autotuning, allocator) left out
            seconds += time.perf_counter() - t0
    window = max(1, steps // 10)
    return {"method": method, "precision": trainer.precision.name,
            "first": sum(losses[:window]) / window, "last": sum(losses[-window:]) / window,
            "step_s": seconds / max(1, steps - 5), "slices_per_s": tc.batch_size * max(1, steps - 5) / seconds,
            "peak_gb": torch.cuda.max_memory_allocated(device) / 2**30}


def torchrun_check() -> bool:
    """``spar train`` on tiny phantoms with two processes over NCCL; True when it finished."""
    from spar_core.data.phantoms import generate_cohort

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "ankle"
        generate_cohort("ankle", data, subjects=4, seed=0)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
               "spar_core", "train", "--dataset", str(data), "--method", "spar", "--preset", "tiny", "--out",
               str(Path(tmp) / "run"), "--device", "cuda"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ})
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
        return done.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--precision", default="auto", choices=PRECISIONS)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device on this machine; nothing to check")
        return 0
    device = torch.device("cuda")
    print(f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, {torch.cuda.device_count()} GPU(s)")
    print(f"{'method':<12} {'prec':<5} {'loss first→last':>18} {'s/step':>8} {'ratio':>6} {'slices/s':>9} "
          f"{'peak GB':>8}")
    ok, base = True, None
    for method in METHODS:
        r = train_method(method, args.steps, args.precision, device)
        base = base or r["step_s"]
        falls = r["last"] < r["first"]
        ok &= falls
        print(f"{method:<12} {r['precision']:<5} {r['first']:8.3f} → {r['last']:7.3f} {r['step_s']:8.4f} "
              f"{r['step_s'] / base:6.2f} {r['slices_per_s']:9.1f} {r['peak_gb']:8.2f}"
              + ("" if falls else "  LOSS DID NOT FALL"))
    if torch.cuda.device_count() >= 2:
        ran = torchrun_check()
        ok &= ran
        print(f"torchrun, 2 processes over NCCL: {'ok' if ran else 'FAILED'}")
    else:
        print("torchrun over NCCL: skipped (one GPU)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
