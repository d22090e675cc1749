"""Slicing and square resizing: exact label round trips, Dice under downsampling, normalization."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spar_core.errors import SparError
from spar_core.data.slicing import (
    SquareGeometry,
    from_slices,
    from_square,
    normalize_intensity,
    slices_to_volume,
    to_slices,
    to_square,
    volume_slices,
)


def random_labels(shape: tuple[int, ...], n_classes: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, n_classes, shape, generator=torch.Generator().manual_seed(seed))


def blobs(height: int, width: int) -> torch.Tensor:
    """(1, H, W) int64: three ellipses (bone-like blobs, 30-70 px radii) on background 0."""
    yy, xx = np.mgrid[:height, :width]
    out = np.zeros((height, width), np.int64)
    for label, (cy, cx, ry, rx) in enumerate([(60, 60, 45, 35), (150, 80, 40, 55), (110, 150, 70, 30)], 1):
        out[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = label
    return torch.from_numpy(out)[None]


def dice(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


@pytest.mark.parametrize(
    "height, width, size",
    [
        (64, 64, 64),  # S == P
        (48, 64, 64),  # H < W, pad only
        (64, 37, 64),  # W < H, odd padding
        (37, 51, 100),  # odd sizes, arbitrary upsampling
        (51, 37, 128),
        (224, 160, 256),  # paper's 256 from a non-square exam
        (1, 9, 13),
    ],
)
def test_native_square_native_is_exact_when_upsampling(height: int, width: int, size: int) -> None:
    geom = SquareGeometry(height, width, size)
    labels = random_labels((3, height, width))
    square = to_square(labels, geom, mode="nearest")
    assert square.shape == (3, size, size)
    assert torch.equal(from_square(square, geom, mode="nearest"), labels)


@pytest.mark.parametrize("height, width, k", [(64, 64, 2), (64, 48, 4), (45, 60, 3), (60, 45, 5), (99, 70, 3)])
def test_square_native_square_is_exact_when_size_divides_padded(height: int, width: int, k: int) -> None:
    """S = P/k: a network's S×S prediction survives native and back, on every pixel whose centre is inside."""
    geom = SquareGeometry(height, width, max(height, width) // k)
    square = random_labels((2, geom.size, geom.size), seed=1) + 1
    inside = to_square(torch.ones(1, height, width, dtype=torch.int64), geom, mode="nearest")
    native = from_square(square, geom, mode="nearest")
    assert torch.equal(to_square(native, geom, mode="nearest"), square * inside)
    # Native labels that are constant on the k×k blocks of the padded grid also round-trip exactly.
    full_blocks = to_square(torch.ones(1, height, width), geom, mode="bilinear") > 1 - 1e-6
    block_labels = from_square(square * full_blocks, geom, mode="nearest")
    assert torch.equal(from_square(to_square(block_labels, geom, mode="nearest"), geom, mode="nearest"), block_labels)


@pytest.mark.parametrize("height, width, size", [(224, 224, 96), (224, 200, 96), (210, 224, 100)])
def test_arbitrary_downsampling_keeps_dice_above_097(height: int, width: int, size: int) -> None:
    geom = SquareGeometry(height, width, size)
    labels = blobs(height, width)
    back = from_square(to_square(labels, geom, mode="nearest"), geom, mode="nearest")
    for structure in (1, 2, 3):
        assert dice(back == structure, labels == structure) >= 0.97


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.int16])
def test_label_dtype_and_values_are_preserved(dtype: torch.dtype) -> None:
    geom = SquareGeometry(30, 41, 23)
    labels = random_labels((2, 30, 41)).to(dtype)
    square = to_square(labels, geom, mode="nearest")
    back = from_square(square, geom, mode="nearest")
    assert square.dtype == back.dtype == dtype
    assert set(square.unique().tolist()) <= set(labels.unique().tolist()) | {0}


@pytest.mark.parametrize(
    "height, width, pad", [(64, 64, (0, 0, 0, 0)), (48, 64, (8, 8, 0, 0)), (64, 37, (0, 0, 13, 14))]
)
def test_geometry_pads_to_a_centred_square(height: int, width: int, pad: tuple[int, int, int, int]) -> None:
    geom = SquareGeometry(height, width, 32)
    assert geom.pad == pad and geom.padded == max(height, width)


