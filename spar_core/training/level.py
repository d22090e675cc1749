"""Training the level model of a fold (:mod:`spar_core.models.level_net`) from its training exams' truth.

Per exam and class (one step beyond the first member, each member, one step beyond the last), crops are cut
around the class's centre with a jitter of position and scale (:mod:`spar_core.data.level_crops`); each batch draws
the classes evenly, then covers a random band of each crop (a side, a width) with background, so that an image
border or the edge of a fill says nothing of the level, and applies the segmenter's intensity transforms
(another contrast must not change the level). The held-out exams' crops, centred on their truth, give the
model's accuracy per class (recorded with it; never used to choose anything).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from spar_core.data.augment import AugmentConfig, augment_intensity
from spar_core.data.level_crops import CropGeometry, crops, inside, row_centres
from spar_core.data.nifti import Volume
from spar_core.data.slicing import normalize_intensity
from spar_core.errors import SparError
from spar_core.models.level_net import LevelNet, LevelNetConfig
from spar_core.progress import Progress, ProgressEvent, silent
from spar_core.training.checkpoint import load_checkpoint, save_checkpoint

LEVEL_FORMAT = 1
DRAWS = 24  # jittered crops per (exam, class)
ALONG_JITTER = 0.12  # SD of the centre's jitter along the row, in gaps (≈ 4 mm on the spine)
ACROSS_JITTER = 0.1  # half-range across the row, in gaps
SLICE_JITTER_MM = 3.0  # half-range along the slice axis
SCALE_JITTER = 0.1  # the crop's extent times a factor in [1 − s, 1 + s]
BAND_P = 0.5  # the share of crops with a band of background
BAND_SIDES = (0.35, 0.35, 0.15, 0.15)  # before / after the centre along the row, then either side across it
BAND_WIDTH = (0.05, 0.7)  # the band's width as a share of the crop's side


@dataclass(frozen=True)
class LevelTrainConfig:
    """steps of ``batch`` crops at ``lr`` (AdamW, cosine decay); ``augment``: the intensity transforms (None: none)."""

    steps: int = 1500
    batch: int = 64
    lr: float = 2e-3
    seed: int = 0
    augment: AugmentConfig | None = None


class LevelModel:
    """A trained level model: the network, the crop geometry it was trained on, the row's labels (in order), and
    what its training recorded (``report``: held-out accuracy per class, seconds, steps)."""

    def __init__(self, net: LevelNet, geometry: CropGeometry, labels: Sequence[int],
                 report: dict[str, Any] | None = None) -> None:
        self.net = net.eval()
        self.geometry = geometry
        self.labels = tuple(int(v) for v in labels)
        self.report = dict(report or {})
        if net.cfg.classes != len(self.labels) + 2:
            raise SparError(f"level model: {net.cfg.classes} classes for a row of {len(self.labels)} members; "
                            "expected members + 2")

    @property
    def class_names(self) -> list[str]:
        return ["before", *[str(v) for v in self.labels], "after"]

    @torch.no_grad()
    def log_probs(self, image: np.ndarray, spacing: Sequence[float], centres: np.ndarray) -> np.ndarray:
        """(N, classes) log-probabilities of the crops of ``image`` (normalized to [0, 1]) centred on ``centres``
        ((N, 3) voxel coordinates)."""
        device = next(self.net.parameters()).device
        batch = torch.from_numpy(crops(image, spacing, centres, self.geometry)).to(device)
        if not len(batch):
            return np.zeros((0, self.net.cfg.classes))
        return F.log_softmax(self.net(batch).float(), dim=1).cpu().numpy().astype(float)

    def save(self, path: str | Path) -> None:
        save_checkpoint({"format": LEVEL_FORMAT, "network": "level", "config": {
            **self.net.cfg.__dict__, "pixels": list(self.net.cfg.pixels)}, "geometry": self.geometry.to_json(),
            "labels": list(self.labels), "report": self.report, "state_dict": self.net.state_dict()}, path)

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> "LevelModel":
        state = load_checkpoint(path, device)
        try:
            if state.get("network") != "level":
                what = state.get("network") if isinstance(state.get("network"), str) else "no network spar knows"
                raise SparError(f"{path}: not a level model (it holds {what})")
            config = dict(state["config"])
            net = LevelNet(LevelNetConfig(**{**config, "pixels": tuple(config["pixels"])}))
            net.load_state_dict(state["state_dict"])
            return cls(net.to(device), CropGeometry.from_json(state["geometry"]), state["labels"],
                       state.get("report"))
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
            raise SparError(f"{path}: not a readable level model ({type(err).__name__}: "
                            f"{str(err).splitlines()[0] if str(err) else ''})") from None


def row_gap_mm(volumes: Sequence[Volume], labels: Sequence[int], axis: int) -> float:
    """The mean distance (mm) between consecutive members along ``axis`` over the exams' truth."""
    gaps = []
    for vol in volumes:
        members = row_centres(vol.label, labels)[1:-1, axis]
        steps = np.abs(np.diff(members[np.isfinite(members)])) * float(vol.spacing[axis])
        gaps += steps.tolist()
    if not gaps:
        raise SparError("level model: no exam holds two members of the row; nothing to learn the gap from")
    return float(np.mean(gaps))


