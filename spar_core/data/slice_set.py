"""The 2D training material of a fold: every exam's slices, normalized, squared, stacked in memory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from spar_core.data.dataset import Dataset, load_volume
from spar_core.data.slicing import context_stride, volume_slices


@dataclass
class SliceSet:
    """Slices of several exams with their origin, ready for batching.

    images: (N, K, S, S) float32 in [0, 1] (K = 1, or the 2.5D channels); labels: (N, S, S) int64; case_ids
    and slice_index say where each slice comes from (slice_index along the dataset's slice axis, in the native
    volume).
    """

    images: torch.Tensor
    labels: torch.Tensor
    case_ids: tuple[str, ...]
    slice_index: np.ndarray
    num_classes: int

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, index: Sequence[int] | np.ndarray) -> "SliceSet":
        index = np.asarray(index, dtype=np.int64)
        return SliceSet(
            images=self.images[torch.as_tensor(index)],
            labels=self.labels[torch.as_tensor(index)],
            case_ids=tuple(self.case_ids[i] for i in index),
            slice_index=self.slice_index[index],
            num_classes=self.num_classes,
        )


def build_slice_set(
    dataset: Dataset, case_ids: Sequence[str], size: int, *, empty_fraction: float = 1.0, seed: int = 0,
    context: int = 0, stride: int = 1, context_mm: float = 0.0,
) -> SliceSet:
    """Slices of ``case_ids`` at ``size``×``size``, keeping every slice with a structure and a random
    ``empty_fraction`` of those without (deterministic for ``seed``); with ``context``, each with its
    neighbours as extra channels (:func:`spar_core.data.slicing.with_context`; ``stride`` slices apart, or
    ``context_mm`` mm at each exam's spacing: :func:`spar_core.data.slicing.context_stride`)."""
    rng = np.random.default_rng(seed)
    images, labels, cases, index = [], [], [], []
    for case_id in case_ids:
        vol = load_volume(dataset, case_id)
        step = context_stride(stride, context_mm, vol.spacing[vol.slice_axis])
        img, lab, _ = volume_slices(vol.image, vol.label, vol.slice_axis, size, context=context, stride=step)
        assert lab is not None
        has_fg = (lab > 0).flatten(1).any(1).numpy()
        keep = has_fg | (rng.random(len(has_fg)) < empty_fraction)
        kept = np.flatnonzero(keep)
        images.append(img[torch.as_tensor(kept)])
        labels.append(lab[torch.as_tensor(kept)])
        cases.extend([case_id] * len(kept))
        index.append(kept)
    return SliceSet(
        images=torch.cat(images),
        labels=torch.cat(labels).long(),
        case_ids=tuple(cases),
        slice_index=np.concatenate(index),
        num_classes=len(dataset.labels),
    )


def snapshot_indices(slices: SliceSet, count: int, seed: int = 0) -> np.ndarray:
    """A fixed, sorted choice of ``count`` slices holding at least one structure (latent snapshots)."""
    fg = np.flatnonzero((slices.labels > 0).flatten(1).any(1).numpy())
    if len(fg) <= count:
        return fg
    return np.sort(np.random.default_rng(seed).choice(fg, size=count, replace=False))
