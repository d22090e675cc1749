"""Learning-rate schedules: the factors, and a resumed run on a schedule equals an uninterrupted one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from spar_core.data.dataset import load_dataset
from spar_core.data.splits import hold_out
from spar_core.errors import SparError
from spar_core.training.fold import fold_slices
from spar_core.training.presets import TrainConfig, get_preset
from spar_core.training.schedule import lr_factor
from spar_core.training.segmenter import train_segmenter
from resume_support import interrupted_then_resumed

CPU = torch.device("cpu")


@pytest.mark.parametrize("schedule, step, total, expected", [
    ("constant", 0, 10, 1.0), ("constant", 9, 10, 1.0),
    ("poly", 0, 10, 1.0), ("poly", 5, 10, 0.5 ** 0.9), ("poly", 9, 10, 0.1 ** 0.9),
    ("cosine", 0, 100, 0.2), ("cosine", 4, 100, 1.0), ("cosine", 5, 100, 1.0), ("cosine", 99, 100, 0.000273),
])
def test_factors(schedule: str, step: int, total: int, expected: float) -> None:
    assert lr_factor(schedule, step, total) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("call, words", [
    (lambda: lr_factor("linear", 0, 10), ["lr_schedule", "'linear'", "poly"]),
    (lambda: lr_factor("poly", 10, 10), ["step 10", "0..9"]),
    (lambda: TrainConfig(size=32, batch_size=8, epochs=2, lr_schedule="step"), ["lr_schedule", "'step'"]),
])
def test_bad_schedules_are_named(call, words: list[str]) -> None:
    with pytest.raises(SparError) as info:
        call()
    assert all(w in str(info.value) for w in words)


def test_poly_decays_and_resumes_exactly(ankle_small: Path, tmp_path: Path) -> None:
    dataset = load_dataset(ankle_small)
    split = hold_out([c.case_id for c in dataset.cases], test_fraction=0.25, seed=0)[0]
    preset = get_preset("tiny").for_classes(len(dataset.labels))
    preset = dataclasses.replace(preset, train=dataclasses.replace(preset.train, epochs=3, lr_schedule="poly",
                                                                   precision="fp32"))
    train, _ = fold_slices(dataset, split, preset)

    full = train_segmenter("baseline", train, None, preset, tmp_path / "full", device=CPU)
    resumed = interrupted_then_resumed("baseline", train, None, preset, tmp_path / "cut", device=CPU)
    assert [h["loss"] for h in resumed] == [h["loss"] for h in full]
    state = torch.load(tmp_path / "full" / "model.pt", weights_only=True)
    seen = [g["lr"] for g in state["opt_s"]["param_groups"]]
    steps = -(-len(train) // preset.train.batch_size)
    assert seen == [pytest.approx(preset.train.lr * (1 / (3 * steps)) ** 0.9)]  # the last update's rate
