"""Prediction by an ensemble: the softmax of several fold models (and, with test-time augmentation, of shifted
copies of each slice) averaged, as nnU-Net does, with the per-voxel uncertainty that the average carries.

Test-time augmentation uses the transforms the segmenters were trained to be invariant to: small in-plane
shifts (±5 % of the side, within the training augmentation's ±10 %), each shifted back before averaging, a
pixel averaged over the members that saw it. Not mirroring, as nnU-Net does: spar's training never mirrors,
and a mirrored sagittal slice puts L5 where L1 was (or the left bone where the right one was) — measured on the
spine, flipped members disagreed on the vertebra levels everywhere and their "uncertainty" rose with Dice.

- ``labels``: the argmax of the mean probabilities on the native grid;
- ``entropy``: the predictive entropy of the mean probabilities, in nats (0: certain; ln C: uniform);
- ``disagreement``: the mutual information between the prediction and the member (entropy of the mean minus
  mean of the members' entropies, in nats): what the members disagree on, beyond what each is unsure of.
  Zero with a single member.

Slices are processed in chunks, so memory holds the outputs (labels, two float32 maps, and the float16
probabilities when asked for) plus one chunk's work, whatever the number of members.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from spar_core.data.nifti import Volume
from spar_core.data.slicing import from_slices, from_square, volume_slices
from spar_core.errors import SparError
from spar_core.models import UNet
from spar_core.training.precision import Precision
from spar_core.models.outputs import probabilities

# In-plane shifts (rows, columns) as fractions of the side; the identity first.
TTA_SHIFTS: tuple[tuple[float, float], ...] = ((0.0, 0.0), (0.05, 0.0), (-0.05, 0.0), (0.0, 0.05), (0.0, -0.05))
_CHUNK = 16  # slices per step: bounds the native-resolution work


@dataclass
class EnsemblePrediction:
    """What :func:`predict_ensemble` returns, every array on the volume's native grid (X, Y, Z)."""

    labels: np.ndarray  # uint8
    entropy: np.ndarray  # float32, nats
    disagreement: np.ndarray  # float32, nats (mutual information); zeros for one member
    probabilities: np.ndarray | None  # (C, X, Y, Z) float16, when asked for
    n_members: int


def _entropy(p: torch.Tensor, dim: int = 1) -> torch.Tensor:
    return -(p * torch.log(p.clamp_min(1e-8))).sum(dim=dim)


def shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """(B, C, H, W) moved by (dy, dx) pixels, zeros where nothing moved in."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        x[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


@torch.no_grad()
def predict_ensemble(
    unets: Sequence[UNet], volume: Volume, size: int, *, tta: bool = False, device: torch.device = torch.device("cpu"),
    precision: str = "auto", keep_probabilities: bool = False, batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> EnsemblePrediction:
    """Segment ``volume`` with every network of ``unets`` (and its shifted copies with ``tta``), averaging softmax.

    Args:
        unets: trained networks of one method (e.g. the folds of a run); same classes and input channels.
        volume: the exam, sliced along its ``slice_axis`` at ``size`` × ``size``.
        tta: add four shifted copies of each slice (``TTA_SHIFTS``; each shifted back before averaging).
        keep_probabilities: also return the mean probabilities (float16).
        progress: called with (slices done, slices) after each chunk.

    Raises:
        SparError: no network, or networks that disagree on classes or input channels.
    """
    if not unets:
        raise SparError("no model to predict with: expected at least one fold model")
    first = unets[0].cfg
    for u in unets[1:]:
        if (u.cfg.num_classes, u.cfg.context, u.cfg.context_stride, u.cfg.context_mm) \
                != (first.num_classes, first.context, first.context_stride, first.context_mm):
            raise SparError("the fold models differ in classes or input: expected the folds of one run")
    images, _, geom = volume_slices(volume.image, None, volume.slice_axis, size, context=first.context,
                                    stride=first.stride_along(volume.spacing[volume.slice_axis]))
    amp = Precision.of(precision, device)
    for u in unets:
        u.eval()
    shifts = [(round(fy * size), round(fx * size)) for fy, fx in (TTA_SHIFTS if tta else TTA_SHIFTS[:1])]
    n, c = len(images), first.num_classes
    labels = np.empty((n, geom.height, geom.width), dtype=np.uint8)
    entropy = np.empty((n, geom.height, geom.width), dtype=np.float32)
    disagreement = np.zeros((n, geom.height, geom.width), dtype=np.float32)
    probs_out = np.empty((c, n, geom.height, geom.width), dtype=np.float16) if keep_probabilities else None
    members = len(unets) * len(shifts)
    for start in range(0, n, _CHUNK):
        batch = images[start:start + _CHUNK].to(device)
        total = torch.zeros((len(batch), c, size, size), dtype=torch.float32, device=device)
        member_entropy = torch.zeros((len(batch), size, size), dtype=torch.float32, device=device)
        seen = torch.zeros((1, 1, size, size), dtype=torch.float32, device=device)  # members per pixel
        for dy, dx in shifts:
            valid = shift(torch.ones((1, 1, size, size), device=device), -dy, -dx) if dy or dx else 1.0
            x = shift(batch, dy, dx) if dy or dx else batch
            for unet in unets:
                for s in range(0, len(x), batch_size):
                    with amp.autocast():
                        logits = unet(x[s:s + batch_size])
                    p = probabilities(logits)
                    p = shift(p, -dy, -dx) * valid if dy or dx else p
                    total[s:s + batch_size] += p
                    member_entropy[s:s + batch_size] += _entropy(p)
                seen += valid
        mean = total / seen
        member_entropy = member_entropy / seen[:, 0]
        native = from_square(mean.cpu(), geom, mode="bilinear").clamp_min(0)  # (b, C, H, W)
        native = native / native.sum(dim=1, keepdim=True).clamp_min(1e-8)
        end = start + len(batch)
        labels[start:end] = native.argmax(dim=1).numpy()
        entropy[start:end] = _entropy(native).numpy()
        if members > 1:
            mi = (_entropy(mean) - member_entropy).clamp_min(0)
            disagreement[start:end] = from_square(mi[:, None].cpu(), geom, mode="bilinear")[:, 0].numpy()
        if probs_out is not None:
            probs_out[:, start:end] = native.numpy().transpose(1, 0, 2, 3)
        if progress is not None:
            progress(end, n)
    axis = volume.slice_axis
    kept = None if probs_out is None else np.stack([from_slices(p, axis) for p in probs_out])
    return EnsemblePrediction(from_slices(labels, axis), from_slices(entropy, axis),
                              from_slices(disagreement, axis), kept, members)
