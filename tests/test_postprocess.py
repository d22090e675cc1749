"""Post-processing: islands go, gaps and cavities close with a radius in mm per axis, neighbours never grow into
each other, objects on the border are not eroded, and the input is never modified."""

from __future__ import annotations

import numpy as np
import pytest

from spar_core.errors import SparError
from spar_core.postprocessing.components import count_components, largest_component
from spar_core.postprocessing.steps import PostprocessConfig, ball_mm, closing_mm, postprocess

ISO = (1.0, 1.0, 1.0)
ANISO = (0.5, 0.5, 3.0)


def box(shape, lo, hi, value=1, dtype=np.uint8) -> np.ndarray:
    out = np.zeros(shape, dtype=dtype)
    out[tuple(slice(a, b) for a, b in zip(lo, hi))] = value
    return out


def add(volume: np.ndarray, lo, hi, value) -> np.ndarray:
    volume[tuple(slice(a, b) for a, b in zip(lo, hi))] = value
    return volume


# ---------------------------------------------------------------------------------------------- ball_mm


@pytest.mark.parametrize(
    "spacing, radius, shape",
    [
        ((0.5, 0.5, 3.0), 2.0, (9, 9, 1)),  # 4 voxels in-plane, 0 across slices
        ((1.0, 1.0, 1.0), 1.0, (3, 3, 3)),
        ((0.5, 0.5, 3.0), 1.5, (7, 7, 1)),
        ((1.0, 1.0, 1.0), 0.0, (1, 1, 1)),
        ((0.7, 1.0, 2.0), 2.0, (5, 5, 3)),
        ((float(np.float32(0.3)),) * 3, 0.9, (7, 7, 7)),  # float32 header zooms: 0.3 is 0.30000001
    ],
)
def test_ball_mm_half_widths_follow_spacing(spacing, radius, shape) -> None:
    ball = ball_mm(spacing, radius)
    assert ball.shape == shape and ball.dtype == bool
    assert ball[tuple(n // 2 for n in shape)]
    assert np.array_equal(ball, ball[::-1, ::-1, ::-1])  # symmetric


def test_ball_mm_is_an_ellipsoid_not_a_box() -> None:
    ball = ball_mm(ISO, 2.0)
    assert ball.sum() == 33  # voxel centres within 2 mm: 1 + 6 + 12 + 8 + 6
    assert not ball[0, 0, 0] and ball[0, 2, 2] and ball[1, 1, 2]


# ---------------------------------------------------------------------------------------------- components


def test_largest_component_removes_island_and_keeps_larger() -> None:
    mask = box((20, 20, 10), (2, 2, 2), (10, 10, 8))
    add(mask, (14, 14, 4), (16, 16, 6), 1)  # 8-voxel island
    out = largest_component(mask, 3)
    assert out.dtype == bool
    assert out.sum() == 8 * 8 * 6 and not out[14:16, 14:16, 4:6].any()
    assert count_components(mask, 3) == 2 and count_components(out, 3) == 1


@pytest.mark.parametrize("connectivity, expected", [(1, 2), (2, 1), (3, 1)])
def test_connectivity_decides_whether_edge_neighbours_touch(connectivity, expected) -> None:
    mask = np.zeros((6, 6, 6), dtype=bool)
    mask[1, 1, 2] = mask[2, 2, 2] = True  # share an edge, not a face
    assert count_components(mask, connectivity) == expected


def test_corner_neighbours_only_join_with_connectivity_3() -> None:
    mask = np.zeros((6, 6, 6), dtype=bool)
    mask[1, 1, 1] = mask[2, 2, 2] = True
    assert [count_components(mask, c) for c in (1, 2, 3)] == [2, 2, 1]


def test_count_components_of_empty_mask_is_zero() -> None:
    assert count_components(np.zeros((4, 4, 4), bool)) == 0
    assert not largest_component(np.zeros((4, 4, 4), bool)).any()


# ---------------------------------------------------------------------------------------------- closing


def test_closing_fills_one_voxel_gap_and_internal_cavity() -> None:
    slit = box((24, 24, 24), (4, 4, 4), (20, 20, 20), dtype=bool)
    slit[11, 4:20, 4:20] = False  # a 1-voxel-wide slit right through the block...
    slit[11, 11, 11] = True  # ...with one voxel holding the halves together
    closed = closing_mm(slit, ISO, 2.0)
    # Filled except its outermost rim, where a 2 mm ball outside the block still reaches into the mouth.
    assert closed[11, 5:19, 5:19].all() and not closed[11, 4, 4]
    assert not closed[:4].any() and not closed[20:].any() and not closed[:, :4].any()  # no growth outside
    cavity = box((24, 24, 24), (4, 4, 4), (20, 20, 20), dtype=bool)
    cavity[10:12, 10:12, 10:12] = False  # a closed 2×2×2 internal cavity
    closed = closing_mm(cavity, ISO, 2.0)
    assert closed[4:20, 4:20, 4:20].all() and closed.sum() == 16**3


def test_closing_radius_is_per_axis_in_mm() -> None:
    # Two slabs 2 voxels apart in-plane (1 mm at 0.5 mm) are bridged with a 1.5 mm radius (3 voxels)...
    mask = np.zeros((30, 20, 9), dtype=bool)
    mask[5:12, 4:16, 2:7] = True
    mask[14:21, 4:16, 2:7] = True
    closed = closing_mm(mask, ANISO, 1.5)
    assert closed[12:14, 5:15, 2:7].all()  # all but the 1-voxel rim of the gap's mouth
    assert not closing_mm(mask, (3.0, 0.5, 0.5), 1.5)[12:14].any()  # the same gap along a 3 mm axis: not
    # ...but two slabs 2 slices apart along z (6 mm at 3 mm) are not (0 voxels along z).
    stack = np.zeros((20, 20, 12), dtype=bool)
    stack[4:16, 4:16, 2:5] = True
    stack[4:16, 4:16, 7:10] = True
    closed = closing_mm(stack, ANISO, 1.5)
    assert not closed[:, :, 5:7].any()
    # The same 2-slice gap is bridged when slices are 1 mm apart (1 voxel along z).
    assert closing_mm(stack, (0.5, 0.5, 1.0), 1.5)[5:15, 5:15, 5:7].all()


@pytest.mark.parametrize("side", [0, -1])
def test_closing_does_not_erode_objects_touching_the_border(side) -> None:
    mask = np.zeros((16, 16, 16), dtype=bool)
    if side == 0:
        mask[0:6, 3:12, 3:12] = True
    else:
        mask[10:16, 3:12, 3:12] = True
    mask[3:13, 0:16, 0:16] |= np.eye(16, dtype=bool)[None]  # a diagonal wall that also touches two borders
    closed = closing_mm(mask, ISO, 3.0)
    assert np.all(closed[mask])


def test_closing_zero_radius_is_a_copy() -> None:
    mask = box((8, 8, 8), (2, 2, 2), (6, 6, 6), dtype=bool)
    mask[3, 3, 3] = False
    out = closing_mm(mask, ISO, 0.0)
    assert np.array_equal(out, mask) and out is not mask


# ---------------------------------------------------------------------------------------------- postprocess


def two_bones() -> np.ndarray:
    """Label 1 and label 2 slabs facing each other across a 1-voxel background gap, each with a narrow notch
    opening onto the gap (a 3 mm closing fills a notch except its mouth voxel)."""
    labels = np.zeros((30, 24, 24), dtype=np.uint8)
    add(labels, (4, 4, 4), (14, 20, 20), 1)
    add(labels, (15, 4, 4), (25, 20, 20), 2)
    labels[10:14, 10, 4:20] = 0  # notch in bone 1, mouth at x = 13
    labels[15:19, 12, 4:20] = 0  # notch in bone 2, mouth at x = 15
    return labels


def notches_closed(out: np.ndarray) -> bool:
    return bool(np.all(out[10:13, 10, 6:18] == 1) and np.all(out[16:19, 12, 6:18] == 2))


def interleaved() -> np.ndarray:
    """Plates along x: bone 1 at x 2-4 and 8-10, bone 2 at x 6 and 12-14. With a 3 mm ball each bone's closing
    fills between its own plates, so both claim the background layer x = 7."""
    labels = np.zeros((18, 20, 20), dtype=np.uint8)
    for lo, hi, value in [(2, 5, 1), (8, 11, 1), (6, 7, 2), (12, 15, 2)]:
        labels[lo:hi, 2:18, 2:18] = value
    return labels


def test_closing_adds_only_background_and_contested_voxels_stay_background() -> None:
    labels = interleaved()
    out = postprocess(labels, ISO, PostprocessConfig(largest_component=False, closing_mm=3.0))
    changed = out != labels
    assert changed.any() and np.all(labels[changed] == 0)  # no structure voxel ever changes hands
    inner = (slice(6, 14), slice(6, 14))
    assert np.all(out[(5, *inner)] == 1)  # claimed by bone 1 only
    assert np.all(out[(11, *inner)] == 2)  # claimed by bone 2 only
    assert np.all(out[(7, *inner)] == 0)  # claimed by both: neither grows into the other
    # Each structure's closing alone would have taken x = 7.
    assert closing_mm(labels == 1, ISO, 3.0)[(7, *inner)].all()
    assert closing_mm(labels == 2, ISO, 3.0)[(7, *inner)].all()


def test_neighbouring_structures_never_grow_into_each_other() -> None:
    labels = two_bones()
    out = postprocess(labels, ISO, PostprocessConfig(largest_component=False, closing_mm=3.0))
    changed = out != labels
    assert np.all(labels[changed] == 0)  # only background changed
    assert notches_closed(out)
    assert np.all(out[14] == 0)  # the gap between the bones stays background
    for value in (1, 2):
        assert np.all(out[labels == value] == value)


def test_postprocess_full_pipeline_on_a_crafted_volume() -> None:
    labels = two_bones()
    labels[27:29, 1:3, 1:3] = 1  # island of bone 1 far away
    labels[1, 1, 1] = 2  # one-voxel island of bone 2
    out = postprocess(labels, ISO)
    assert not out[27:29, 1:3, 1:3].any() and out[1, 1, 1] == 0
    assert count_components(out == 1) == 1 and count_components(out == 2) == 1
    assert notches_closed(out)
    assert np.all(labels[(out != labels) & (out != 0)] == 0)
    assert out.dtype == labels.dtype and out.shape == labels.shape


def test_postprocess_never_modifies_its_input() -> None:
    labels = two_bones()
    labels[27:29, 1:3, 1:3] = 1
    before = labels.copy()
    out = postprocess(labels, ANISO)
    assert np.array_equal(labels, before)
    assert out is not labels and not np.shares_memory(out, labels)
    mask = labels == 1
    mask_before = mask.copy()
    largest_component(mask)
    closing_mm(mask, ANISO, 2.0)
    assert np.array_equal(mask, mask_before)


@pytest.mark.parametrize(
    "cfg, island_kept, notch_closed",
    [
        (PostprocessConfig(), False, True),
        (PostprocessConfig(largest_component=False), True, True),
        (PostprocessConfig(closing_mm=0), False, False),
        (PostprocessConfig(largest_component=False, closing_mm=0), True, False),
    ],
)
def test_steps_can_be_switched_off(cfg, island_kept, notch_closed) -> None:
    labels = two_bones()
    labels[27:29, 1:3, 1:3] = 1
    out = postprocess(labels, ISO, cfg)
    assert bool(out[27:29, 1:3, 1:3].all()) is island_kept
    assert notches_closed(out) is notch_closed
    if not island_kept and not notch_closed:
        assert np.array_equal(out, np.where((labels == 1) & (np.arange(30)[:, None, None] > 25), 0, labels))
    if island_kept and not notch_closed:
        assert np.array_equal(out, labels)


def test_postprocess_keeps_border_objects_and_empty_volumes() -> None:
    labels = np.zeros((12, 12, 6), dtype=np.int16)
    labels[0:5, :, :] = 3  # touches five faces of the volume
    out = postprocess(labels, ANISO)
    assert np.array_equal(out, labels)
    empty = np.zeros((5, 5, 5), dtype=np.uint8)
    assert np.array_equal(postprocess(empty, ISO), empty)


@pytest.mark.parametrize(
    "call",
    [
        lambda: postprocess(np.zeros((4, 4), np.uint8), ISO),
        lambda: postprocess(np.zeros((4, 4, 4), np.uint8), (1.0, 0.0, 1.0)),
        lambda: postprocess(np.zeros((4, 4, 4), np.uint8), (1.0, 1.0)),
        lambda: postprocess(np.full((4, 4, 4), -1, np.int16), ISO),
        lambda: postprocess(np.full((4, 4, 4), 0.5), ISO),
        lambda: PostprocessConfig(connectivity=4),
        lambda: PostprocessConfig(closing_mm=-1.0),
        lambda: PostprocessConfig(closing_mm=float("nan")),
        lambda: ball_mm(ISO, -2.0),
        lambda: count_components(np.zeros((4, 4, 4), bool), connectivity=0),
    ],
)
def test_bad_arguments_raise_spar_error(call) -> None:
    with pytest.raises(SparError):
        call()
