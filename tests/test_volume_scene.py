"""The viewer's packed scene: RAS+ axes that keep every voxel's world position, lossless labels, a quantized image
within half a level, maps on their scale, and bad scenes refused."""

from __future__ import annotations

import numpy as np
import pytest

from spar_core.errors import SparError
from spar_core.figures.volume_scene import (
    IMAGE_LEVELS,
    Panel,
    canonical,
    canonical_index,
    read_scene,
    volume_scene,
)

NAMES = {1: "L1", 2: "L2"}
# LPS-like axes, permuted and flipped: voxel axis 0 runs posterior, 1 runs inferior, 2 runs left.
AFFINE = np.array([[0.0, 0.0, 2.0, -10.0], [-0.5, 0.0, 0.0, 30.0], [0.0, -0.8, 0.0, 40.0], [0.0, 0.0, 0.0, 1.0]])


def _exam(shape: tuple[int, int, int] = (12, 10, 7)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    image = rng.normal(300.0, 80.0, shape).astype(np.float32)
    label = np.zeros(shape, dtype=np.uint8)
    label[2:6, 3:7, 1:4] = 1
    label[7:10, 2:5, 4:6] = 2
    return image, label


def _world(affine: np.ndarray, index) -> np.ndarray:
    return affine[:3, :3] @ np.asarray(index, dtype=float) + affine[:3, 3]


def test_canonical_axes_keep_each_voxels_world_position() -> None:
    image, label = _exam()
    moved, ras, ornt = canonical(label, AFFINE)
    assert np.all(np.diag(ras[:3, :3]) > 0) and np.count_nonzero(ras[:3, :3]) == 3  # RAS+, axis-aligned
    assert moved.shape == (7, 12, 10)
    for index in [(0, 0, 0), (3, 5, 2), (11, 9, 6), (7, 2, 4)]:
        target = canonical_index(index, label.shape, ornt)
        np.testing.assert_allclose(_world(ras, target), _world(AFFINE, index))
        assert moved[tuple(target)] == label[index]


def test_scene_round_trip_labels_exact_image_within_half_a_level() -> None:
    image, label = _exam()
    scene = volume_scene(image, AFFINE, layers={"truth": label, "pred": np.roll(label, 1, axis=0)},
                         panels=[Panel("truth", fill="truth"), Panel("pred", fill="pred", outline="truth")],
                         names=NAMES, slice_axis=2, focus=(3, 5, 2), title="t", exam="case_7")
    header, arrays = read_scene(scene)
    moved_label, _, ornt = canonical(label, AFFINE)
    np.testing.assert_array_equal(arrays[("layer", "truth")], moved_label)
    step = (image.max() - image.min()) / IMAGE_LEVELS
    assert np.abs(arrays[("image", "image")] - canonical(image, AFFINE)[0]).max() <= step / 2 + 1e-3
    assert header["plane"] == "sagittal"  # voxel axis 2 runs left-right
    assert header["cursor"] == canonical_index((3, 5, 2), label.shape, ornt)
    assert header["spacing"] == pytest.approx([2.0, 0.5, 0.8])
    assert [s["name"] for s in header["structures"]] == ["L1", "L2"]
    assert header["exam"] == "case_7" and header["source_shape"] == [12, 10, 7]
    lo, hi = header["window"]
    assert lo == pytest.approx(np.percentile(image, 0.5)) and hi == pytest.approx(np.percentile(image, 99.5))


def test_maps_are_scaled_on_their_own_or_a_common_maximum() -> None:
    image, label = _exam()
    a = np.zeros(image.shape, np.float32)
    a[1, 1, 1] = 0.5
    b = np.zeros(image.shape, np.float32)
    b[2, 2, 2] = 1.0
    panels = [Panel("a", heat="a"), Panel("b", heat="b")]
    own = read_scene(volume_scene(image, AFFINE, layers={}, panels=panels, names=NAMES, maps={"a": a, "b": b}))[1]
    assert own[("map", "a")].max() == pytest.approx(0.5) and own[("map", "b")].max() == pytest.approx(1.0)
    common = read_scene(volume_scene(image, AFFINE, layers={}, panels=panels, names=NAMES, maps={"a": a, "b": b},
                                     map_max=1.0))[1]
    assert common[("map", "a")].max() == pytest.approx(0.5, abs=1 / 255)


def test_labels_above_255_travel_as_uint16() -> None:
    image, label = _exam()
    big = label.astype(np.int32) * 300
    header, arrays = read_scene(volume_scene(image, AFFINE, layers={"x": big}, panels=[Panel("x", fill="x")],
                                             names={300: "a", 600: "b"}))
    assert arrays[("layer", "x")].dtype == np.uint16 and arrays[("layer", "x")].max() == 600


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(layers={"x": np.zeros((3, 3, 3), np.uint8)}, panels=[]), "layer 'x'"),
        (dict(layers={}, panels=[Panel("p", fill="truth")]), "fill 'truth'"),
        (dict(layers={}, panels=[Panel("p", heat="entropy")]), "heat 'entropy'"),
        (dict(layers={"x": -np.ones((12, 10, 7), np.int16)}, panels=[]), "outside 0..65535"),
    ],
)
def test_bad_scenes_are_refused(kwargs: dict, message: str) -> None:
    image, _ = _exam()
    with pytest.raises(SparError, match=message):
        volume_scene(image, AFFINE, names=NAMES, **kwargs)


def test_not_a_scene_is_refused() -> None:
    with pytest.raises(SparError, match="SPV1"):
        read_scene(b"PK\x03\x04 not a scene")
