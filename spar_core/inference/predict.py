"""Inference: a 3D exam → normalized slices → segmenter → back to the native grid → a label volume,
written as NIfTI with the source affine and header so it opens over the image in ITK-SNAP or 3D Slicer."""

from __future__ import annotations

from pathlib import Path

import nibabel
import numpy as np
import torch

from spar_core.data.dataset import Volume
from spar_core.training.precision import Precision
from spar_core.models import UNet
from spar_core.paths import atomic_path
from spar_core.data.slicing import slices_to_volume, volume_slices


@torch.no_grad()
def predict_probabilities(
    unet: UNet, images: torch.Tensor, *, device: torch.device, batch_size: int = 32, precision: str = "auto"
) -> torch.Tensor:
    """Softmax probabilities (N, C, S, S), fp32 on the CPU, for network-ready slices (N, 1, S, S), in batches;
    ``precision`` as in :mod:`spar_core.training.precision`."""
    unet.eval()
    amp = Precision.of(precision, device)
    out = []
    for start in range(0, len(images), batch_size):
        with amp.autocast():
            logits = unet(images[start:start + batch_size].to(device))
        out.append(torch.softmax(logits.float(), dim=1).cpu())
    return torch.cat(out)


def predict_volume(
    unet: UNet, volume: Volume, size: int, *, device: torch.device = torch.device("cpu"), batch_size: int = 32,
    precision: str = "auto",
) -> np.ndarray:
    """The label volume (native grid, uint8) that ``unet`` predicts for ``volume``, slice by slice along its
    ``slice_axis`` at ``size``×``size``."""
    images, _, geom = volume_slices(volume.image, None, volume.slice_axis, size, context=unet.cfg.context,
                                    stride=unet.cfg.stride_along(volume.spacing[volume.slice_axis]))
    probs = predict_probabilities(unet, images, device=device, batch_size=batch_size, precision=precision)
    return slices_to_volume(probs, geom, volume.slice_axis).astype(np.uint8, copy=False)


def _write_volume(array: np.ndarray, dtype: type, source: Volume, path: str | Path) -> Path:
    header = source.header.copy()
    header.set_data_dtype(dtype)
    img = nibabel.Nifti1Image(np.asarray(array, dtype=dtype), source.affine, header)
    img.header.set_slope_inter(1, 0)
    with atomic_path(path) as tmp:
        nibabel.save(img, tmp)
    return Path(path)


def write_label_volume(labels: np.ndarray, source: Volume, path: str | Path) -> Path:
    """Write ``labels`` as NIfTI (uint8) with ``source``'s affine and header, atomically."""
    return _write_volume(labels, np.uint8, source, path)


def write_map_volume(values: np.ndarray, source: Volume, path: str | Path) -> Path:
    """Write a per-voxel map (an uncertainty, float32) as NIfTI with ``source``'s affine and header, atomically."""
    return _write_volume(values, np.float32, source, path)
