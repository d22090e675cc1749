"""Batched affine augmentation: masks follow images, labels stay valid, seeds reproduce."""

from __future__ import annotations

import pytest
import torch

from spar_core.data.augment import AugmentConfig, augment_batch
from spar_core.errors import SparError

STRONG = AugmentConfig(scale=0.2, rotation_deg=30.0, shift=0.15)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def squares(batch: int = 8, height: int = 64, width: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Image 1 inside a centred square (label 1), 0 outside (label 0)."""
    labels = torch.zeros(batch, height, width, dtype=torch.int64)
    labels[:, height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = 1
    return labels[:, None].float(), labels


def multi_label(batch: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.zeros(batch, 48, 40, dtype=torch.int64)
    labels[:, 5:20, 5:30], labels[:, 25:45, 10:35], labels[:, 30:40, 15:25] = 3, 5, 7
    return torch.rand(batch, 2, 48, 40, generator=gen(9)), labels


@pytest.mark.parametrize("height, width", [(64, 64), (48, 80), (81, 47)])
def test_mask_moves_with_image(height: int, width: int) -> None:
    images, labels = squares(height=height, width=width)
    out_images, out_labels = augment_batch(images, labels, STRONG, gen(0))
    assert not torch.equal(out_labels, labels)  # something moved
    for image, label in zip(out_images[:, 0], out_labels):
        a, b = label == 1, image > 0.5
        assert float((a & b).sum() / (a | b).sum()) > 0.9


def test_labels_stay_integral_and_take_only_input_values() -> None:
    images, labels = multi_label()
    out_images, out_labels = augment_batch(images, labels, STRONG, gen(1))
    assert out_labels.dtype == torch.int64
    assert set(out_labels.unique().tolist()) <= {0, 3, 5, 7}
    assert out_images.dtype == images.dtype and float(out_images.min()) >= 0.0 and float(out_images.max()) <= 1.0


@pytest.mark.parametrize(
    "cfg", [AugmentConfig(0.0, 0.0, 0.0), AugmentConfig(0.2, 30.0, 0.1, p=0.0)], ids=["zero ranges", "p=0"]
)
def test_identity_config_returns_input_unchanged(cfg: AugmentConfig) -> None:
    images, labels = multi_label()
    out_images, out_labels = augment_batch(images, labels, cfg, gen(0))
    assert torch.equal(out_images, images) and torch.equal(out_labels, labels)


def test_p_augments_that_fraction_and_leaves_others_bit_identical() -> None:
    images, labels = squares(batch=200, height=16, width=16)
    out_images, _ = augment_batch(images, labels, AugmentConfig(p=0.3), gen(0))
    unchanged = (out_images == images).flatten(1).all(dim=1)
    assert 0.2 < 1 - float(unchanged.float().mean()) < 0.4


def test_same_seed_same_batch_other_seed_other_batch() -> None:
    images, labels = multi_label()
    first = augment_batch(images, labels, STRONG, gen(5))
    again = augment_batch(images, labels, STRONG, gen(5))
    other = augment_batch(images, labels, STRONG, gen(6))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0]) and not torch.equal(first[1], other[1])


def test_batch_is_vectorized_per_sample() -> None:
    """Samples get different affines; a sample's result does not depend on the others' content."""
    images, labels = squares(batch=4)
    out, _ = augment_batch(images, labels, STRONG, gen(2))
    assert not torch.equal(out[0], out[1])
    images2 = images.clone()
    images2[1:] = 0.0
    out2, _ = augment_batch(images2, labels, STRONG, gen(2))
    assert torch.equal(out2[0], out[0])


@pytest.mark.parametrize("device", DEVICES)
def test_shapes_dtypes_and_device_preserved(device: str) -> None:
    images, labels = multi_label()
    out_images, out_labels = augment_batch(images.to(device), labels.to(device), STRONG, gen(3))
    assert out_images.shape == images.shape and out_labels.shape == labels.shape
    assert out_images.device.type == out_labels.device.type == device
    assert out_labels.dtype == torch.int64


def test_scaling_changes_area_within_the_configured_zoom() -> None:
    images, labels = squares(batch=64, height=96, width=96)
    _, out = augment_batch(images, labels, AugmentConfig(scale=0.2, rotation_deg=0.0, shift=0.0), gen(4))
    ratio = out.flatten(1).sum(1).float() / labels.flatten(1).sum(1).float()
    assert float(ratio.min()) >= 0.8**2 - 0.05 and float(ratio.max()) <= 1.2**2 + 0.05
    assert float(ratio.max() - ratio.min()) > 0.3  # zoom really varies per sample


@pytest.mark.parametrize(
    "kwargs, field",
    [({"scale": 1.0}, "scale"), ({"rotation_deg": -1.0}, "rotation_deg"), ({"shift": 2.0}, "shift"), ({"p": 1.5}, "p")],
)
def test_bad_config_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(SparError, match=f"{field}="):
        AugmentConfig(**kwargs)


def test_rotation_is_rigid_in_pixels_on_non_square_images() -> None:
    """A disk stays a disk when H != W (rotating normalized coordinates would shear it into an ellipse)."""
    yy, xx = torch.meshgrid(torch.arange(60.0), torch.arange(120.0), indexing="ij")
    disk = (((yy - 29.5) ** 2 + (xx - 59.5) ** 2) <= 20**2).long().expand(16, -1, -1)
    _, out = augment_batch(disk[:, None].float(), disk, AugmentConfig(0.0, 90.0, 0.0), gen(7))
    rows, cols = out.any(dim=2).sum(dim=1), out.any(dim=1).sum(dim=1)  # bounding box (B,), (B,)
    assert torch.equal(out.sum(dim=(1, 2)) > 0, torch.ones(16, dtype=torch.bool))
    assert int((rows - cols).abs().max()) <= 2


def test_intensity_augmentation_is_off_by_default_and_stays_in_range() -> None:
    from spar_core.data.augment import augment_intensity

    images = torch.rand(6, 1, 16, 16)
    gen = torch.Generator().manual_seed(0)
    assert augment_intensity(images, AugmentConfig(), gen) is images
    assert torch.equal(torch.rand(1, generator=gen), torch.rand(1, generator=torch.Generator().manual_seed(0)))
    out = augment_intensity(images, AugmentConfig(gamma=0.5, contrast=0.25), torch.Generator().manual_seed(1))
    assert out.shape == images.shape and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    changed = (out - images).abs().flatten(1).amax(1)
    assert bool((changed > 1e-3).all())  # every slice gets its own gamma and contrast
    again = augment_intensity(images, AugmentConfig(gamma=0.5, contrast=0.25), torch.Generator().manual_seed(1))
    assert torch.equal(out, again)
    # gamma alone keeps the order of intensities within a slice (a monotonic map)
    g = augment_intensity(images, AugmentConfig(gamma=0.5), torch.Generator().manual_seed(2))
    assert torch.equal(images[0].flatten().argsort(), g[0].flatten().argsort())


def test_intensity_augmentation_rejects_bad_ranges() -> None:
    for bad in ({"gamma": -0.1}, {"contrast": 1.0}):
        with pytest.raises(SparError):
            AugmentConfig(**bad)


NNUNET_LIKE = AugmentConfig(gamma=0.5, contrast=0.25, brightness=0.25, low_res=1.0, blur=1.0, noise=0.05,
                            p_intensity=0.3)


def test_nnunet_intensity_transforms_hit_their_share_of_samples_and_every_channel_alike() -> None:
    from spar_core.data.augment import augment_intensity

    images = torch.rand(400, 1, 12, 12).expand(400, 3, 12, 12).contiguous()  # three identical "neighbour" slices
    out = augment_intensity(images, NNUNET_LIKE, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    untouched = (out - images).abs().flatten(1).amax(1) == 0
    # each of six transforms leaves a sample alone with probability 0.7: 0.7**6 ≈ 0.118 of 400 samples
    assert 0.07 < float(untouched.float().mean()) < 0.17
    # one draw per sample for all its channels, except the noise (a field per pixel)
    quiet = AugmentConfig(**{**NNUNET_LIKE.__dict__, "noise": 0.0})
    calm = augment_intensity(images, quiet, torch.Generator().manual_seed(0))
    assert torch.allclose(calm[:, 0], calm[:, 2]) and torch.allclose(calm[:, 0], calm[:, 1])
    assert torch.equal(out, augment_intensity(images, NNUNET_LIKE, torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("field, value", [("blur", 2.0), ("low_res", 2.0)])
def test_blur_and_low_resolution_smooth_an_edge_and_keep_the_mean(field: str, value: float) -> None:
    from spar_core.data.augment import augment_intensity

    images = torch.zeros(4, 1, 32, 32)
    images[:, :, :, 16:] = 1.0  # a sharp vertical edge
    out = augment_intensity(images, AugmentConfig(**{field: value}), torch.Generator().manual_seed(3))
    step = (out[:, 0, :, 1:] - out[:, 0, :, :-1]).amax(dim=(1, 2))
    smoothed = step < 0.999
    assert bool(smoothed.any())  # a draw of σ / factor near 0 may leave a sample almost as it was
    assert torch.allclose(out.mean(dim=(1, 2, 3)), images.mean(dim=(1, 2, 3)), atol=0.02)


def test_noise_and_brightness_change_what_they_say() -> None:
    from spar_core.data.augment import augment_intensity

    images = torch.full((64, 1, 16, 16), 0.5)
    noisy = augment_intensity(images, AugmentConfig(noise=0.1), torch.Generator().manual_seed(4))
    spread = noisy.flatten(1).std(1)
    assert float(spread.max()) <= 0.1 * 1.3 and float(spread.mean()) > 0.02  # σ drawn in [0, 0.1]
    bright = augment_intensity(images, AugmentConfig(brightness=0.2), torch.Generator().manual_seed(4))
    factor = bright.flatten(1).mean(1) / 0.5
    assert float(factor.min()) >= 0.8 - 1e-6 and float(factor.max()) <= 1.2 + 1e-6 and float(factor.std()) > 0.05
    for bad in ({"brightness": 1.0}, {"noise": 0.6}, {"blur": -1.0}, {"low_res": 5.0}, {"p_intensity": 1.5}):
        with pytest.raises(SparError, match=next(iter(bad))):
            AugmentConfig(**bad)


def _whole_batch_reference(images: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """The intensity transforms as they ran on the whole batch (a neutral value for the samples not drawn), the
    form before each transform ran on its own samples alone; without noise."""
    import math

    import torch.nn.functional as F

    from spar_core.data.augment import _blur

    b = images.shape[0]
    u = torch.rand(b, 12, generator=generator, dtype=torch.float64)
    torch.randint(0, 2**62, (1,), generator=generator)
    on, mag = u[:, :6] < cfg.p_intensity, u[:, 6:] * 2 - 1

    def per_sample(values: torch.Tensor, column: int, neutral: float) -> torch.Tensor:
        return torch.where(on[:, column], values, torch.full_like(values, neutral)).float()[:, None, None, None]

    out = images.clamp(0.0, 1.0)
    out = out ** per_sample(torch.exp(math.log1p(cfg.gamma) * mag[:, 0]), 0, 1.0)
    out = out * per_sample(1 + cfg.brightness * mag[:, 1], 1, 1.0)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * per_sample(1 + cfg.contrast * mag[:, 2], 2, 1.0) + mean
    factors = 1 + cfg.low_res * (mag[:, 3] + 1) / 2
    h, w = out.shape[-2:]
    for i in torch.nonzero(on[:, 3]).flatten().tolist():
        small = F.interpolate(out[i:i + 1], size=(round(h / float(factors[i])), round(w / float(factors[i]))),
                              mode="area")
        out[i:i + 1] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    sigma = torch.where(on[:, 4], cfg.blur * (mag[:, 4] + 1) / 2, torch.zeros(b, dtype=torch.float64))
    return _blur(out, sigma.float(), max(1, math.ceil(3 * cfg.blur))).clamp(0.0, 1.0)


def test_each_intensity_transform_on_its_own_samples_gives_what_the_whole_batch_form_gave() -> None:
    """Running a transform on the samples drawn for it alone changes its cost, not its output: the same draws give
    the same images (noise aside: the same σ per sample, another field), and the samples not drawn stay as
    they were."""
    from spar_core.data.augment import augment_intensity

    images = torch.rand(64, 3, 24, 24)
    quiet = AugmentConfig(**{**NNUNET_LIKE.__dict__, "noise": 0.0})
    for seed in range(3):
        new = augment_intensity(images, quiet, torch.Generator().manual_seed(seed))
        old = _whole_batch_reference(images, quiet, torch.Generator().manual_seed(seed))
        assert torch.allclose(new, old, atol=1e-5)
    # the noise: only the samples drawn for it change, each by a field of the σ drawn for it
    flat = torch.full((400, 1, 32, 32), 0.5)
    cfg = AugmentConfig(noise=0.1, p_intensity=0.3)
    noisy = augment_intensity(flat, cfg, torch.Generator().manual_seed(5))
    u = torch.rand(400, 12, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    drawn, sigma = u[:, 5] < 0.3, 0.1 * u[:, 11]
    spread = (noisy - flat).flatten(1).std(1).double()
    assert torch.equal(spread == 0, ~drawn | (sigma == 0))
    assert torch.allclose(spread[drawn], sigma[drawn], rtol=0.1, atol=2e-3)
