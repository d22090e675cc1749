"""Shape codes of each bone's 2D mask: z = maxpool(F(y_b)) for the truth, ẑ = maxpool(F(ŷ_b)) for the
prediction. Saved at chosen epochs so the app and notebooks can watch the latent space converge (paper §3.4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from spar_core.models import ShapeAutoEncoder


def single_structure(probs: torch.Tensor, structure: int) -> torch.Tensor:
    """Keep one structure of a (B, C, H, W) probability map: its channel as is, the rest as background."""
    out = torch.zeros_like(probs)
    out[:, structure] = probs[:, structure]
    out[:, 0] = 1.0 - probs[:, structure]
    return out


@dataclass
class LatentCodes:
    """Codes of (slice, structure) pairs where the truth holds the structure.

    true, pred: (M, L) float32 globally max-pooled codes; structure: (M,) label value; row: (M,) index into the
    snapshot slices; case, slice: (M,) exam id and slice index in the native volume.
    """

    true: np.ndarray
    pred: np.ndarray
    structure: np.ndarray
    row: np.ndarray
    case: np.ndarray
    slice: np.ndarray

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {"codes_true": self.true, "codes_pred": self.pred, "structure": self.structure,
                "row": self.row, "case": self.case, "slice": self.slice}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "LatentCodes":
        return cls(true=arrays["codes_true"], pred=arrays["codes_pred"], structure=arrays["structure"],
                   row=arrays["row"], case=arrays["case"], slice=arrays["slice"])


@torch.no_grad()
def structure_codes(
    shape_ae: ShapeAutoEncoder,
    probs: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pooled codes of truth and prediction per structure present in the truth.

    probs: (B, C, H, W) softmax output; labels: (B, H, W) int64. Returns (true (M, L), pred (M, L),
    structure (M,), row (M,)).
    """
    truth = F.one_hot(labels, num_classes).permute(0, 3, 1, 2).float()  # (B, C, H, W)
    out_true, out_pred, out_s, out_r = [], [], [], []
    for s in range(1, num_classes):
        rows = torch.nonzero((labels == s).flatten(1).any(1)).flatten()
        if len(rows) == 0:
            continue
        out_true.append(shape_ae.pooled_codes(single_structure(truth[rows], s)).float().cpu())
        out_pred.append(shape_ae.pooled_codes(single_structure(probs[rows], s)).float().cpu())
        out_s.append(torch.full((len(rows),), s))
        out_r.append(rows.cpu())
    if not out_true:
        latent = shape_ae.cfg.latent_channels
        empty = np.zeros((0, latent), np.float32)
        return empty, empty.copy(), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return (torch.cat(out_true).numpy(), torch.cat(out_pred).numpy(),
            torch.cat(out_s).numpy().astype(np.int64), torch.cat(out_r).numpy().astype(np.int64))
