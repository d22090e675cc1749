"""Named presets: one dataclass per component, grouped so that CLI, app, notebooks and tests agree.

- ``paper``: the paper's setting (256×256 slices, batch 32, 10 epochs, Adam 1e-4, shape AE lr 1e-2, 512-d
  codes); meant for a GPU.
- ``cpu``: small enough that the four methods train and evaluate in minutes on two CPU cores.
- ``tiny``: seconds; tests, CI and the notebooks' smoke mode.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass, replace

from spar_core.data.augment import AugmentConfig
from spar_core.data.dataset import Dataset
from spar_core.errors import SparError
from spar_core.methods import METHODS
from spar_core.training.names import PRECISIONS, PRESET_NAMES
from spar_core.training.schedule import SCHEDULES
from spar_core.models import CodeDiscriminatorConfig, MaskDiscriminatorConfig, ShapeAEConfig, UNetConfig

DEFAULT_LAMBDA = 1e-2


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by the four methods (only L_reg differs between them)."""

    size: int  # slices are padded to square and resized to size×size
    batch_size: int
    epochs: int
    # Updates per epoch (nnU-Net's 250 iterations); None: one pass over the training slices, as in the paper.
    steps_per_epoch: int | None = None
    lr: float = 1e-4  # segmenter and discriminators (Adam)
    lr_schedule: str = "constant"  # or "poly" (nnU-Net) or "cosine" (warm-up + cosine); spar_core.training.schedule
    ae_epochs: int = 10
    ae_lr: float = 1e-2
    ae_batch_size: int = 32
    ae_steps_per_epoch: int | None = None  # as steps_per_epoch, for the shape auto-encoder
    lambdas: dict[str, float] = field(
        default_factory=lambda: {key: DEFAULT_LAMBDA for key, m in METHODS.items() if m.regularized}
    )
    augment: AugmentConfig | None = AugmentConfig()
    # Fraction of the slices without any structure kept for training (they teach "no bone here").
    empty_fraction: float = 0.2
    # The segmenter's data term (spar_core.training.losses): "ce" as in the paper, or "ce+dice".
    seg_loss: str = "ce"
    # fp32, bf16 or fp16 autocast, or "auto": the fastest the hardware runs natively (spar_core.training.precision).
    precision: str = "auto"
    snapshot_epochs: tuple[int, ...] = (1, 2, 3, 4, 5, 10)
    snapshot_slices: int = 64  # fixed slices whose codes are saved at each snapshot epoch
    seed: int = 0
    # updates of a fold's level model (rows only: --chain-prior level); 1,500 of 64 crops take ≈ 1–2 min on two
    # cores and name held-out crops' members at ≈ 96 % (bench/results/levels/)
    level_steps: int = 1500

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise SparError(f"precision: {self.precision!r} is unknown; expected one of {', '.join(PRECISIONS)}")
        if self.lr_schedule not in SCHEDULES:
            raise SparError(f"lr_schedule: {self.lr_schedule!r} is unknown; expected one of {', '.join(SCHEDULES)}")

    def lam(self, method: str) -> float:
        """λ of ``method`` (0 for methods without a regularization term)."""
        return self.lambdas.get(method, 0.0)


@dataclass(frozen=True)
class SegmenterSettings:
    """The segmenter's (and the mask discriminator's) size: channels double at each of ``depth`` down-samplings
    from ``base_channels``; ``context`` neighbouring slices on each side as input channels (2.5D), ``context_mm``
    apart in each exam (0: adjacent slices)."""

    base_channels: int
    depth: int
    context: int = 0
    context_mm: float = 0.0


@dataclass(frozen=True)
class ShapePriorSettings:
    """The shape auto-encoder's size: ``depth`` stages from ``base_channels``, codes of ``latent_channels``."""

    base_channels: int
    depth: int
    latent_channels: int


