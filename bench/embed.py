"""Seconds per latent embedding kind: refitting scikit-learn t-SNE at every epoch (the paper's figure) vs one
openTSNE map of the true codes plus a transform per epoch ("aligned") vs UMAP fit + transforms.

    python bench/embed.py [RUN] [--n 5000] [--dim 64] [--epochs 6] [--kinds tsne,aligned,umap]

(a) With RUN, times each kind on every fold of that run folder (its real latent snapshots).
(b) Always, on synthetic codes: ``--epochs`` snapshots of ``--n`` true codes (``--dim``-d Gaussian clusters, three
structures) and as many predicted codes that approach them epoch by epoch. The refit t-SNE embeds 2n points
per epoch; the aligned map fits n and transforms n per epoch. Prints seconds and the ratio aligned / refit.
UMAP's numba compilation (a one-off per process) is timed apart, before everything else.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from spar_core.latent.embedding import (
    EMBEDDINGS,
    AlignedTSNE,
    AlignedUMAP,
    embed_snapshots,
    load_snapshots,
    parse_kinds,
    tsne_map,
)
from spar_core.layout.run_folder import RunFolder


def synthetic(n: int, dim: int, epochs: int, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """True codes (n, dim) in three clusters, and per epoch predicted codes whose offset shrinks as 1/epoch."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, size=(3, dim))
    true = centres[rng.integers(0, 3, n)] + rng.normal(0, 1, size=(n, dim))
    drift = rng.normal(0, 3, size=(n, dim))
    return true.astype(np.float32), [(true + drift / e).astype(np.float32) for e in range(1, epochs + 1)]


def bench_synthetic(n: int, dim: int, epochs: int, kinds: tuple[str, ...]) -> None:
    true, preds = synthetic(n, dim, epochs)
    print(f"\nsynthetic: {epochs} epochs × {n} codes of {dim} dims, {torch.get_num_threads()} threads")
    seconds: dict[str, float] = {}
    if "tsne" in kinds:
        t0 = time.perf_counter()
        for pred in preds:
            tsne_map(np.concatenate([true, pred]), seed=0)
        seconds["tsne"] = time.perf_counter() - t0
        print(f"  tsne (refit per epoch, {2 * n} points each): {seconds['tsne']:8.1f} s")
    for kind, cls in (("aligned", AlignedTSNE), ("umap", AlignedUMAP)):
        if kind not in kinds:
            continue
        t0 = time.perf_counter()
        fixed = cls(true, seed=0)
        fit = time.perf_counter() - t0
        for pred in preds:
            fixed.place(pred)
        seconds[kind] = time.perf_counter() - t0
        print(f"  {kind} (fit {n} + {epochs} transforms of {n}): {seconds[kind]:8.1f} s "
              f"(fit {fit:.1f} s, {(seconds[kind] - fit) / epochs:.2f} s per transform)")
    if "tsne" in seconds:
        for kind in ("aligned", "umap"):
            if kind in seconds:
                print(f"  ratio {kind} / refit t-SNE: {seconds[kind] / seconds['tsne']:.3f}")


def warm_up_umap() -> None:
    """numba compiles UMAP on first use (a one-off per process): time it apart from the runs."""
    true, preds = synthetic(200, 8, 1)
    t0 = time.perf_counter()
    AlignedUMAP(true, seed=0).place(preds[0][:50])
    print(f"umap compile warm-up: {time.perf_counter() - t0:.1f} s (excluded below)")


def bench_run(run: RunFolder, kinds: tuple[str, ...]) -> None:
    for fold in run.folds():
        snaps = load_snapshots(run, fold)
        m = len(snaps.reference()[1])
        print(f"\n{run.root} fold {fold}: {len(snaps.keys())} snapshots × {m} code pairs "
              f"({snaps.true.shape[1]} dims)")
        for kind in kinds:
            t0 = time.perf_counter()
            embed_snapshots(snaps, (kind,), seed=0)
            print(f"  {kind:<8} {time.perf_counter() - t0:8.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", nargs="?", type=Path, help="a run folder with latent snapshots (optional)")
    parser.add_argument("--n", type=int, default=5000, help="synthetic true codes per epoch (default: 5000)")
    parser.add_argument("--dim", type=int, default=64, help="code dimension (64 cpu preset, 512 paper)")
    parser.add_argument("--epochs", type=int, default=6, help="snapshot epochs (paper: 1-5 and 10, i.e. 6)")
    parser.add_argument("--kinds", default=",".join(EMBEDDINGS), help="kinds to time (default: all)")
    args = parser.parse_args()
    kinds = parse_kinds(args.kinds)
    if "umap" in kinds:
        warm_up_umap()
    if args.run is not None:
        bench_run(RunFolder(args.run), kinds)
    bench_synthetic(args.n, args.dim, args.epochs, kinds)


if __name__ == "__main__":
    main()
