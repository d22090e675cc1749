"""Interrupting a training after its first epoch and resuming it: the setup of every resume-exactness test."""

from __future__ import annotations

from pathlib import Path

import pytest

from spar_core.progress import ProgressEvent
from spar_core.training.segmenter import train_segmenter


class Interrupt(Exception):
    pass


def stop_after_first_epoch(ev: ProgressEvent) -> None:
    if ev.stage == "segmenter" and ev.epoch_done and ev.epoch == 1:
        raise Interrupt


def interrupted_then_resumed(method: str, train, ae, preset, out: Path, **kwargs) -> list[dict]:
    """Train ``method`` into ``out``, stopped after epoch 1, then resumed to the end; returns the history."""
    with pytest.raises(Interrupt):
        train_segmenter(method, train, ae, preset, out, progress=stop_after_first_epoch, **kwargs)
    return train_segmenter(method, train, ae, preset, out, resume=True, **kwargs)
