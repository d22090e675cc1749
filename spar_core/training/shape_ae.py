"""Shape auto-encoder pre-training on the training fold's true masks (paper §2.2; Adam, lr 1e-2 in `paper`).

The fold's auto-encoder is shared by the four methods, so their latent spaces are one and the same space.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import torch

from spar_core.data.augment import augment_batch
from spar_core.training.checkpoint import Checkpoint, restore
from spar_core.training.epochs import Stream, epoch_generator, epoch_order, epoch_steps
from spar_core.models import ShapeAEConfig, ShapeAutoEncoder
from spar_core.training.precision import Precision
from spar_core.training.losses import segmentation_loss
from spar_core.training.presets import Preset
from spar_core.training.schedule import lr_factor
from spar_core.progress import Progress, ProgressEvent, silent
from spar_core.models.outputs import one_hot, probabilities


def train_shape_ae(
    labels: torch.Tensor,
    preset: Preset,
    *,
    device: torch.device,
    progress: Progress = silent,
) -> ShapeAutoEncoder:
    """Train G(F(y)) ≈ y with cross-entropy on one-hot true masks, at ``ae_lr`` on the preset's lr schedule.

    labels: (N, S, S) int64 masks of the training fold; the preset must be sized for their classes
    (``Preset.for_classes``). Returns the trained auto-encoder in eval mode.
    """
    cfg, tc = preset.shape_ae, preset.train
    torch.manual_seed(tc.seed)
    ae = ShapeAutoEncoder(cfg).to(device)
    opt = torch.optim.Adam(ae.parameters(), lr=tc.ae_lr)
    amp = Precision.of(tc.precision, device)  # the preset's precision, as for the segmenters
    scaler = amp.grad_scaler()
    n, batch = len(labels), tc.ae_batch_size
    steps = epoch_steps(n, batch, tc.ae_steps_per_epoch)
    ae.train()
    for epoch in range(1, tc.ae_epochs + 1):
        order = epoch_order(n, batch, tc.ae_steps_per_epoch, epoch_generator(tc.seed, epoch, Stream.SHAPE_AE_ORDER))
        aug_gen = epoch_generator(tc.seed, epoch, Stream.SHAPE_AE_AUGMENT)
        total, start = 0.0, time.perf_counter()
        for step in range(steps):
            y = labels[order[step * batch:(step + 1) * batch]].to(device)
            if tc.augment is not None:
                _, y = augment_batch(y[:, None].float(), y, tc.augment, aug_gen)
            onehot = one_hot(y, cfg.num_classes)  # (B, C, S, S)
            with amp.autocast():
                logits = ae(onehot)
            # the segmenter's data term: with CE alone a whole bone could vanish from the reconstruction
            loss, _ = segmentation_loss(tc.seg_loss, logits, probabilities(logits), y, onehot)
            for group in opt.param_groups:
                group["lr"] = tc.ae_lr * lr_factor(tc.lr_schedule, (epoch - 1) * steps + step, tc.ae_epochs * steps)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            total += float(loss.detach())
            values = {"loss": total / (step + 1)}
            if step + 1 == steps:
                values["seconds"] = time.perf_counter() - start
            progress(ProgressEvent("shape_ae", epoch, tc.ae_epochs, step + 1, steps, values, label="shape AE"))
    return ae.eval()


def save_shape_ae(ae: ShapeAutoEncoder, path: str | Path) -> None:
    Checkpoint("shape_ae", asdict(ae.cfg), ae.state_dict()).save(path)


def load_shape_ae(path: str | Path, device: torch.device | str = "cpu") -> ShapeAutoEncoder:
    """The frozen shape auto-encoder saved at ``path`` (eval mode, no gradients to its weights)."""
    ae, _ = restore(path, "shape_ae", lambda config: ShapeAutoEncoder(ShapeAEConfig(**config)), device)
    return ae.requires_grad_(False)
