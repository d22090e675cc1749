"""The segmenter's data term: CE as in the paper, or CE + soft Dice."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spar_core.errors import SparError
from spar_core.training.losses import segmentation_loss, soft_dice_loss


def _onehot(y: torch.Tensor, c: int) -> torch.Tensor:
    return F.one_hot(y, c).permute(0, 3, 1, 2).float()


def test_soft_dice_is_zero_for_the_truth_and_one_for_disjoint_masks() -> None:
    y = torch.zeros(2, 8, 8, dtype=torch.long)
    y[:, 2:5, 2:5] = 1
    y[:, 5:7, 5:7] = 2
    truth = _onehot(y, 3)
    assert float(soft_dice_loss(truth, truth)) == pytest.approx(0.0, abs=1e-6)
    swapped = truth[:, [0, 2, 1]]  # class 1 predicted where 2 is, and back
    assert float(soft_dice_loss(swapped, truth)) > 0.9


def test_classes_absent_from_the_batch_do_not_count() -> None:
    y = torch.zeros(1, 8, 8, dtype=torch.long)
    y[:, 2:5, 2:5] = 1  # class 2 absent
    truth = _onehot(y, 3)
    probs = truth.clone()
    probs[:, 2] = 0.0
    assert float(soft_dice_loss(probs, truth)) == pytest.approx(0.0, abs=1e-6)
    background_only = _onehot(torch.zeros(1, 8, 8, dtype=torch.long), 3)
    assert float(soft_dice_loss(background_only, background_only)) == 0.0


def test_ce_plus_dice_adds_the_terms_and_has_gradients() -> None:
    torch.manual_seed(0)
    y = torch.randint(0, 3, (2, 8, 8))
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    probs = torch.softmax(logits, 1)
    total, parts = segmentation_loss("ce+dice", logits, probs, y, _onehot(y, 3))
    assert set(parts) == {"ce", "dice"}
    expected = F.cross_entropy(logits, y) + soft_dice_loss(probs, _onehot(y, 3))
    assert float(total.detach()) == pytest.approx(float(expected.detach()))
    total.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    ce_only, parts = segmentation_loss("ce", logits, probs, y, _onehot(y, 3))
    assert set(parts) == {"ce"}
    assert float(ce_only.detach()) == pytest.approx(float(F.cross_entropy(logits, y).detach()))


def test_unknown_loss_is_a_clear_error() -> None:
    y = torch.zeros(1, 4, 4, dtype=torch.long)
    logits = torch.zeros(1, 2, 4, 4)
    with pytest.raises(SparError, match="ce\\+dice"):
        segmentation_loss("focal", logits, torch.softmax(logits, 1), y, _onehot(y, 2))
