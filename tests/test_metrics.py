"""Metrics: equal to MedPy 0.5.2 on random smooth shapes with anisotropic spacing (objects on the volume border
included), RAVD by hand, the written empty-mask policy, nan-aware aggregation, and ill inputs that must raise."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from spar_core.errors import SparError
from spar_core.scoring.metrics import StructureMetrics, aggregate, evaluate_labels, structure_metrics
from spar_core.scoring.surface import surface_distances, surface_mask

RTOL = 1e-6
ANISO = (0.5, 0.7, 3.0)
SHAPE = (48, 40, 14)


def blob(seed: int, shape=SHAPE, sigma=(4.0, 4.0, 1.5), level: float = 0.0, border: bool = True) -> np.ndarray:
    """A smooth random shape: thresholded Gaussian-filtered noise; ``border=False`` clears a 1-voxel frame."""
    noise = np.random.default_rng(seed).normal(size=shape)
    field = ndimage.gaussian_filter(noise, sigma, mode="wrap")
    mask = field > level * field.std()
    if not border:
        frame = np.zeros(shape, dtype=bool)
        frame[1:-1, 1:-1, 1:-1] = True
        mask &= frame
    return mask


def perturbed(mask: np.ndarray, seed: int) -> np.ndarray:
    """A plausible prediction: the shape grown or shrunk by one voxel here and there, plus a small island."""
    rng = np.random.default_rng(seed)
    grown = ndimage.binary_dilation(mask) & (rng.random(mask.shape) < 0.7)
    shrunk = ndimage.binary_erosion(mask) | (mask & (rng.random(mask.shape) < 0.7))
    out = shrunk | grown
    x, y, z = (rng.integers(0, n - 2) for n in mask.shape)
    out[x:x + 2, y:y + 2, z:z + 2] = True
    return out


# (truth seed, prediction seed, threshold level, touches the border, spacing)
CASES = [
    (0, 1, 0.0, True, ANISO),
    (2, 3, 0.5, True, ANISO),
    (4, 5, 0.3, False, ANISO),
    (6, 7, -0.3, True, (1.2, 0.4, 2.5)),
    (8, 9, 0.8, True, (0.5, 0.5, 3.0)),
]


@pytest.fixture(scope="module")
def medpy_binary():
    pytest.importorskip("medpy")
    from medpy.metric import binary

    return binary


@pytest.mark.parametrize("truth_seed, pred_seed, level, border, spacing", CASES)
def test_equal_to_medpy_on_random_shapes(medpy_binary, truth_seed, pred_seed, level, border, spacing) -> None:
    truth = blob(truth_seed, level=level, border=border)
    pred = perturbed(truth, pred_seed)
    if not border:
        pred[0], pred[-1] = False, False
    assert truth.any() and pred.any()
    if border:
        assert truth[0].any() or truth[-1].any() or truth[:, :, 0].any()  # the case it is meant to cover
    m = structure_metrics(pred, truth, spacing)
    directed = getattr(medpy_binary, "__surface_distances")
    d_pt, d_tp = surface_distances(pred, truth, spacing)
    ref_pt, ref_tp = directed(pred, truth, spacing, 1), directed(truth, pred, spacing, 1)
    # The directional pieces, voxel by voxel in the same order.
    assert d_pt.shape == ref_pt.shape and d_tp.shape == ref_tp.shape
    np.testing.assert_allclose(d_pt, ref_pt, rtol=RTOL, atol=0)
    np.testing.assert_allclose(d_tp, ref_tp, rtol=RTOL, atol=0)
    assert math.isclose(d_pt.mean(), medpy_binary.asd(pred, truth, spacing), rel_tol=RTOL)
    assert math.isclose(d_tp.mean(), medpy_binary.asd(truth, pred, spacing), rel_tol=RTOL)
    # The reported values: ASSD is the pooled mean, which is exactly MedPy 0.5.2's assd.
    pooled = np.concatenate([ref_pt, ref_tp]).mean()
    assert math.isclose(m.assd, pooled, rel_tol=RTOL)
    assert math.isclose(m.assd, medpy_binary.assd(pred, truth, spacing), rel_tol=RTOL)
    assert math.isclose(m.dice, medpy_binary.dc(pred, truth), rel_tol=RTOL)
    assert math.isclose(m.mssd, medpy_binary.hd(pred, truth, spacing), rel_tol=RTOL)
    assert math.isclose(m.ravd, abs(pred.sum() - truth.sum()) / truth.sum() * 100, rel_tol=RTOL)


def far_island() -> tuple[np.ndarray, np.ndarray]:
    truth = blob(20, level=0.4)
    truth[30:] = False
    pred = perturbed(truth, 21)
    pred[44:47, 35:38, 11:13] = True  # far beyond the neighbour scan: resolved by the k-d tree
    return pred, truth


def disjoint() -> tuple[np.ndarray, np.ndarray]:
    truth = np.zeros(SHAPE, dtype=bool)
    truth[2:12, 3:15, 1:6] = True
    pred = np.zeros(SHAPE, dtype=bool)
    pred[30:46, 20:38, 7:14] = True  # no voxel within the scan: every distance from the tree
    return pred, truth


def fortran_and_strided() -> tuple[np.ndarray, np.ndarray]:
    big = blob(22, shape=(96, 40, 14), level=0.2)
    truth = np.asfortranarray(big[::2])  # NIfTI arrays are usually Fortran-ordered
    pred = perturbed(np.ascontiguousarray(truth), 23)[:, ::-1][:, ::-1]  # a non-contiguous view
    return pred, truth


@pytest.mark.parametrize(
    "make, spacing",
    [(far_island, ANISO), (disjoint, ANISO), (fortran_and_strided, ANISO), (far_island, (0.3, 0.3, 6.0)),
     (disjoint, (2.0, 1.0, 1.0))],
    ids=["far-island", "disjoint", "fortran-strided", "far-island-thin", "disjoint-iso"],
)
def test_equal_to_medpy_on_hard_layouts(medpy_binary, make, spacing) -> None:
    pred, truth = make()
    directed = getattr(medpy_binary, "__surface_distances")
    d_pt, d_tp = surface_distances(pred, truth, spacing)
    np.testing.assert_allclose(d_pt, directed(pred, truth, spacing, 1), rtol=RTOL, atol=0)
    np.testing.assert_allclose(d_tp, directed(truth, pred, spacing, 1), rtol=RTOL, atol=0)
    m = structure_metrics(pred, truth, spacing)
    assert math.isclose(m.assd, medpy_binary.assd(pred, truth, spacing), rel_tol=RTOL)
    assert math.isclose(m.mssd, medpy_binary.hd(pred, truth, spacing), rel_tol=RTOL)
    assert math.isclose(m.dice, medpy_binary.dc(pred, truth), rel_tol=RTOL, abs_tol=0)


def test_evaluate_labels_equal_to_medpy_per_structure(medpy_binary) -> None:
    truth = np.zeros(SHAPE, dtype=np.uint8)
    truth[blob(10, level=0.6)] = 1
    truth[blob(11, level=0.9)] = 2  # overlaps 1 in places: the later label wins
    truth[:, :, :3][truth[:, :, :3] == 0] = 4  # a slab on the border, label 3 absent
    pred = truth.copy()
    pred[perturbed(truth == 1, 12) & (pred == 0)] = 1
    pred[ndimage.binary_erosion(truth == 2) ^ (truth == 2)] = 0
    rows = evaluate_labels(pred, truth, ANISO, {"background": 0, "a": 1, "b": 2, "c": 3, "d": 4})
    assert [r["structure"] for r in rows] == ["a", "b", "c", "d"]
    for row in rows:
        p, t = pred == row["label"], truth == row["label"]
        if not t.any():
            assert row["dice"] == 1.0 and row["assd_mm"] == 0.0 and row["true_ml"] == 0.0
            continue
        assert math.isclose(row["dice"], medpy_binary.dc(p, t), rel_tol=RTOL)
        assert math.isclose(row["assd_mm"], medpy_binary.assd(p, t, ANISO), rel_tol=RTOL)
        assert math.isclose(row["mssd_mm"], medpy_binary.hd(p, t, ANISO), rel_tol=RTOL)
        voxel_ml = 0.5 * 0.7 * 3.0 / 1000
        assert math.isclose(row["true_ml"], t.sum() * voxel_ml)
        assert math.isclose(row["pred_ml"], p.sum() * voxel_ml)


# ---------------------------------------------------------------------------------------------- by hand


def test_cubes_by_hand() -> None:
    truth = np.zeros((10, 10, 10), dtype=bool)
    truth[2:6, 2:6, 2:6] = True  # 64 voxels
    pred = np.zeros_like(truth)
    pred[2:6, 2:6, 2:7] = True  # 80 voxels: one extra layer along z
    m = structure_metrics(pred, truth, (1.0, 1.0, 2.0))
    assert m.dice == pytest.approx(2 * 64 / (64 + 80))
    assert m.ravd == pytest.approx(abs(80 - 64) / 64 * 100)  # 25 %
    assert m.mssd == pytest.approx(2.0)  # the moved face is one 2 mm slice away
    # Border voxels: truth 64 - 2*2*2 = 56, prediction 80 - 2*2*3 = 68. Prediction -> truth: its 16 top-face voxels
    # are one 2 mm slice off. Truth -> prediction: the 4 inner voxels of the truth's top face are now inside the
    # prediction, 1 mm from its side faces; the 12 rim voxels lie on its side faces. All others are shared (0 mm).
    assert m.assd == pytest.approx((16 * 2.0 + 4 * 1.0) / (56 + 68))


def test_ravd_by_hand_is_symmetric_in_sign() -> None:
    truth = np.zeros((8, 8, 8), dtype=bool)
    truth[1:5, 1:5, 1:5] = True  # 64
    smaller = np.zeros_like(truth)
    smaller[1:5, 1:5, 1:3] = True  # 32
    assert structure_metrics(smaller, truth, (1, 1, 1)).ravd == pytest.approx(50.0)
    assert structure_metrics(truth, smaller, (1, 1, 1)).ravd == pytest.approx(100.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_surface_mask_is_medpys_definition(seed) -> None:
    mask = blob(seed, level=0.2 * seed)
    for layout in (mask, np.asfortranarray(mask), mask[:, ::-1]):
        expected = layout ^ ndimage.binary_erosion(layout, ndimage.generate_binary_structure(3, 1), border_value=0)
        assert np.array_equal(surface_mask(layout), expected)


def test_surface_of_border_touching_object_includes_the_border() -> None:
    mask = np.ones((4, 4, 4), dtype=bool)
    assert surface_mask(mask).sum() == 4**3 - 2**3
    d_ab, d_ba = surface_distances(mask, mask, (0.5, 0.7, 3.0))
    assert d_ab.size == 56 and not d_ab.any() and not d_ba.any()


def test_identical_masks_are_perfect() -> None:
    mask = blob(3)
    assert structure_metrics(mask, mask, ANISO) == StructureMetrics(1.0, 0.0, 0.0, 0.0)


# ---------------------------------------------------------------------------------------------- empty masks

EMPTY = np.zeros((6, 6, 6), dtype=bool)
CUBE = EMPTY.copy()
CUBE[1:4, 1:4, 1:4] = True
NAN = math.nan


@pytest.mark.parametrize(
    "pred, truth, expected",
    [
        (EMPTY, EMPTY, (1.0, 0.0, 0.0, 0.0)),  # correctly absent: perfect
        (CUBE, EMPTY, (0.0, NAN, NAN, NAN)),  # RAVD divides by a zero volume; one surface only
        (EMPTY, CUBE, (0.0, 100.0, NAN, NAN)),  # all of the volume missed; one surface only
    ],
    ids=["both-empty", "truth-empty", "prediction-empty"],
)
def test_empty_mask_policy(pred, truth, expected) -> None:
    got = structure_metrics(pred, truth, ANISO)
    for value, want in zip((got.dice, got.ravd, got.assd, got.mssd), expected):
        assert (math.isnan(value) and math.isnan(want)) or value == want


def test_surface_distances_with_an_empty_mask() -> None:
    d_ab, d_ba = surface_distances(CUBE, EMPTY, ANISO)
    assert d_ab.size == 26 and np.isnan(d_ab).all() and d_ba.size == 0
    d_ab, d_ba = surface_distances(EMPTY, EMPTY, ANISO)
    assert d_ab.size == 0 and d_ba.size == 0


def test_evaluate_labels_rows_for_absent_structures() -> None:
    truth = np.zeros((6, 6, 6), dtype=np.uint8)
    truth[CUBE] = 1
    pred = np.zeros_like(truth)
    pred[CUBE] = 2
    rows = {r["structure"]: r for r in evaluate_labels(pred, truth, (1, 1, 2), {"a": 1, "b": 2, "c": 3})}
    assert rows["a"]["dice"] == 0.0 and rows["a"]["ravd_pct"] == 100.0 and math.isnan(rows["a"]["assd_mm"])
    assert rows["b"]["dice"] == 0.0 and math.isnan(rows["b"]["ravd_pct"]) and math.isnan(rows["b"]["mssd_mm"])
    assert rows["c"]["dice"] == 1.0 and rows["c"]["ravd_pct"] == 0.0 and rows["c"]["assd_mm"] == 0.0
    assert rows["a"]["true_ml"] == pytest.approx(27 * 2 / 1000) and rows["a"]["pred_ml"] == 0.0


def test_aggregate_leaves_out_and_counts_undefined_values() -> None:
    rows = [
        {"structure": "a", "dice": 0.8, "ravd_pct": 10.0, "assd_mm": 1.0, "mssd_mm": 4.0},
        {"structure": "a", "dice": 0.0, "ravd_pct": 100.0, "assd_mm": NAN, "mssd_mm": NAN},
        {"structure": "a", "dice": 0.6, "ravd_pct": 30.0, "assd_mm": 3.0, "mssd_mm": 8.0},
        {"structure": "b", "dice": 0.0, "ravd_pct": NAN, "assd_mm": NAN, "mssd_mm": NAN},
    ]
    a, b = aggregate(rows)
    assert a["structure"] == "a" and a["n"] == 3
    assert a["dice_mean"] == pytest.approx(1.4 / 3) and a["dice_n"] == 3 and a["dice_undefined"] == 0
    assert a["assd_mm_mean"] == pytest.approx(2.0) and a["assd_mm_n"] == 2 and a["assd_mm_undefined"] == 1
    assert a["mssd_mm_std"] == pytest.approx(np.std([4.0, 8.0], ddof=1))
    assert b["n"] == 1 and math.isnan(b["ravd_pct_mean"]) and b["ravd_pct_undefined"] == 1
    assert math.isnan(b["dice_std"])  # one value: no spread


# ---------------------------------------------------------------------------------------------- ill inputs


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: structure_metrics(np.zeros((4, 4, 4)), np.zeros((4, 4, 5)), ANISO), ["(4, 4, 4)", "(4, 4, 5)"]),
        (lambda: evaluate_labels(np.zeros((3, 4, 4), int), np.zeros((4, 4, 4), int), ANISO, {"a": 1}),
         ["(3, 4, 4)", "(4, 4, 4)"]),
        (lambda: surface_distances(np.zeros((2, 2, 2)), np.zeros((2, 2)), ANISO), ["(2, 2, 2)", "(2, 2)"]),
        (lambda: structure_metrics(np.zeros((4, 4)), np.zeros((4, 4)), (1, 1)), ["3D"]),
        (lambda: structure_metrics(CUBE, CUBE, (1.0, 0.0, 1.0)), ["spacing"]),
        (lambda: structure_metrics(CUBE, CUBE, (1.0, -1.0, 1.0)), ["spacing"]),
        (lambda: structure_metrics(CUBE, CUBE, (1.0, 1.0)), ["spacing"]),
        (lambda: structure_metrics(CUBE, CUBE, (1.0, float("nan"), 1.0)), ["spacing"]),
        (lambda: evaluate_labels(CUBE.astype(int), CUBE.astype(int), ANISO, {"a": -1}), ["'a'"]),
        (lambda: evaluate_labels(CUBE * 0.5, CUBE * 1.0, ANISO, {"a": 1}), ["integer"]),
    ],
)
def test_bad_inputs_raise_spar_error(call, words) -> None:
    with pytest.raises(SparError) as info:
        call()
    for word in words:
        assert word in str(info.value)