@dataclass(frozen=True)
class Preset:
    """A named recipe: the networks' sizes and the optimisation, each size given once.

    The networks' configurations are derived from it (:attr:`unet`, :attr:`shape_ae`, :attr:`code_disc`,
    :attr:`mask_disc`), the number of classes from the dataset: :meth:`for_classes` sizes a preset for one.
    """

    name: str
    segmenter: SegmenterSettings
    shape_prior: ShapePriorSettings
    train: TrainConfig
    num_classes: int | None = None  # background included; None until sized for a dataset

    def for_classes(self, num_classes: int) -> "Preset":
        """The same preset with every model sized for ``num_classes`` (background included)."""
        return replace(self, num_classes=num_classes)

    def for_dataset(self, dataset: Dataset) -> "Preset":
        """The same preset sized for ``dataset``'s labels (background included)."""
        return self.for_classes(len(dataset.labels))

    def with_precision(self, precision: str | None) -> "Preset":
        """The same preset trained in ``precision`` (None: unchanged)."""
        return self if precision is None else replace(self, train=replace(self.train, precision=precision))

    def with_seed(self, seed: int | None) -> "Preset":
        """The same preset trained (and split) from ``seed`` (None: unchanged)."""
        return self if seed is None else replace(self, train=replace(self.train, seed=seed))

    def with_size(self, size: int) -> "Preset":
        """The same preset at another slice size (the code discriminator follows the latent map's size)."""
        return replace(self, train=replace(self.train, size=size))

    def _classes(self) -> int:
        if self.num_classes is None:
            raise SparError(f"preset {self.name!r} is not sized for a dataset yet: call for_classes(n)")
        return self.num_classes

    @property
    def latent_size(self) -> int:
        """Side of the shape code map F(y): the slice size divided by the encoder's down-sampling."""
        return self.train.size // 2**self.shape_prior.depth

    @property
    def unet(self) -> UNetConfig:
        s = self.segmenter
        return UNetConfig(in_channels=1, num_classes=self._classes(), base_channels=s.base_channels, depth=s.depth,
                          context=s.context, context_mm=s.context_mm)

    @property
    def shape_ae(self) -> ShapeAEConfig:
        p = self.shape_prior
        return ShapeAEConfig(num_classes=self._classes(), base_channels=p.base_channels, depth=p.depth,
                             latent_channels=p.latent_channels)

    @property
    def code_disc(self) -> CodeDiscriminatorConfig:
        return CodeDiscriminatorConfig(latent_channels=self.shape_prior.latent_channels, spatial=self.latent_size)

    @property
    def mask_disc(self) -> MaskDiscriminatorConfig:
        return MaskDiscriminatorConfig(num_classes=self._classes(), with_image=False,
                                       base_channels=self.segmenter.base_channels, depth=self.segmenter.depth)

    def settings(self) -> dict:
        """Every setting of the sized preset as plain JSON values (tuples as lists), for run.json: a run records
        what it was trained with, and a preset whose definition changed since can be told apart."""
        return json.loads(json.dumps({"name": self.name, **{k: asdict(getattr(self, k)) for k in _NETWORKS},
                                      "train": asdict(self.train)}))

    @staticmethod
    def default_settings() -> dict:
        """The default of every setting that has one, shaped like :meth:`settings`. A run that began before a
        setting existed recorded none for it; the setting's default is what that run was trained with."""
        return {name: _defaults(cls) for name, cls in {**_NETWORKS, "train": TrainConfig}.items()}


# What run.json's preset_settings records, network by network (the shape every earlier run has).
_NETWORKS: dict[str, type] = {"unet": UNetConfig, "shape_ae": ShapeAEConfig, "code_disc": CodeDiscriminatorConfig,
                              "mask_disc": MaskDiscriminatorConfig}


def _defaults(cls: type) -> dict:
    out = {}
    for f in fields(cls):
        if f.default is not MISSING:
            value = f.default
        elif f.default_factory is not MISSING:
            value = f.default_factory()
        else:
            continue
        out[f.name] = json.loads(json.dumps(asdict(value) if is_dataclass(value) else value))
    return out


