"""Progress events from long work, so the CLI can draw a bar and the app and notebooks their own.

A background job (``spar_core.runs.jobs``) runs the CLI with ``--progress-file``: :class:`JsonProgress` keeps the
latest event in a small JSON file that the app's Runs page polls for its progress bar.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from spar_core.paths import atomic_path


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


# What a stage's outer count is, in a log line ("phantoms ankle cohort 1/2", not "epoch 1/2"); epochs otherwise.
OUTER_STEP = {"phantoms": "cohort", "crossval": "unit", "robustness": "unit", "study": "cell"}


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
            # a bar on a terminal only (disable=None): a log gets the epoch lines, not the bar's redraws
            self._bar = tqdm(total=ev.steps, desc=desc, leave=False, dynamic_ncols=True, disable=None)
            self._key = key
        assert self._bar is not None
        self._bar.n = ev.step
        if ev.values:
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in ev.values.items()}, refresh=False)
        self._bar.refresh()
        if ev.epoch_done:
            text = " ".join(f"{k}={v:.4g}" for k, v in ev.values.items())
            self.close()
            noun = OUTER_STEP.get(ev.stage, "epoch")
            tqdm.write(f"{self.prefix}{ev.label or ev.stage} {noun} {ev.epoch}/{ev.epochs} {text}".rstrip())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self._key = None


# stages whose label names what ran (a method, a cohort): timed apart
_LABELLED = frozenset({"segmenter", "phantoms"})


class StageClock:
    """A progress callback that times the stages of long work: the wall time between two events is credited to
    the later event's stage ("segmenter" per method label), so a stage's own setup counts as its time.
    ``lap(stage)`` credits the time since the last event to ``stage`` (work that sends no events)."""

    def __init__(self, inner: Progress = silent) -> None:
        self.inner = inner
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._last
        self._last = now

    def __call__(self, event: ProgressEvent) -> None:
        label = event.label if event.label.startswith(event.stage) else f"{event.stage} {event.label}".strip()
        self.lap(label if event.stage in _LABELLED else event.stage)
        self.inner(event)



def stage_line(seconds: dict[str, float]) -> str:
    """``stage 12 s, stage 3 s, …``: a :class:`StageClock`'s stages in the order they first ran."""
    return ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())


def combine(*callbacks: Progress) -> Progress:
    """One callback that passes each event to every one of ``callbacks``, in order (e.g. tqdm + JSON)."""

    def report(ev: ProgressEvent) -> None:
        for callback in callbacks:
            callback(ev)

    return report


# Where a (fold, method) unit of a cross-validation spends its time, for the coarse overall fraction:
# training the segmenter up to UNIT_TRAIN_SHARE of the unit, predicting the test exams the rest.
# The shape auto-encoder, trained once per fold before the first unit, counts as the unit's start.
UNIT_TRAIN_SHARE = 0.9


class JsonProgress:
    """Keeps the latest :class:`ProgressEvent` in a JSON file, written atomically and at most every
    ``min_interval`` seconds (always at the end of an epoch), so a reader never sees a half-written file.

    The file holds ``stage, label, epoch, epochs, step, steps, values`` of the event, ``fraction`` (of the
    current epoch, in [0, 1]), ``overall`` (of the whole cross-validation, in [0, 1], or None before its first
    unit) and ``time`` (Unix seconds).

    Args:
        path: the JSON file; its folder is created.
        min_interval: seconds between two writes of events inside an epoch.
        clock: monotonic clock in seconds (tests pass a fake one).
    """

    def __init__(self, path: str | Path, min_interval: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if min_interval < 0:
            raise ValueError(f"min_interval: expected seconds >= 0, got {min_interval}")
        self.path = Path(path)
        self.min_interval = min_interval
        self._clock = clock
        self._last_write: float | None = None
        self._pending: dict[str, Any] | None = None
        self._unit: tuple[int, int] | None = None  # (index from 0, count) of the cross-validation unit
        self._overall: float | None = None

    def __call__(self, ev: ProgressEvent) -> None:
        self._pending = self._record(ev)
        now = self._clock()
        if ev.epoch_done or self._last_write is None or now - self._last_write >= self.min_interval:
            self.flush()
            self._last_write = now

    def flush(self) -> None:
        """Write the latest event if it is not on disk yet."""
        if self._pending is None:
            return
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(self._pending))
        self._pending = None

    def _record(self, ev: ProgressEvent) -> dict[str, Any]:
        fraction = ev.step / ev.steps if ev.steps > 0 else 1.0
        if ev.stage == "crossval":  # "unit epoch of epochs starts": epoch counts the (fold, method) units
            self._unit = (ev.epoch - 1, ev.epochs)
            within = 0.0
        elif ev.stage == "segmenter" and ev.epochs > 0:
            within = UNIT_TRAIN_SHARE * (ev.epoch - 1 + fraction) / ev.epochs
        elif ev.stage == "predict":
            within = UNIT_TRAIN_SHARE + (1 - UNIT_TRAIN_SHARE) * fraction
        else:
            within = None
        if self._unit is not None and within is not None:
            index, count = self._unit
            overall = (index + within) / count if count > 0 else 1.0
            self._overall = max(self._overall or 0.0, min(overall, 1.0))
        return {
            "stage": ev.stage, "label": ev.label, "epoch": ev.epoch, "epochs": ev.epochs, "step": ev.step,
            "steps": ev.steps, "values": {k: _finite(v) for k, v in ev.values.items()},
            "fraction": min(max(fraction, 0.0), 1.0), "overall": self._overall, "time": time.time(),
        }


def _finite(value: float) -> float | None:
    """JSON has no NaN or infinity: a diverged loss is written as null."""
    value = float(value)
    return value if math.isfinite(value) else None


def read_progress(path: str | Path) -> dict[str, Any] | None:
    """The event a :class:`JsonProgress` last wrote to ``path``; None when there is none (yet) or it is unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def cli_progress(progress_file: Path | None, prefix: str = "") -> Progress:
    """The command line's progress: a tqdm bar, and the JSON file too when ``--progress-file`` is given."""
    bar = TqdmProgress(prefix)
    return bar if progress_file is None else combine(bar, JsonProgress(progress_file))
