"""Outlier scores of one exam computed from its predicted label volume alone (no ground truth).

The prediction is sliced as the segmenter saw it (S×S slices along the slice axis) and fed as hard one-hot
masks: stored predictions are labels, not probabilities, and one-hot masks are what the shape AE learned from.
Scores (higher = more suspicious, except plausibility):

- ``plausibility``: mean over slices holding a structure of D(F(ŷ)), SPAR's code discriminator probability
  that the slice's code is a true shape's. Low = implausible. D and F see the slice's whole multi-structure
  mask, as in training (D never saw one-structure masks). Needs the fold's ``spar`` model (its
  discriminator), whatever method is being scored.
- ``recon_error``: mean over (slice, structure) pairs of 1 − Dice(ŷ_b, [argmax G(F(ŷ)) = b]): a mask the shape
  AE cannot reproduce lies off the manifold of training shapes. Dice of hard masks rather than
  cross-entropy: bounded in [0, 1], comparable between structures, and not dominated by a few confident
  background pixels.
- ``knn_distance``: mean over (slice, structure) pairs of the distance of maxpool(F(ŷ_b)) (one-structure mask,
  the latent snapshots' code) to its k-th (k = 5, fewer when few) nearest true code of the same structure
  among the fold's training slices.
- ``components``: Σ over structures of (3D connected components − 1) in the raw prediction.
- ``volume_z``: max over structures of |z| of the predicted log(1 + volume in mL) against the training exams'
  true ones (log: bone volumes grow multiplicatively, ×6 from 4 to 17 years); needs ≥ 3 training exams.
- ``placement_z``, ``intensity_z``: where the exam lies against the training exams (:mod:`spar_core.triage.ood`).

The training codes, volumes, placements and intensity features of a fold are cached in
``RUN/folds/<k>/train_codes.npz``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.spatial import cKDTree

from spar_core.paths import load_arrays, save_npz
from spar_core.training.checkpoint import Checkpoint
from spar_core.data.dataset import load_dataset, load_volume
from spar_core.errors import SparError
from spar_core.methods import SPAR
from spar_core.models import CodeDiscriminator, CodeDiscriminatorConfig, ShapeAutoEncoder
from spar_core.postprocessing.components import count_components
from spar_core.training.presets import recorded_preset
from spar_core.layout.run_folder import RunFolder
from spar_core.data.slicing import SquareGeometry, to_slices, to_square
from spar_core.data.voxels import voxel_ml
from spar_core.training.shape_ae import load_shape_ae
from spar_core.triage.ood import intensity_features, ood_scores, placement
from spar_core.triage.ranking import OOD_SCORES
from spar_core.models.outputs import one_hot

KNN_K = 5
MIN_TRAIN_VOLUMES = 3  # a standard deviation of fewer volumes says nothing
_BATCH = 64


@dataclass
class TriageModels:
    """The fold's frozen shape AE, SPAR's code discriminator (None without a ``spar`` model) and slice size."""

    ae: ShapeAutoEncoder
    discriminator: CodeDiscriminator | None
    size: int
    device: torch.device = torch.device("cpu")


@dataclass
class TrainingReference:
    """True codes (M, L) with their structure (M,), true volumes per structure (label → mL array), and per
    training exam where its structures sit (N, 3) and its intensity features (N, F) (:mod:`spar_core.triage.ood`)."""

    codes: np.ndarray
    structure: np.ndarray
    volumes: dict[int, np.ndarray]
    placement: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    intensity: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    _trees: dict[int, cKDTree] = field(default_factory=dict, repr=False)

    def kth_distance(self, codes: np.ndarray, label: int, k: int = KNN_K) -> np.ndarray:
        """Distance of each code (m, L) to its k-th nearest training code of structure ``label`` (nan if none)."""
        if label not in self._trees:
            own = self.codes[self.structure == label]
            self._trees[label] = cKDTree(own) if len(own) else None
        tree = self._trees[label]
        if tree is None or len(codes) == 0:
            return np.full(len(codes), np.nan)
        k = min(k, tree.n)
        dist, _ = tree.query(codes, k=k)
        return dist if k == 1 else dist[:, -1]


@dataclass
class ExamScores:
    """One exam's scores (nan = not available) and the per (slice, structure) values behind them: slice,
    structure, label, recon_error, plausibility (of the whole slice)."""

    scores: dict[str, float]
    pairs: pd.DataFrame

    def worst_slices(self, count: int = 3) -> list[int]:
        """Slices (native index) with the worst shapes: max recon_error + (1 − min plausibility) per slice."""
        if self.pairs.empty:
            return []
        per = self.pairs.groupby("slice").agg(recon=("recon_error", "max"), plaus=("plausibility", "min"))
        badness = (per["recon"].fillna(0.0) + (1.0 - per["plaus"]).fillna(0.0)).rename("badness")
        ranked = badness.reset_index().sort_values(["badness", "slice"], ascending=[False, True], kind="stable")
        return [int(s) for s in ranked["slice"].head(count)]


# ---------------------------------------------------------------------------------------------- models


def load_code_discriminator(path: Path, ae: ShapeAutoEncoder, size: int, device: torch.device) -> CodeDiscriminator:
    """SPAR's code discriminator from a ``spar`` checkpoint, sized for the AE's latent map at ``size``."""
    record = Checkpoint.load(path, map_location=device)
    weights = record.resume.get("discriminator")
    if not weights:
        raise SparError(f"{path}: no code discriminator in this checkpoint (expected a 'spar' model)")
    preset = recorded_preset(record.preset)
    min_channels = preset.code_disc.min_channels if preset is not None else CodeDiscriminatorConfig().min_channels
    cfg = CodeDiscriminatorConfig(latent_channels=ae.cfg.latent_channels, spatial=size // 2**ae.cfg.depth,
                                  min_channels=min_channels)
    disc = CodeDiscriminator(cfg)
    try:
        disc.load_state_dict(weights)
    except RuntimeError as err:
        raise SparError(f"{path}: code discriminator does not match the fold's shape AE "
                        f"({str(err).splitlines()[0]})") from None
    return disc.to(device).eval().requires_grad_(False)


def load_triage_models(run: RunFolder, fold: int, method: str, device: torch.device | str = "cpu") -> TriageModels:
    """The fold's AE, its ``spar`` discriminator when trained, and the slice size of ``method``'s model."""
    device = torch.device(device)
    model = run.model_path(fold, method)
    size = Checkpoint.load(model).size
    if not isinstance(size, int):
        raise SparError(f"{model}: checkpoint has no slice size")
    ae = load_shape_ae(run.shape_ae_path(fold), device)
    spar = run.model_path(fold, SPAR)
    disc = load_code_discriminator(spar, ae, size, device) if spar.is_file() else None
    return TriageModels(ae, disc, size, device)


# ---------------------------------------------------------------------------------------------- masks, codes


def exam_masks(labels: np.ndarray, slice_axis: int, size: int) -> torch.Tensor:
    """A 3D label volume as the network sees it: (N, size, size) int64 slices along ``slice_axis``."""
    slices = np.ascontiguousarray(to_slices(np.asarray(labels).astype(np.int64, copy=False), slice_axis))
    geom = SquareGeometry(int(slices.shape[1]), int(slices.shape[2]), int(size))
    return to_square(torch.from_numpy(slices), geom, mode="nearest")


def _onehot(masks: torch.Tensor, num_classes: int) -> torch.Tensor:
    return one_hot(masks.clamp(max=num_classes - 1), num_classes)  # (B, C, S, S)


@torch.no_grad()
def label_codes(models: TriageModels, masks: torch.Tensor, label: int, num_classes: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """(slices holding ``label``, their pooled codes maxpool(F(ŷ_b)) (m, L)): the latent snapshots' codes."""
    rows = torch.nonzero((masks == label).flatten(1).any(1)).flatten()
    codes = [np.zeros((0, models.ae.cfg.latent_channels), np.float32)]
    for start in range(0, len(rows), _BATCH):
        onehot = _onehot(masks[rows[start:start + _BATCH]], num_classes).to(models.device)
        codes.append(models.ae.structure_codes(onehot, label).cpu().numpy())
    return rows.numpy(), np.concatenate(codes)


