"""Segmenter training for any of the four methods: L_seg(ŷ, y) + λ·L_reg, discriminator and segmenter
updated alternately at every batch (paper §2.4).

Each epoch appends a history line and writes an atomic checkpoint (weights, optimizer states, history); the
randomness of epoch e comes from generators fixed by (seed, e), so ``resume=True`` carries an interrupted run
to exactly the result of an uninterrupted one on the CPU.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch
from torch.nn.parallel import DistributedDataParallel

from spar_core.data.augment import augment_batch, augment_intensity
from spar_core.data.slice_set import SliceSet
from spar_core.errors import SparError, note
from spar_core.methods import METHODS
from spar_core.models import ShapeAutoEncoder, UNet, UNetConfig
from spar_core.paths import write_jsonl
from spar_core.progress import Progress, ProgressEvent, silent
from spar_core.layout.run_folder import MethodFolder
from spar_core.training.checkpoint import Checkpoint, restore
from spar_core.training.epochs import Stream, epoch_generator, epoch_order, epoch_steps
from spar_core.training.precision import Precision
from spar_core.training.distributed import DistInfo, average_gradients
from spar_core.training.losses import segmentation_loss
from spar_core.training.presets import Preset
from spar_core.training.regularizers import build_regularizer
from spar_core.training.schedule import lr_factor
from spar_core.training.snapshots import save_snapshot
from spar_core.models.outputs import one_hot, probabilities


class SegmenterTrainer:
    """The UNet of one method with its regularizer, optimizers and loss scalers; ``step`` is one batch:
    a discriminator update (real = truth, fake = detached prediction), then a segmenter update on
    L_seg(ŷ, y) + λ·L_reg(ŷ), L_seg the preset's ``seg_loss`` (CE in the paper)."""

    def __init__(self, method: str, preset: Preset, shape_ae: ShapeAutoEncoder | None, *,
                 device: torch.device, dist: DistInfo = DistInfo()) -> None:
        tc = preset.train
        self.method, self.device, self.dist = method, device, dist
        self.num_classes = preset.unet.num_classes
        torch.manual_seed(tc.seed)  # the same initial UNet for every method
        self.unet = UNet(preset.unet).to(device)
        self.reg = build_regularizer(method, num_classes=self.num_classes,
                                     encoder=shape_ae.encoder if shape_ae is not None else None,
                                     code_disc_cfg=preset.code_disc, mask_disc_cfg=preset.mask_disc).to(device)
        self.lam = tc.lam(method) if METHODS[method].regularized else 0.0
        self.seg_loss = tc.seg_loss
        self.opt_s = torch.optim.Adam(self.unet.parameters(), lr=tc.lr)
        self.d_params = self.reg.discriminator_parameters()
        self.opt_d = torch.optim.Adam(self.d_params, lr=tc.lr) if self.d_params else None
        self.precision = Precision.of(tc.precision, device)
        self.scaler_s, self.scaler_d = self.precision.grad_scaler(), self.precision.grad_scaler()
        self.model: torch.nn.Module = self.unet
        if dist.enabled:
            ids = [device.index] if device.type == "cuda" else None
            self.model = DistributedDataParallel(self.unet, device_ids=ids)

    def train(self) -> None:
        self.unet.train()
        self.reg.train()

    def set_lr(self, lr: float) -> None:
        """The rate of both optimizers for the next update."""
        for opt in (self.opt_s, self.opt_d):
            for group in (opt.param_groups if opt is not None else []):
                group["lr"] = lr

    def step(self, x: torch.Tensor, y: torch.Tensor, clock: Callable[[str], None] | None = None
             ) -> dict[str, float]:
        """One alternate update on images x (B, 1, S, S) and labels y (B, S, S); returns the loss terms.
        ``clock(part)`` is called at the end of each part (forward, discriminator, loss, regularizer, backward,
        optimizer): a profile's laps (on a GPU the caller synchronises in it)."""
        device = self.device
        lap = clock or (lambda part: None)
        # forward once; F and D always see fp32 probabilities, never logits or argmax
        onehot = one_hot(y, self.num_classes)  # (B, C, S, S)
        with self.precision.autocast():
            logits = self.model(x)
        probs = probabilities(logits)
        lap("forward")

        # discriminator update: real = the truth, fake = the detached prediction (no path to the UNet)
        d_value = 0.0
        if self.opt_d is not None:
            self.opt_d.zero_grad(set_to_none=True)
            with self.precision.autocast():
                d_loss = self.reg.discriminator_loss(probs.detach(), onehot, x)
            self.scaler_d.scale(d_loss).backward()
            average_gradients(self.d_params, self.dist)
            self.scaler_d.step(self.opt_d)
            self.scaler_d.update()
            d_value = float(d_loss.detach())
            lap("discriminator")

        # segmenter update: L_seg + λ·L_reg; L_reg's gradient reaches the UNet through the frozen F
        self.opt_s.zero_grad(set_to_none=True)
        data_term, parts = segmentation_loss(self.seg_loss, logits, probs, y, onehot)
        lap("loss")
        if self.lam > 0:
            with self.precision.autocast():
                reg_term = self.reg.segmenter_term(probs, onehot, x).float()
            lap("regularizer")
        else:
            reg_term = torch.zeros((), device=device)
        loss = data_term + self.lam * reg_term
        self.scaler_s.scale(loss).backward()
        lap("backward")
        self.scaler_s.step(self.opt_s)
        self.scaler_s.update()
        lap("optimizer")
        return {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in parts.items()},
                "reg": float(reg_term.detach()), "d_loss": d_value}

    def state_dict(self) -> dict:
        return {"unet": self.unet.state_dict(), "opt_s": self.opt_s.state_dict(),
                "discriminator": self.reg.discriminator.state_dict() if self.opt_d is not None else None,
                "opt_d": self.opt_d.state_dict() if self.opt_d is not None else None}

    def load_state_dict(self, state: dict) -> None:
        self.unet.load_state_dict(state["unet"])
        self.opt_s.load_state_dict(state["opt_s"])
        if self.opt_d is not None:
            self.reg.discriminator.load_state_dict(state["discriminator"])
            self.opt_d.load_state_dict(state["opt_d"])