def test_images_are_zero_padded_and_bilinear_inverse_is_close() -> None:
    geom = SquareGeometry(40, 64, 128)
    image = torch.rand(2, 3, 40, 64, generator=torch.Generator().manual_seed(0))
    square = to_square(image, geom, mode="bilinear")
    assert square.shape == (2, 3, 128, 128) and square.dtype == torch.float32
    assert float(square[..., :20, :].abs().max()) == 0.0  # top padding (12 native px -> 24 px)
    ones = torch.ones(1, 1, 40, 64)
    back = from_square(to_square(ones, geom, mode="bilinear"), geom, mode="bilinear")
    assert torch.allclose(back[..., 1:-1, :], ones[..., 1:-1, :])  # rows next to the zero padding blur


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_to_slices_and_from_slices_are_inverses(axis: int) -> None:
    volume = np.arange(4 * 5 * 6).reshape(4, 5, 6)
    slices = to_slices(volume, axis)
    assert slices.shape[0] == volume.shape[axis]
    assert np.array_equal(from_slices(slices, axis), volume)


@pytest.mark.parametrize("axis", [3, -4])
def test_bad_axis_names_slice_axis(axis: int) -> None:
    with pytest.raises(SparError, match="slice_axis"):
        to_slices(np.zeros((2, 3, 4)), axis)


def test_normalize_maps_percentiles_to_unit_range() -> None:
    image = np.random.default_rng(0).normal(1000.0, 200.0, (20, 20, 20))
    image[0, 0, 0] = 1e6  # a hot voxel must not squash the contrast
    out = normalize_intensity(image)
    assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == 1.0
    assert 0.4 < float(np.median(out)) < 0.6
    assert np.mean(out == 1.0) == pytest.approx(0.005, abs=0.002)


@pytest.mark.parametrize("value", [0.0, 7.5, -3.0])
def test_constant_image_normalizes_to_zeros(value: float) -> None:
    out = normalize_intensity(np.full((3, 4, 5), value))
    assert out.dtype == np.float32 and not out.any()


def test_normalize_rejects_nan() -> None:
    with pytest.raises(SparError, match="NaN"):
        normalize_intensity(np.array([[[np.nan, 1.0]]]))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_volume_slices_round_trip_recovers_labels(axis: int) -> None:
    shape = [12, 12, 12]
    shape[(axis + 1) % 3], shape[(axis + 2) % 3] = 30, 22
    label = np.random.default_rng(axis).integers(0, 4, shape)
    image = label * 100.0 + 5.0
    images, labels, geom = volume_slices(image, label, axis, size=64)
    assert images.shape == (12, 1, 64, 64) and images.dtype == torch.float32
    assert labels is not None and labels.shape == (12, 64, 64) and labels.dtype == torch.int64
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    # A perfect network at S >= 2 P: argmax of bilinearly resized one-hot probabilities is exact.
    probs = torch.nn.functional.one_hot(labels, 4).permute(0, 3, 1, 2).float()
    volume = slices_to_volume(probs, geom, axis)
    assert volume.shape == label.shape and volume.dtype == np.uint8
    assert np.array_equal(volume, label)


def test_context_stacks_each_slice_between_its_neighbours() -> None:
    from spar_core.data.slicing import with_context

    slices = np.arange(6, dtype=np.float32)[:, None, None] * np.ones((6, 2, 3), dtype=np.float32)
    out = with_context(slices, context=1, stride=2)
    assert out.shape == (6, 3, 2, 3)
    assert out[:, :, 0, 0].tolist() == [[0, 0, 2], [0, 1, 3], [0, 2, 4], [1, 3, 5], [2, 4, 5], [3, 5, 5]]
    image = np.random.default_rng(0).random((10, 12, 5)).astype(np.float32)
    flat, _, _ = volume_slices(image, None, 2, 16)
    deep, _, _ = volume_slices(image, None, 2, 16, context=2, stride=1)
    assert deep.shape == (5, 5, 16, 16)
    assert torch.equal(deep[:, 2], flat[:, 0])  # the middle channel is the slice itself
    assert torch.equal(deep[1, 3], flat[2, 0]) and torch.equal(deep[0, 0], flat[0, 0])


def test_context_in_mm_shows_neighbours_at_the_same_distance_whatever_the_slice_spacing() -> None:
    from spar_core.data.slicing import context_stride
    from spar_core.models.unet import UNetConfig

    assert [context_stride(1, 4.0, s) for s in (1.0, 2.11, 3.0, 6.0, 12.0)] == [4, 2, 1, 1, 1]
    assert context_stride(3, 0.0, 1.0) == 3  # no distance: the stride in slices as given
    assert UNetConfig(context=2, context_mm=4.0).stride_along(0.5) == 8
    with pytest.raises(SparError, match="context_mm"):
        context_stride(1, -1.0, 1.0)
    with pytest.raises(SparError, match="context_mm"):
        UNetConfig(context=1, context_mm=float("nan"))
