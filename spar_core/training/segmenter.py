"""Segmenter training for any of the four methods: CE(ŷ, y) + λ·L_reg, discriminator and segmenter
updated alternately at every batch (paper §2.4).

Each epoch appends a history line and writes an atomic checkpoint (weights, optimizer states, history); the
randomness of epoch e comes from generators fixed by (seed, e), so ``resume=True`` carries an interrupted run
to exactly the result of an uninterrupted one on the CPU.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from spar_core.data.augment import augment_batch
from spar_core.paths import save_npz, write_jsonl
from spar_core.runs.run_folder import MethodFolder
from spar_core.training.checkpoint import load_checkpoint, save_checkpoint
from spar_core.training.device import autocast, grad_scaler
from spar_core.training.distributed import DistInfo, average_gradients
from spar_core.errors import SparError
from spar_core.methods import METHODS
from spar_core.training.snapshots import structure_codes
from spar_core.models import ShapeAutoEncoder, UNet, UNetConfig
from spar_core.training.presets import Preset
from spar_core.progress import Progress, ProgressEvent, silent
from spar_core.training.regularizers import build_regularizer
from spar_core.training.losses import segmentation_loss
from spar_core.data.slice_set import SliceSet
from spar_core.training.shape_ae import epoch_generator



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
        self.scaler_s, self.scaler_d = grad_scaler(device), grad_scaler(device)
        self.model: torch.nn.Module = self.unet
        if dist.enabled:
            self.model = DistributedDataParallel(self.unet, device_ids=[device.index] if device.type == "cuda" else None)

    def train(self) -> None:
        self.unet.train()
        self.reg.train()

    def step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """One alternate update on images x (B, 1, S, S) and labels y (B, S, S); returns the loss terms."""
        device = self.device
        onehot = F.one_hot(y, self.num_classes).permute(0, 3, 1, 2).float()  # (B, C, S, S)
        with autocast(device):
            logits = self.model(x)
        probs = torch.softmax(logits.float(), dim=1)  # F and D always see probabilities
        d_value = 0.0
        if self.opt_d is not None:
            self.opt_d.zero_grad(set_to_none=True)
            with autocast(device):
                d_loss = self.reg.discriminator_loss(probs.detach(), onehot, x)
            self.scaler_d.scale(d_loss).backward()
            average_gradients(self.d_params, self.dist)
            self.scaler_d.step(self.opt_d)
            self.scaler_d.update()
            d_value = float(d_loss.detach())
        self.opt_s.zero_grad(set_to_none=True)
        data_term, parts = segmentation_loss(self.seg_loss, logits, probs, y, onehot)
        if self.lam > 0:
            with autocast(device):
                reg_term = self.reg.segmenter_term(probs, onehot, x).float()
        else:
            reg_term = torch.zeros((), device=device)
        loss = data_term + self.lam * reg_term
        self.scaler_s.scale(loss).backward()
        self.scaler_s.step(self.opt_s)
        self.scaler_s.update()
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
    folder = MethodFolder(Path(out_dir))
    tc = preset.train
    if preset.unet.num_classes != train.num_classes:
        raise SparError(f"preset {preset.name!r} is sized for {preset.unet.num_classes} classes, the data has "
                        f"{train.num_classes}: use preset.for_classes({train.num_classes})")
    trainer = SegmenterTrainer(method, preset, shape_ae, device=device, dist=dist)
    history: list[dict] = []
    start_epoch = 1
    ckpt_path = folder.model
    if resume and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path, map_location=device)
        if state.get("method") != method:
            raise SparError(f"{ckpt_path}: checkpoint of method {state.get('method')!r}, not {method!r}")
        trainer.load_state_dict(state)
        history = list(state["history"])
        start_epoch = int(state["epoch"]) + 1
        if start_epoch > tc.epochs:
            return history

    n = len(train)
    per_rank = max(1, tc.batch_size // dist.world_size)
    steps = max(1, math.ceil(n / tc.batch_size))
    for epoch in range(start_epoch, tc.epochs + 1):
        trainer.train()
        order = torch.randperm(n, generator=epoch_generator(tc.seed, epoch, stream=3))
        aug_gen = epoch_generator(tc.seed, epoch, stream=4 + dist.rank)
        sums: dict[str, float] = {}
        data_seconds, start = 0.0, time.perf_counter()
        for step in range(steps):
            t0 = time.perf_counter()
            idx = order[step * tc.batch_size:(step + 1) * tc.batch_size][dist.rank::dist.world_size][:per_rank]
            x = train.images[idx].to(device, non_blocking=True)  # (B, 1, S, S)
            y = train.labels[idx].to(device, non_blocking=True)  # (B, S, S)
            if tc.augment is not None:
                x, y = augment_batch(x, y, tc.augment, aug_gen)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            data_seconds += time.perf_counter() - t0
            for k, v in trainer.step(x, y).items():
                sums[k] = sums.get(k, 0.0) + v
            means = {k: v / (step + 1) for k, v in sums.items()}
            if step + 1 < steps:
                progress(ProgressEvent("segmenter", epoch, tc.epochs, step + 1, steps, means, label=method))

        line = {"epoch": epoch, "method": method, "lambda": trainer.lam, **means,
                "seconds": time.perf_counter() - start, "data_seconds": data_seconds}
        history.append(line)
        if dist.is_main:
            if shape_ae is not None and snapshot is not None and epoch in tc.snapshot_epochs:
                save_snapshot(trainer.unet, shape_ae, snapshot, folder.snapshot(epoch),
                              epoch=epoch, batch_size=tc.batch_size, device=device)
            save_checkpoint({"format": 1, "method": method, "preset": preset.name, "epoch": epoch,
                             "epochs": tc.epochs, "num_classes": train.num_classes, "size": tc.size,
                             "unet_config": asdict(preset.unet), "history": history, **trainer.state_dict()},
                            ckpt_path)
            write_jsonl(folder.history, history)
        progress(ProgressEvent("segmenter", epoch, tc.epochs, steps, steps,
                               {k: v for k, v in line.items() if isinstance(v, float)}, label=method))
    return history


@torch.no_grad()
def save_snapshot(
    unet: UNet, shape_ae: ShapeAutoEncoder, snapshot: SliceSet, path: Path, *,
    epoch: int, batch_size: int, device: torch.device,
) -> None:
    """Codes F(y) and F(ŷ) of each structure's 2D mask on the fixed snapshot slices, globally max-pooled."""
    was_training = unet.training
    unet.eval()
    parts = []
    for start in range(0, len(snapshot), batch_size):
        sel = torch.arange(start, min(start + batch_size, len(snapshot)))
        with autocast(device):
            logits = unet(snapshot.images[sel].to(device))
        probs = torch.softmax(logits.float(), 1)
        true, pred, structure, row = structure_codes(shape_ae, probs, snapshot.labels[sel].to(device),
                                                     snapshot.num_classes)
        parts.append((true, pred, structure, row + start))
    unet.train(was_training)
    true, pred, structure, row = (np.concatenate([p[i] for p in parts]) for i in range(4))
    save_npz(path, epoch=np.int64(epoch), codes_true=true, codes_pred=pred, structure=structure, row=row,
             case=np.asarray(snapshot.case_ids, dtype=str)[row], slice=snapshot.slice_index[row])


def load_unet(path: str | Path, device: torch.device | str = "cpu") -> tuple[UNet, dict]:
    """The trained UNet of a method folder's ``model.pt`` (eval mode) and its checkpoint metadata."""
    state = load_checkpoint(path, map_location=device)
    try:
        unet = UNet(UNetConfig(**state["unet_config"]))
        unet.load_state_dict(state["unet"])
    except (KeyError, TypeError, RuntimeError) as err:
        raise SparError(f"{path}: not a spar segmenter checkpoint ({err})") from None
    meta = {k: state[k] for k in ("method", "preset", "epoch", "epochs", "num_classes", "size")}
    return unet.to(device).eval(), meta