PRESETS: dict[str, Preset] = {
    "paper": Preset(
        "paper",
        segmenter=SegmenterSettings(base_channels=64, depth=4),
        shape_prior=ShapePriorSettings(base_channels=32, depth=5, latent_channels=512),
        train=TrainConfig(size=256, batch_size=32, epochs=10, ae_epochs=20, ae_lr=1e-2, ae_batch_size=32),
    ),
    "cpu": Preset(
        # Why each setting departs from the paper: bench/results/cpu_preset/README.md and bench/results/recipe/
        # (the runs that chose them).
        "cpu",
        # depth 4: the bottleneck sees the whole slice, which tells neighbouring bones apart. 2.5D: the slices
        # ≈ 4 and 8 mm away on each side as channels; with the chain's positions it labelled every inner-split
        # spine exam at the right level in three seeds of three (2D: two)
        segmenter=SegmenterSettings(base_channels=12, depth=4, context=2, context_mm=4.0),
        shape_prior=ShapePriorSettings(base_channels=8, depth=3, latent_channels=64),
        train=TrainConfig(size=96,  # small slices for a CPU; the bones stay several pixels thick
                          batch_size=8,  # same epoch cost on a CPU, four times the paper's updates
                          epochs=12,
                          steps_per_epoch=125,  # a budget in updates: 1,500 whatever the cohort's size
                          lr=3e-3, lr_schedule="poly",  # nnU-Net's decay; with it 3e-3 trains, constant 3e-3 diverged
                          ae_epochs=10, ae_steps_per_epoch=50, ae_lr=3e-3,  # 500 updates on the poly decay:
                          ae_batch_size=32,  # fewer (a small cohort's 110) or 1e-2 leave bones out of the prior
                          seg_loss="ce+dice",  # CE alone learned small bones late or never in 12 epochs
                          # nnU-Net's intensity transforms, each on a fifth of the slices, within the narrow spatial
                          # range: another contrast costs far less (γ 0.5: −0.4 points, γ 2: −16 instead of −28 on
                          # the spine 5-fold), the clean exams the same within 0.3 (bench/results/recipe_fov/)
                          augment=AugmentConfig(gamma=0.5, contrast=0.25, brightness=0.25, low_res=1.0, blur=1.0,
                                                noise=0.05, p_intensity=0.2),
                          snapshot_epochs=(1, 2, 3, 4, 5, 12), snapshot_slices=48),
    ),
    "tiny": Preset(
        "tiny",
        segmenter=SegmenterSettings(base_channels=4, depth=2),
        shape_prior=ShapePriorSettings(base_channels=4, depth=2, latent_channels=16),
        train=TrainConfig(size=32, batch_size=8, epochs=2, lr=1e-3, ae_epochs=2, ae_lr=1e-2, ae_batch_size=16,
                          snapshot_epochs=(1, 2), snapshot_slices=16, level_steps=20),
    ),
}


# ``cpu`` trained so that the row's place in the field of view tells nothing: shifts of ±30 % of the side (one
# end of the row cut off), zoom ±25 %, rotation 15°, with the same intensity transforms. Chosen on an inner split
# over three seeds (bench/results/recipe_fov/: a field of view moved by 45 mm cost far less than with the narrow
# range, both judged under the volume ordering); on the spine 5-fold it lost 19 Dice points in-cohort and left
# 7 of 40 exams a level off (bench/results/spine_cv5_fov/), so it is not the default. Where exams place the field
# of view differently, pair it with a ``--chain-prior`` other than ``position``.
PRESETS["cpu_fov"] = replace(PRESETS["cpu"], name="cpu_fov", train=replace(
    PRESETS["cpu"].train, augment=replace(PRESETS["cpu"].train.augment, scale=0.25, rotation_deg=15.0, shift=0.3)))


if tuple(PRESETS) != PRESET_NAMES:  # the names the command line offers are the presets defined here
    raise AssertionError(f"spar_core.training.names.PRESET_NAMES {PRESET_NAMES} != presets {tuple(PRESETS)}")


def preset_for(name: str, precision: str | None = None, seed: int | None = None) -> Preset:
    """The preset a command names (``--preset``), trained in ``precision`` and from ``seed`` (None: its own)."""
    return get_preset(name).with_precision(precision).with_seed(seed)


def recorded_preset(name: object) -> Preset | None:
    """The preset a run or a checkpoint recorded by name; None for a name this version does not know."""
    return PRESETS.get(str(name))


def get_preset(name: str) -> Preset:
    """The preset called ``name``; a SparError naming ``--preset`` and the valid names otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise SparError(f"--preset: unknown preset {name!r}; expected one of {', '.join(PRESETS)}") from None