def exam_crops(vol: Volume, geometry: CropGeometry, labels: Sequence[int], rng: np.random.Generator | None,
               draws: int = DRAWS) -> tuple[np.ndarray, np.ndarray]:
    """(crops (N, C, H, W), classes (N,)) of one exam's truth: ``draws`` jittered crops per class whose centre lies
    in the image along the row (``rng`` None: one crop per class, centred, no jitter)."""
    centres = row_centres(vol.label, labels)
    classes = np.flatnonzero(inside(centres, vol.image.shape, geometry.row_axis))
    if not len(classes):
        return np.zeros((0, len(geometry.channel_mm), *geometry.pixels), np.float32), np.zeros(0, np.int64)
    image = normalize_intensity(vol.image)
    if rng is None:
        return crops(image, vol.spacing, centres[classes], geometry), classes.astype(np.int64)
    along, across, channel = geometry.axes
    n = len(classes) * draws
    where = np.repeat(centres[classes], draws, axis=0)
    gap = geometry.gap_mm
    where[:, along] += rng.normal(0, ALONG_JITTER * gap, n) / vol.spacing[along]
    where[:, across] += rng.uniform(-ACROSS_JITTER * gap, ACROSS_JITTER * gap, n) / vol.spacing[across]
    where[:, channel] += rng.uniform(-SLICE_JITTER_MM, SLICE_JITTER_MM, n) / vol.spacing[channel]
    scales = rng.uniform(1 - SCALE_JITTER, 1 + SCALE_JITTER, n)
    return crops(image, vol.spacing, where, geometry, scales), np.repeat(classes, draws).astype(np.int64)


