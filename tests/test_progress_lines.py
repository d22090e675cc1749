"""The command line's progress in a log: one plain line per finished outer step, named for what it counts."""

from __future__ import annotations

from spar_core.progress import ProgressEvent, TqdmProgress


def test_a_log_line_says_cohort_for_the_phantoms_and_epoch_for_training(capsys) -> None:
    progress = TqdmProgress()
    progress(ProgressEvent("phantoms", 1, 2, 17, 17, label="phantoms ankle"))
    progress(ProgressEvent("segmenter", 3, 12, 125, 125, {"loss": 0.5}, label="baseline"))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines == ["phantoms ankle cohort 1/2", "baseline epoch 3/12 loss=0.5"]
