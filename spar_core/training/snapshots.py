"""Latent snapshots: at chosen epochs, the codes z = maxpool(F(y_b)) of each bone's true 2D mask and
ẑ = maxpool(F(ŷ_b)) of its prediction on fixed slices, so that the app and the notebooks can watch the latent
space converge (paper §3.4). Written by the segmenter's loop; read back by :mod:`spar_core.latent`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from spar_core.data.slice_set import SliceSet
from spar_core.models import ShapeAutoEncoder, UNet
from spar_core.paths import save_npz
from spar_core.training.precision import Precision
from spar_core.models.outputs import one_hot, probabilities


@torch.no_grad()
def snapshot_codes(
    shape_ae: ShapeAutoEncoder,
    probs: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pooled codes of truth and prediction for every (slice, structure) pair where the truth holds the structure.

    Args:
        probs: (B, C, H, W) softmax output.
        labels: (B, H, W) int64 true labels.

    Returns:
        (true (M, L), pred (M, L), structure (M,) label value, row (M,) index into the batch).
    """
    truth = one_hot(labels, num_classes)  # (B, C, H, W)
    out_true, out_pred, out_s, out_r = [], [], [], []
    for s in range(1, num_classes):
        rows = torch.nonzero((labels == s).flatten(1).any(1)).flatten()
        if len(rows) == 0:
            continue
        out_true.append(shape_ae.structure_codes(truth[rows], s).float().cpu())
        out_pred.append(shape_ae.structure_codes(probs[rows], s).float().cpu())
        out_s.append(torch.full((len(rows),), s))
        out_r.append(rows.cpu())
    if not out_true:
        empty = np.zeros((0, shape_ae.cfg.latent_channels), np.float32)
        return empty, empty.copy(), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return (torch.cat(out_true).numpy(), torch.cat(out_pred).numpy(),
            torch.cat(out_s).numpy().astype(np.int64), torch.cat(out_r).numpy().astype(np.int64))


@torch.no_grad()
def save_snapshot(
    unet: UNet, shape_ae: ShapeAutoEncoder, snapshot: SliceSet, path: Path, *,
    epoch: int, batch_size: int, precision: Precision,
) -> None:
    """Codes F(y) and F(ŷ) of each structure's 2D mask on the fixed snapshot slices, written to ``path``."""
    was_training = unet.training
    unet.eval()
    parts = []
    for start in range(0, len(snapshot), batch_size):
        sel = torch.arange(start, min(start + batch_size, len(snapshot)))
        with precision.autocast():
            logits = unet(snapshot.images[sel].to(precision.device))
        probs = probabilities(logits)
        true, pred, structure, row = snapshot_codes(shape_ae, probs, snapshot.labels[sel].to(precision.device),
                                                    snapshot.num_classes)
        parts.append((true, pred, structure, row + start))
    unet.train(was_training)
    true, pred, structure, row = (np.concatenate([p[i] for p in parts]) for i in range(4))
    save_npz(path, epoch=np.int64(epoch), codes_true=true, codes_pred=pred, structure=structure, row=row,
             case=np.asarray(snapshot.case_ids, dtype=str)[row], slice=snapshot.slice_index[row])