@torch.no_grad()
def slice_scores(models: TriageModels, masks: torch.Tensor, structures: dict[str, int]) -> pd.DataFrame:
    """Per (slice, structure) pair: 1 − Dice of the structure in G(F(ŷ)), and D(F(ŷ)) of its slice (nan
    without a discriminator). F, G and D see the whole multi-structure mask of the slice, as in training."""
    num_classes = max(structures.values()) + 1
    rows = torch.nonzero((masks > 0).flatten(1).any(1)).flatten()
    parts = []
    for start in range(0, len(rows), _BATCH):
        sel = rows[start:start + _BATCH]
        y = masks[sel].to(models.device)  # (B, S, S)
        z = models.ae.encode(_onehot(y, num_classes))  # (B, L, h, w)
        recon = models.ae.decoder(z).argmax(1)  # (B, S, S)
        plaus = (models.discriminator.prob(z).cpu().numpy() if models.discriminator is not None
                 else np.full(len(sel), np.nan))
        for name, value in structures.items():
            truth, rec = (y == value).flatten(1), (recon == value).flatten(1)
            present = truth.any(1).cpu().numpy()
            dice = 2.0 * (truth & rec).sum(1) / (truth.sum(1) + rec.sum(1)).clamp(min=1)
            parts.append(pd.DataFrame({"slice": sel.numpy()[present], "structure": name, "label": value,
                                       "recon_error": (1.0 - dice).cpu().numpy()[present],
                                       "plausibility": plaus[present]}))
    columns = ["slice", "structure", "label", "recon_error", "plausibility"]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return table.sort_values(["slice", "label"], kind="stable").reset_index(drop=True)


