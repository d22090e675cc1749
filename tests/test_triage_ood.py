"""Out-of-distribution scores: an exam whose structures sit elsewhere in the field of view, or whose image looks
otherwise (another contrast, blurrier), stands out against the training exams; a typical one does not."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from spar_core.data.corruptions import corrupt, corrupt_label
from spar_core.triage.ood import MIN_TRAIN_EXAMS, intensity_features, ood_scores, placement

SPACING = (2.0, 1.0, 4.0)


def exam(seed: int, shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A body (bright, textured) with a row of two structures in the upper half of a 60×60×8 field of view."""
    rng = np.random.default_rng(seed)
    image = rng.normal(20, 3, (60, 60, 8)).astype(np.float32)
    image[5:55, 10:50] += 200 + ndimage.gaussian_filter(rng.normal(0, 60, (50, 40, 8)), 1.0)
    label = np.zeros(image.shape, np.uint8)
    jitter = int(rng.integers(-1, 2))
    label[12 + jitter:18 + jitter, 25:35] = 1
    label[21 + jitter:27 + jitter, 25:35] = 2
    image[label > 0] += 150
    return image, label


def training() -> tuple[np.ndarray, np.ndarray]:
    exams = [exam(s) for s in range(6)]
    return (np.array([placement(lab, SPACING) for _, lab in exams]),
            np.array([intensity_features(img, SPACING) for img, _ in exams]))


def test_a_typical_exam_is_in_range_and_a_moved_or_darker_or_blurrier_one_stands_out() -> None:
    train_place, train_int = training()
    image, label = exam(99)
    typical = ood_scores(image, label, SPACING, train_place, train_int)
    assert typical["placement_z"] < 2.5 and typical["intensity_z"] < 4
    # the same exam with its content 30 mm nearer the head (labels moved along: the prediction follows it)
    affine = np.diag([*SPACING, 1.0])
    moved = corrupt(image, SPACING, 2, "fov_shift", 3, case="x", affine=affine)
    moved_label = corrupt_label(label, SPACING, 2, "fov_shift", 3, case="x", affine=affine)
    shifted = ood_scores(moved, moved_label, SPACING, train_place, train_int)
    assert shifted["placement_z"] > 5 * max(typical["placement_z"], 1.0)
    assert placement(moved_label, SPACING)[0] == pytest.approx(placement(label, SPACING)[0] + 30.0)
    for kind, severity in (("gamma", 2), ("gamma", -2), ("low_res", 3)):
        other = corrupt(image, SPACING, 2, kind, severity, case="x")
        scores = ood_scores(other, label, SPACING, train_place, train_int)
        assert scores["intensity_z"] > 3 * max(typical["intensity_z"], 1.0), (kind, severity)
        assert scores["placement_z"] == typical["placement_z"]  # the same prediction: the same placement


def test_too_few_training_exams_an_empty_prediction_or_no_image_give_nan() -> None:
    train_place, train_int = training()
    image, label = exam(7)
    few = ood_scores(image, label, SPACING, train_place[: MIN_TRAIN_EXAMS - 1], train_int[: MIN_TRAIN_EXAMS - 1])
    assert np.isnan(few["placement_z"]) and np.isnan(few["intensity_z"])
    empty = ood_scores(image, np.zeros_like(label), SPACING, train_place, train_int)
    assert np.isnan(empty["placement_z"]) and np.isfinite(empty["intensity_z"])
    assert np.isnan(ood_scores(None, label, SPACING, train_place, train_int)["intensity_z"])
