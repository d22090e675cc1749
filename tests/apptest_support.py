"""Starting the app under AppTest on given roots, and a run folder that has only started (shared by page tests)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

MAIN = str(Path(__file__).resolve().parents[1] / "app" / "main.py")


def start_app(monkeypatch: pytest.MonkeyPatch, data: Path, runs: Path, page: str | None = None,
              timeout: float = 120) -> AppTest:
    """The app on these roots, switched to ``views/<page>.py`` when given."""
    monkeypatch.setenv("SPAR_DATA_ROOT", str(data))
    monkeypatch.setenv("SPAR_RUNS_ROOT", str(runs))
    monkeypatch.delenv("SPAR_PHANTOM_SUBJECTS", raising=False)
    at = AppTest.from_file(MAIN, default_timeout=timeout).run()
    if page is not None:
        at.switch_page(f"views/{page}.py").run()
    return at


def started_run(finished: Path, runs: Path, name: str = "started") -> Path:
    """A copy of ``finished``'s config and fold-0 split only: no model, metrics, maps or triage yet."""
    started = runs / name
    (started / "folds" / "0").mkdir(parents=True)
    shutil.copy(finished / "run.json", started / "run.json")
    shutil.copy(finished / "folds" / "0" / "split.json", started / "folds" / "0" / "split.json")
    return started


def viewer_scenes(at: AppTest) -> list[tuple[dict, dict]]:
    """Every volume viewer on the page: (header, arrays) of the scene it was handed (see
    :func:`spar_core.figures.volume_scene.read_scene`)."""
    from spar_core.figures.volume_scene import read_scene

    return [read_scene(e.proto.bytes) for e in at.get("bidi_component")
            if e.proto.component_name == "spar_volume_viewer"]
