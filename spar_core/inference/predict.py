"""Inference of one model: a 3D exam → normalized slices → segmenter → back to the native grid → a label volume
(written over the image by :func:`spar_core.data.nifti.write_label_volume`)."""

from __future__ import annotations

import numpy as np
import torch

from spar_core.data.nifti import Volume
from spar_core.training.precision import Precision
from spar_core.models import UNet
from spar_core.data.slicing import slices_to_volume, volume_slices
from spar_core.models.outputs import probabilities


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
        out.append(probabilities(logits).cpu())
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