def _bands(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Crops (B, C, H, W) with a band on a random side of a random share of them: background (a dark fill, as a
    field of view moved in a study), or the crop mirrored at the band's edge (as the image is mirrored beyond its
    border): an edge of either kind can lie anywhere, through any member, so neither names the class."""
    b, _, h, w = x.shape
    u = torch.rand(b, 4, generator=generator)
    sides = torch.multinomial(torch.tensor(BAND_SIDES), b, replacement=True, generator=generator)
    width = BAND_WIDTH[0] + (BAND_WIDTH[1] - BAND_WIDTH[0]) * u[:, 1]
    on = u[:, 0] < BAND_P
    mirror = u[:, 3] < 0.5
    # band sizes in pixels along the side's axis; a mirrored band at most half the side (it reflects the rest)
    size = torch.where(sides < 2, h, w).float()
    k = torch.clamp((width * size).round().long(), min=1)
    k = torch.where(mirror, torch.minimum(k, (size / 2).long()), k)
    rows = torch.arange(h).expand(b, h)
    cols = torch.arange(w).expand(b, w)
    kr, kc = k[:, None], k[:, None]
    # where each pixel is read from: itself, or its mirror image across the band's edge
    row_src = torch.where((sides == 0)[:, None] & (rows < kr), 2 * kr - 1 - rows,
                          torch.where((sides == 1)[:, None] & (rows >= h - kr), 2 * (h - kr) - 1 - rows, rows))
    col_src = torch.where((sides == 2)[:, None] & (cols < kc), 2 * kc - 1 - cols,
                          torch.where((sides == 3)[:, None] & (cols >= w - kc), 2 * (w - kc) - 1 - cols, cols))
    row_src, col_src = row_src.clamp(0, h - 1).to(x.device), col_src.clamp(0, w - 1).to(x.device)
    index = row_src[:, None, :, None].expand(-1, x.shape[1], -1, w)
    mirrored = x.gather(2, index).gather(3, col_src[:, None, None, :].expand(-1, x.shape[1], h, -1))
    covered = torch.stack([rows < kr, rows >= h - kr], dim=1)  # (B, 2, H)
    in_rows = covered[torch.arange(b), sides.clamp(max=1)] & (sides < 2)[:, None]  # (B, H)
    in_cols = torch.stack([cols < kc, cols >= w - kc], dim=1)[torch.arange(b), (sides - 2).clamp(min=0)] \
        & (sides >= 2)[:, None]  # (B, W)
    band = (in_rows[:, :, None] | in_cols[:, None, :]) & on[:, None, None]  # (B, H, W)
    fill = (u[:, 2] * 0.03)[:, None, None, None].to(x.device, x.dtype)  # the background's faint signal
    banded = torch.where(mirror[:, None, None, None].to(x.device), mirrored, fill.expand_as(x))
    return torch.where(band[:, None].to(x.device), banded, x)


def train_level_model(train: Sequence[Volume], labels: Sequence[int], row_axis: int, ascending: bool,
                      cfg: LevelTrainConfig = LevelTrainConfig(), *, device: torch.device = torch.device("cpu"),
                      held_out: Sequence[Volume] = (), progress: Progress = silent) -> LevelModel:
    """A level model trained on the truth of ``train`` for the row ``labels`` along ``row_axis``; its accuracy per
    class on ``held_out`` (centred crops of their truth) in its ``report``.

    Raises:
        SparError: no training exam holds a crop of some class (the row's ends never in view).
    """
    start = time.perf_counter()
    if not train:
        raise SparError("level model: no training exam")
    labels = [int(v) for v in labels]
    geometry = CropGeometry(row_axis, ascending, train[0].slice_axis, row_gap_mm(train, labels, row_axis))
    rng = np.random.default_rng(cfg.seed)
    parts = [exam_crops(vol, geometry, labels, rng) for vol in train]
    x = torch.from_numpy(np.concatenate([p[0] for p in parts])).to(torch.float16)  # halves the pool's memory
    y = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    classes = len(labels) + 2
    counts = torch.bincount(y, minlength=classes)
    if (counts == 0).any():
        missing = [(["before", *map(str, labels), "after"])[i] for i in torch.nonzero(counts == 0).flatten().tolist()]
        raise SparError(f"level model: no training exam has the class(es) {', '.join(missing)} in view; the "
                        "row's ends must be in the field of view of some training exams")
    by_class = [torch.nonzero(y == c).flatten() for c in range(classes)]
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    net = LevelNet(LevelNetConfig(in_channels=len(geometry.channel_mm), classes=classes,
                                  pixels=geometry.pixels)).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / cfg.steps)))
    net.train()
    every = max(1, cfg.steps // 10)
    for step in range(cfg.steps):
        # class-balanced batch: a class, then one of its crops
        pick = torch.randint(0, classes, (cfg.batch,), generator=generator)
        index = torch.stack([by_class[c][torch.randint(0, len(by_class[c]), (1,), generator=generator)][0]
                             for c in pick.tolist()])
        batch = _bands(x[index].float(), generator).to(device)
        if cfg.augment is not None:
            batch = augment_intensity(batch, cfg.augment, generator)
        loss = F.cross_entropy(net(batch), y[index].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % every == 0 or step + 1 == cfg.steps:  # ten log lines, one per tenth of the steps
            progress(ProgressEvent("level", math.ceil((step + 1) / every), math.ceil(cfg.steps / every), 1, 1,
                                   {"loss": loss.item()}))
    model = LevelModel(net.eval(), geometry, labels)
    model.report = {"steps": cfg.steps, "train_exams": len(train), "train_crops": int(len(y)),
                    "seconds": round(time.perf_counter() - start, 1), **held_out_accuracy(model, held_out)}
    return model


def held_out_accuracy(model: LevelModel, exams: Sequence[Volume]) -> dict[str, Any]:
    """Accuracy per class (and overall) of crops centred on the truth of ``exams``; empty without exams."""
    hits: dict[str, list[bool]] = {name: [] for name in model.class_names}
    for vol in exams:
        centres = row_centres(vol.label, model.labels)
        y = np.flatnonzero(inside(centres, vol.image.shape, model.geometry.row_axis))
        if not len(y):
            continue
        guess = model.log_probs(normalize_intensity(vol.image), vol.spacing, centres[y]).argmax(axis=1)
        for truth, g in zip(y, guess):
            hits[model.class_names[truth]].append(bool(truth == g))
    if not any(hits.values()):
        return {}
    every = [h for v in hits.values() for h in v]
    return {"held_out_crops": len(every), "held_out_accuracy": round(float(np.mean(every)), 4),
            "held_out_accuracy_by_class": {k: (round(float(np.mean(v)), 4) if v else None) for k, v in hits.items()},
            "held_out_crops_by_class": {k: len(v) for k, v in hits.items()}}