def train_segmenter(
    method: str,
    train: SliceSet,
    shape_ae: ShapeAutoEncoder | None,
    preset: Preset,
    out_dir: str | Path,
    *,
    device: torch.device,
    snapshot: SliceSet | None = None,
    resume: bool = False,
    progress: Progress = silent,
    dist: DistInfo = DistInfo(),
) -> list[dict]:
    """Train the UNet of ``method`` on ``train`` and write ``out_dir/{model.pt, history.jsonl, latent/}``.

    Args:
        method: "baseline", "adversarial", "shape" or "spar".
        train: the fold's training slices; the preset must be sized for ``train.num_classes``.
        shape_ae: the fold's frozen shape auto-encoder (F for ``shape``/``spar``; latent snapshots for all).
        snapshot: fixed slices whose codes F(y), F(ŷ) are saved at ``preset.train.snapshot_epochs``.
        resume: continue from ``out_dir/model.pt`` where an earlier run stopped (a finished run returns at once).
        dist: the torchrun process group (rank 0 alone writes).

    Returns:
        The history, one dict per epoch (every loss term, λ, seconds).
    """
    tc, folder = preset.train, MethodFolder(Path(out_dir))
    if preset.unet.num_classes != train.num_classes:
        raise SparError(f"preset {preset.name!r} is sized for {preset.unet.num_classes} classes, the data has "
                        f"{train.num_classes}: use preset.for_classes({train.num_classes})")
    trainer = SegmenterTrainer(method, preset, shape_ae, device=device, dist=dist)
    history = _resume(trainer, folder.model, method, device) if resume else []
    n, steps = len(train), epoch_steps(len(train), tc.batch_size, tc.steps_per_epoch)
    per_rank = max(1, tc.batch_size // dist.world_size)

    for epoch in range(len(history) + 1, tc.epochs + 1):
        # the epoch's order and augmentation come from generators fixed by (seed, epoch): a resumed run
        # draws exactly the batches an uninterrupted one would have
        trainer.train()
        order = epoch_order(n, tc.batch_size, tc.steps_per_epoch, epoch_generator(tc.seed, epoch, Stream.SEGMENTER_ORDER))
        aug_gen = epoch_generator(tc.seed, epoch, Stream.SEGMENTER_AUGMENT, dist.rank)
        sums: dict[str, float] = {}
        data_seconds, start = 0.0, time.perf_counter()
        for step in range(steps):
            # this rank's share of the batch, augmented on the device; the time it takes is the data time
            t0 = time.perf_counter()
            idx = order[step * tc.batch_size:(step + 1) * tc.batch_size][dist.rank::dist.world_size][:per_rank]
            x = train.images[idx].to(device, non_blocking=True)  # (B, K, S, S)
            y = train.labels[idx].to(device, non_blocking=True)  # (B, S, S)
            if tc.augment is not None:
                x, y = augment_batch(x, y, tc.augment, aug_gen)
                x = augment_intensity(x, tc.augment, aug_gen)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            data_seconds += time.perf_counter() - t0

            # one alternate update at this update's rate: D on truth vs detached prediction, then S on L_seg + λ·L_reg
            trainer.set_lr(tc.lr * lr_factor(tc.lr_schedule, (epoch - 1) * steps + step, tc.epochs * steps))
            for k, v in trainer.step(x, y).items():
                sums[k] = sums.get(k, 0.0) + v
            means = {k: v / (step + 1) for k, v in sums.items()}
            if step + 1 < steps:
                progress(ProgressEvent("segmenter", epoch, tc.epochs, step + 1, steps, means, label=method))

        # end of epoch: a history line; rank 0 writes the latent snapshot, then the checkpoint, atomically
        line = {"epoch": epoch, "method": method, "lambda": trainer.lam, "precision": trainer.precision.name,
                **means,
                "seconds": time.perf_counter() - start, "data_seconds": data_seconds}
        history.append(line)
        if dist.is_main:
            if shape_ae is not None and snapshot is not None and epoch in tc.snapshot_epochs:
                save_snapshot(trainer.unet, shape_ae, snapshot, folder.snapshot(epoch), epoch=epoch,
                              batch_size=tc.batch_size, precision=trainer.precision)
            state = trainer.state_dict()
            Checkpoint("unet", asdict(preset.unet), state.pop("unet"), method=method, preset=preset.name,
                       epoch=epoch, epochs=tc.epochs, precision=trainer.precision.name,
                       num_classes=train.num_classes, size=tc.size, history=tuple(history),
                       resume=state).save(folder.model)
            write_jsonl(folder.history, history)
        progress(ProgressEvent("segmenter", epoch, tc.epochs, steps, steps,
                               {k: v for k, v in line.items() if isinstance(v, float)}, label=method))
    return history


def _resume(trainer: SegmenterTrainer, path: Path, method: str, device: torch.device) -> list[dict]:
    """Load ``path`` into ``trainer`` when it exists; returns the history so far (one line per done epoch)."""
    if not path.is_file():
        return []
    try:
        record = Checkpoint.load(path, map_location=device)
    except SparError as err:  # truncated by a full disk, overwritten by hand: its epochs are done again
        note(f"{err}; training {method} from its first epoch again")
        path.unlink(missing_ok=True)
        return []
    if record.method != method:
        raise SparError(f"{path}: checkpoint of method {record.method!r}, not {method!r}")
    precision = record.precision or "fp32"  # written before precisions existed: fp32
    if precision != trainer.precision.name:
        raise SparError(f"{path}: trained in {precision} so far, here it would go on in "
                        f"{trainer.precision.name}; resume with --precision {precision}")
    trainer.load_state_dict({"unet": record.weights, **record.resume})
    history = list(record.history)
    if len(history) != record.epoch:
        raise SparError(f"{path}: checkpoint at epoch {record.epoch} holds {len(history)} history lines")
    return history


def load_unet(path: str | Path, device: torch.device | str = "cpu") -> tuple[UNet, Checkpoint]:
    """The trained UNet of a method folder's ``model.pt`` (eval mode) and its checkpoint's record."""
    unet, record = restore(path, "unet", lambda config: UNet(UNetConfig(**config)), device)
    missing = [k for k in ("method", "epoch", "size") if getattr(record, k) is None]
    if missing:
        raise SparError(f"{path}: not a spar segmenter checkpoint (no {', '.join(missing)})")
    return unet, record
