"""An epoch as a fixed number of updates: the order draws every slice before repeating one, a run makes
exactly epochs × steps_per_epoch updates whatever the size of the data, and resumes exactly."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from spar_core.data.dataset import load_dataset
from spar_core.data.splits import hold_out
from spar_core.errors import SparError
from spar_core.progress import ProgressEvent
from spar_core.training.epochs import epoch_order, epoch_steps
from spar_core.training.fold import fold_slices
from spar_core.training.presets import get_preset
from spar_core.training.segmenter import train_segmenter
from resume_support import interrupted_then_resumed

CPU = torch.device("cpu")


def test_steps_default_to_one_pass_and_follow_the_setting() -> None:
    assert epoch_steps(17, 8, None) == 3
    assert epoch_steps(17, 8, 10) == 10
    for bad in ((0, 8, None), (17, 8, 0)):
        with pytest.raises(SparError):
            epoch_steps(*bad)


def test_order_is_a_chain_of_permutations() -> None:
    gen = torch.Generator().manual_seed(0)
    one_pass = epoch_order(10, 4, None, gen)
    assert sorted(one_pass.tolist()) == list(range(10))  # the paper's epoch: each slice once, last batch short
    order = epoch_order(10, 4, 7, torch.Generator().manual_seed(0)).tolist()
    assert len(order) == 28
    assert sorted(order[:10]) == sorted(order[10:20]) == list(range(10))  # each slice once before any twice
    assert len(set(order[20:])) == 8


def test_a_step_budget_makes_that_many_updates_and_resumes_exactly(ankle_small: Path, tmp_path: Path) -> None:
    dataset = load_dataset(ankle_small)
    split = hold_out([c.case_id for c in dataset.cases], test_fraction=0.25, seed=0)[0]
    preset = get_preset("tiny").for_classes(len(dataset.labels))
    preset = dataclasses.replace(preset, train=dataclasses.replace(
        preset.train, epochs=2, steps_per_epoch=5, lr_schedule="poly", precision="fp32"))
    train, _ = fold_slices(dataset, split, preset)
    assert len(train) > 5 * preset.train.batch_size  # fewer updates than one pass would make
    seen: list[ProgressEvent] = []
    full = train_segmenter("baseline", train, None, preset, tmp_path / "full", device=CPU, progress=seen.append)
    assert max(ev.steps for ev in seen if ev.stage == "segmenter") == 5
    state = torch.load(tmp_path / "full" / "model.pt", weights_only=True)
    assert {int(s["step"]) for s in state["opt_s"]["state"].values()} == {10}  # 2 epochs × 5 updates
    resumed = interrupted_then_resumed("baseline", train, None, preset, tmp_path / "cut", device=CPU)
    assert [h["loss"] for h in resumed] == [h["loss"] for h in full]


def test_streams_and_ranks_draw_apart_and_rank_zero_replays() -> None:
    from spar_core.training.epochs import Stream, epoch_generator

    def first(*args: object) -> int:
        return int(torch.randint(0, 2**62, (1,), generator=epoch_generator(*args)))

    draws = [first(0, 1, s, r) for s in Stream for r in range(4)]
    assert len(set(draws)) == len(draws)  # no stream of any rank repeats another
    assert first(0, 1, Stream.SEGMENTER_AUGMENT) == first(0, 1, Stream.SEGMENTER_AUGMENT, 0)
    assert first(0, 1, Stream.SEGMENTER_ORDER) != first(0, 2, Stream.SEGMENTER_ORDER)
