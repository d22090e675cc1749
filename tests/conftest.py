"""Shared test fixtures: where the real spine data lives, and small on-disk datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The app builds the demo run by itself on a runs root without runs; tests start it only where they test that
# (the variable reaches the servers and jobs they start, too).
os.environ["SPAR_DEMO_AUTOSTART"] = "0"
SPINE_DIR = Path(os.environ.get("SPAR_SPINE_DIR", REPO.parent / "shared" / "data" / "myosegmentum_spine"))


@pytest.fixture(scope="session")
def spine_dir() -> Path:
    """The MyoSegmenTUM spine dataset beside the repository; tests using it skip where it is absent."""
    if not (SPINE_DIR / "dataset.json").is_file():
        pytest.skip(f"shared spine data not found at {SPINE_DIR} (set SPAR_SPINE_DIR to point at it)")
    return SPINE_DIR


@pytest.fixture(scope="session")
def ankle_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four ankle phantom exams (seed 0), generated once per test session."""
    from spar_core.data.phantoms import generate_cohort

    out = tmp_path_factory.mktemp("ankle_small")
    generate_cohort("ankle", out, subjects=4, seed=0)
    return out


@pytest.fixture(scope="session")
def two_fold_run(ankle_small: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``baseline`` and ``spar`` cross-validated on ankle_small: two folds, preset ``tiny``, ``--postprocess auto``,
    built once per session. Tests that change it work on a copy; triage and studies add their own folders."""
    from spar_core.cli import main

    out = tmp_path_factory.mktemp("two_fold_run") / "run"
    assert main(["crossval", "--dataset", str(ankle_small), "--methods", "baseline,spar", "--folds", "2",
                 "--preset", "tiny", "--out", str(out), "--device", "cpu"]) == 0
    return out


@pytest.fixture(scope="session")
def row_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(dataset, run): six synthetic row exams at different heights (tests/row_support.py) and a two-fold run on
    them (baseline, preset ``tiny``, ``--postprocess largest``): its rows ordered by the level model."""
    from row_support import write_row_dataset
    from spar_core.cli import main

    base = tmp_path_factory.mktemp("rows")
    root = write_row_dataset(base / "data")
    run = base / "run"
    assert main(["crossval", "--dataset", str(root), "--methods", "baseline", "--folds", "2", "--preset", "tiny",
                 "--out", str(run), "--device", "cpu", "--postprocess", "largest"]) == 0
    return root, run


@pytest.fixture(scope="session")
def app_roots(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(data root holding phantoms_ankle, runs root holding the finished run 'tiny'), built once per session.

    'tiny': four ankle phantoms, the four methods, two folds, preset ``tiny`` (about a minute on two busy
    cores), then ``spar embed`` (the three maps) and ``spar triage`` on it, as the app's pages expect.
    """
    from spar_core.cli import main
    from spar_core.data.phantoms import generate_cohort

    base = tmp_path_factory.mktemp("app_roots")
    data, runs = base / "data", base / "runs"
    generate_cohort("ankle", data / "phantoms_ankle", subjects=4, seed=0)
    run = str(runs / "tiny")
    # the paper's post-processing: with two exams per fold, --postprocess auto could show no step helps, and the
    # pages' post-processing toggle would have nothing to switch
    assert main(["crossval", "--dataset", str(data / "phantoms_ankle"), "--methods", "all", "--folds", "2",
                 "--preset", "tiny", "--out", run, "--device", "cpu", "--postprocess", "largest"]) == 0
    assert main(["embed", run]) == 0
    assert main(["triage", run]) == 0
    return data, runs
