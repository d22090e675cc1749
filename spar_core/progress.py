"""Progress events from long work, so the CLI can draw a bar and the app and notebooks their own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a stage ("shape_ae", "segmenter", "predict", ...); ``step == steps`` ends an epoch."""

    stage: str
    epoch: int
    epochs: int
    step: int
    steps: int
    values: dict[str, float] = field(default_factory=dict)
    label: str = ""

    @property
    def epoch_done(self) -> bool:
        return self.step == self.steps


Progress = Callable[[ProgressEvent], None]


def silent(_: ProgressEvent) -> None:
    """The default callback: report nothing."""


class TqdmProgress:
    """A tqdm bar per (stage, epoch) on stderr; epoch summaries printed below it."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self._bar = None
        self._key: tuple[str, str, int] | None = None

    def __call__(self, ev: ProgressEvent) -> None:
        from tqdm import tqdm

        key = (ev.stage, ev.label, ev.epoch)
        if key != self._key:
            self.close()
            desc = f"{self.prefix}{ev.label or ev.stage} {ev.epoch}/{ev.epochs}"
            self._bar = tqdm(total=ev.steps, desc=desc, leave=False, dynamic_ncols=True)
            self._key = key
        assert self._bar is not None
        self._bar.n = ev.step
        if ev.values:
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in ev.values.items()}, refresh=False)
        self._bar.refresh()
        if ev.epoch_done:
            text = " ".join(f"{k}={v:.4g}" for k, v in ev.values.items())
            self.close()
            tqdm.write(f"{self.prefix}{ev.label or ev.stage} epoch {ev.epoch}/{ev.epochs} {text}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self._key = None
