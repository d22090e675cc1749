"""Latent convergence as a number: how far each predicted code ẑ = F(ŷ_b) lies from its own true code
z = F(y_b), in the latent space itself (not in a 2D map), per method and snapshot epoch.

The paper shows SPAR's predicted codes "converging towards the true shapes" on t-SNE pictures (§3.4); t-SNE
distances are not distances, so this table measures the Euclidean distance ‖ẑ − z‖ between the globally
max-pooled codes of the same (slice, structure) pair, and gives one curve per method.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from spar_core.latent.embedding import FoldSnapshots, load_snapshots
from spar_core.paths import read_table, write_csv
from spar_core.layout.run_folder import RunFolder

COLUMNS = ["fold", "method", "epoch", "structure", "mean_distance", "std", "n"]


def pair_distances(snaps: FoldSnapshots) -> np.ndarray:
    """‖F(ŷ_b) − F(y_b)‖₂ of every code pair (N,), aligned with ``snaps.frame``."""
    return np.linalg.norm(snaps.pred.astype(np.float64) - snaps.true.astype(np.float64), axis=1)


def convergence_from_snapshots(snaps: FoldSnapshots) -> pd.DataFrame:
    """Rows per (method, epoch): structure "all" first, then each structure by name; std is the population
    standard deviation (ddof 0) of the pair distances, n their count."""
    frame = snaps.frame.assign(distance=pair_distances(snaps))
    parts = [frame.assign(structure="all"), frame]
    stats = (pd.concat(parts, ignore_index=True)
             .groupby(["method", "epoch", "structure"], sort=False)["distance"]
             .agg(mean_distance="mean", std=lambda d: float(np.std(d)), n="size")
             .reset_index())
    stats["named"] = stats["structure"] != "all"  # "all" first within each (method, epoch)
    stats = stats.sort_values(["method", "epoch", "named", "structure"], kind="stable")
    return stats.assign(fold=snaps.fold)[COLUMNS].reset_index(drop=True)


def convergence_table(run: RunFolder | str | Path, fold: int) -> pd.DataFrame:
    """Mean, std and count of the latent distances ‖ẑ − z‖ per (method, epoch, structure) of ``fold``.

    Returns:
        Columns ``COLUMNS``: fold, method, epoch, structure ("all" or a structure name), mean_distance (latent
        units), std, n.

    Raises:
        SparError: see :func:`~spar_core.latent.embedding.load_snapshots`.
    """
    return convergence_from_snapshots(load_snapshots(run, fold))


def read_convergence(path: str | Path) -> pd.DataFrame:
    """A table written by :func:`write_convergence`.

    Raises:
        SparError: unreadable, or a column of ``COLUMNS`` missing.
    """
    return read_table(path, COLUMNS, "a convergence table (spar embed RUN writes it)", text=("structure",))


def write_convergence(run: RunFolder | str | Path, fold: int) -> Path:
    """Write :func:`convergence_table` atomically to ``RUN/embeddings/convergence_fold_<fold>.csv``."""
    run = RunFolder(run) if not isinstance(run, RunFolder) else run
    path = run.convergence_path(fold)
    table = convergence_table(run, fold)
    write_csv(path, table)
    return path
