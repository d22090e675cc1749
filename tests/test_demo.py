"""The demo run end to end with the ``tiny`` preset: split, training, latent maps, triage, report."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from spar_core.cli import main
from spar_core.data.phantoms import generate_cohort
from spar_core.layout.run_folder import RunFolder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight ankle exams (the degraded ones are subjects 6 and 7) and two shoulder exams, then ``spar demo``."""
    base = tmp_path_factory.mktemp("demo")
    generate_cohort("ankle", base / "data" / "phantoms_ankle", subjects=8, seed=0)
    generate_cohort("shoulder", base / "data" / "phantoms_shoulder", subjects=2, seed=0)
    out = base / "runs" / "demo"
    assert main(["demo", "--out", str(out), "--data", str(base / "data"), "--preset", "tiny",
                 "--device", "cpu"]) == 0
    return out


def test_demo_tests_the_degraded_exams_on_clean_training(demo_run: Path) -> None:
    split = RunFolder(demo_run).read_split(0)
    assert {"ankle_006", "ankle_007"} <= set(split.test)
    assert len(split.test) == 2 and len(split.train) == 6  # round(0.3 × 8) = 2: only the degraded ones
    config = json.loads((demo_run / "run.json").read_text())
    assert config["status"] == "complete" and config["folds"] == "demo-holdout"


def test_demo_writes_maps_triage_and_report(demo_run: Path) -> None:
    maps = pd.read_csv(demo_run / "embeddings" / "fold_0.csv")
    assert set(maps["embedding"]) == {"tsne", "aligned", "umap"}
    assert set(maps["case"]) <= {"ankle_006", "ankle_007"}  # snapshots come from held-out exams
    triage = pd.read_csv(demo_run / "triage" / "triage_spar.csv")
    assert set(triage["case"]) == {"ankle_006", "ankle_007"}
    assert (demo_run / "report" / "report.md").is_file()
    metrics = pd.read_csv(demo_run / "metrics.csv")
    assert set(metrics["method"]) == {"baseline", "adversarial", "shape", "spar"}


def test_demo_times_each_stage_in_its_run_folder(demo_run: Path) -> None:
    timing = json.loads((demo_run / "timing.json").read_text())
    stages = timing["stages_s"]
    # every method's training apart, then what follows it, each with its wall time
    assert {f"segmenter {m}" for m in ("baseline", "adversarial", "shape", "spar")} <= set(stages)
    assert {"shape_ae", "predict", "embed", "triage", "report"} <= set(stages)
    assert all(v >= 0 for v in stages.values()) and stages["segmenter baseline"] > 0
    assert timing["total_s"] == pytest.approx(sum(stages.values()), abs=0.5)


def test_a_stage_clock_credits_the_time_between_events_to_the_later_stage() -> None:
    import time

    from spar_core.progress import ProgressEvent, StageClock, stage_line

    seen = []
    clock = StageClock(seen.append)
    time.sleep(0.05)
    clock(ProgressEvent("segmenter", 1, 1, 1, 2, label="baseline"))
    clock(ProgressEvent("segmenter", 1, 1, 2, 2, label="baseline"))
    time.sleep(0.02)
    clock(ProgressEvent("predict", 1, 1, 1, 1))
    clock.lap("report")
    assert len(seen) == 3 and list(clock.seconds) == ["segmenter baseline", "predict", "report"]
    assert clock.seconds["segmenter baseline"] >= 0.05 and 0.02 <= clock.seconds["predict"] < 0.05
    assert stage_line({"a": 1.4, "b": 10.0}) == "a 1 s, b 10 s"