def score_exam(
    labels: np.ndarray,
    spacing: tuple[float, float, float],
    slice_axis: int,
    models: TriageModels,
    structures: dict[str, int],
    reference: TrainingReference | None = None,
    image: np.ndarray | None = None,
) -> ExamScores:
    """Every outlier score of one predicted label volume (no ground truth needed).

    Args:
        labels: (X, Y, Z) raw predicted labels on the exam's native grid.
        spacing: voxel size in mm (volumes in mL come from it).
        slice_axis: the axis the segmenter sliced along.
        models: the fold's shape AE and (optional) SPAR discriminator.
        structures: name → label value of the structures to score (background excluded).
        reference: the fold's training codes and volumes; without it knn_distance, volume_z, placement_z and
            intensity_z are nan.
        image: the exam's image (on the grid of ``labels``); without it intensity_z is nan.

    Returns:
        :class:`ExamScores` with ``SCORES`` (nan when not available) and one row per (slice, structure) pair.
    """
    labels = np.asarray(labels)
    num_classes = max(structures.values()) + 1
    masks = exam_masks(labels, slice_axis, models.size)
    table = slice_scores(models, masks, structures)
    ml_per_voxel = voxel_ml(spacing)
    knn, zs, components = [], [], 0
    for value in structures.values():
        if reference is not None:
            knn.append(reference.kth_distance(label_codes(models, masks, value, num_classes)[1], value))
            train = np.log1p(reference.volumes.get(value, np.zeros(0)))
            if len(train) >= MIN_TRAIN_VOLUMES and np.std(train, ddof=1) > 0:
                zs.append((np.log1p(np.count_nonzero(labels == value) * ml_per_voxel) - train.mean())
                          / np.std(train, ddof=1))
        components += max(count_components(labels == value) - 1, 0)
    per_slice = table.drop_duplicates("slice")["plausibility"].to_numpy(dtype=float)
    scores = {
        "plausibility": _mean(per_slice),
        "recon_error": _mean(table["recon_error"].to_numpy(dtype=float)),
        "knn_distance": _mean(np.concatenate(knn)) if knn else np.nan,
        "components": float(components),
        "volume_z": float(np.max(np.abs(zs))) if zs else np.nan,
        **(ood_scores(image, labels, spacing, reference.placement, reference.intensity) if reference is not None
           else dict.fromkeys(OOD_SCORES, np.nan)),
    }
    return ExamScores(scores, table)


def _mean(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else np.nan


# ---------------------------------------------------------------------------------------------- training codes


def _fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def training_reference(run: RunFolder, fold: int, models: TriageModels) -> TrainingReference:
    """True codes, volumes, placements and intensity features of the fold's training exams, from the cache or
    computed (and cached).

    The cache is valid for one shape AE (file fingerprint), slice size and training list.

    Raises:
        SparError: no cache and the run's dataset (run.json "dataset") cannot be read.
    """
    config = run.read_config()
    train = list(run.read_split(fold).train)
    cache = run.train_codes_path(fold)
    stamp = np.asarray([_fingerprint(run.shape_ae_path(fold)), str(models.size), *train])
    if cache.is_file():  # a cache: one that does not read, or was made for other codes, is made again
        try:
            cached = load_arrays(cache, ("stamp", "codes", "structure", "vol_label", "vol_ml", "placement",
                                         "intensity"), "")
        except SparError:
            cached = None
        if cached is not None and np.array_equal(cached["stamp"], stamp):
            return _reference_from(cached)
    dataset = load_dataset(config.get("dataset", ""))
    structures = dataset.structures
    num_classes = max(structures.values()) + 1
    codes, labels, cases, slices, vol_case, vol_label, vol_ml = [], [], [], [], [], [], []
    placements, intensities = [], []
    for case_id in train:
        if dataset.case(case_id).label_path is None:
            raise SparError(f"{dataset.root}: training case {case_id!r} has no label file")
        exam = load_volume(dataset, case_id)
        truth, spacing = exam.label, exam.spacing
        placements.append(placement(truth, spacing))
        intensities.append(intensity_features(exam.image, spacing))
        masks = exam_masks(truth, exam.slice_axis, models.size)
        for value in structures.values():
            rows, got = label_codes(models, masks, value, num_classes)
            codes.append(got)
            labels.append(np.full(len(got), value))
            cases.extend([case_id] * len(got))
            slices.append(rows)
            vol_case.append(case_id)
            vol_label.append(value)
            vol_ml.append(np.count_nonzero(truth == value) * voxel_ml(spacing))
    arrays = {"codes": np.concatenate(codes).astype(np.float32), "structure": np.concatenate(labels),
              "case": np.asarray(cases, dtype=str), "slice": np.concatenate(slices),
              "vol_case": np.asarray(vol_case, dtype=str), "vol_label": np.asarray(vol_label),
              "vol_ml": np.asarray(vol_ml), "placement": np.asarray(placements, dtype=float),
              "intensity": np.asarray(intensities, dtype=float), "stamp": stamp}
    save_npz(cache, **arrays)
    return _reference_from(arrays)


def _reference_from(arrays: dict[str, np.ndarray]) -> TrainingReference:
    vol_label, vol_ml = arrays["vol_label"], arrays["vol_ml"]
    volumes = {int(v): vol_ml[vol_label == v] for v in np.unique(vol_label)}
    return TrainingReference(arrays["codes"], arrays["structure"], volumes, arrays["placement"], arrays["intensity"])
