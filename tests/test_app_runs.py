"""The first-launch offer and the Runs page through AppTest: with no run, the first page offers the demo run,
starting it launches a background job whose progress the page follows; the Runs page starts jobs from its
forms and lists them. Jobs started here are cancelled at once (they are real ``spar`` processes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from apptest_support import start_app, viewer_scenes
from spar_core.runs import jobs

pytestmark = pytest.mark.slow


@pytest.fixture
def cancel_jobs():
    """Runs roots whose jobs are cancelled after the test, whatever happened."""
    roots: list[Path] = []
    yield roots.append
    for root in roots:
        for job in jobs.list_jobs(root):
            jobs.cancel(job)


def _button(at: AppTest, key: str):
    found = [b for b in at.button if b.key == key]
    assert found, f"no button {key!r}; buttons: {[b.key for b in at.button]}"
    return found[0]


def test_first_page_offers_the_demo_run_and_follows_it(app_roots: tuple[Path, Path], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch, cancel_jobs) -> None:
    data, runs = app_roots[0], tmp_path / "fresh_runs"
    cancel_jobs(runs)
    at = start_app(monkeypatch, data, runs)
    assert not at.exception and not at.error
    assert any("No run yet" in i.value for i in at.info)
    assert viewer_scenes(at), "the slice browser works while no run exists"

    _button(at, "demo_offer_browse").click().run()
    assert not at.exception and not at.error
    job = jobs.running_job("demo", runs)
    assert job is not None, "the button started no demo job"
    assert job.info()["args"][:3] == ["demo", "--out", str((runs / jobs.DEMO_RUN).resolve())]
    assert any("building the demo run" in i.value for i in at.info)
    assert not [b for b in at.button if b.key == "demo_offer_browse"], "a second demo must not be offered"

    jobs.cancel(job)
    at.run()
    assert not at.exception
    assert any("No run yet" in i.value for i in at.info), "a cancelled demo is offered again"


def test_first_start_builds_the_demo_run_by_itself_and_says_so_on_every_page(
        app_roots: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cancel_jobs) -> None:
    data, runs = app_roots[0], tmp_path / "first_start"
    cancel_jobs(runs)
    monkeypatch.setenv("SPAR_DEMO_AUTOSTART", "1")
    at = start_app(monkeypatch, data, runs)
    assert not at.exception and not at.error
    job = jobs.running_job("demo", runs)
    assert job is not None, "no demo job started on a runs root without runs"
    assert job.info()["args"][:3] == ["demo", "--out", str((runs / jobs.DEMO_RUN).resolve())]
    for page in ("browse", "compare", "results", "latent", "triage", "runs"):
        at.switch_page(f"views/{page}.py").run()
        assert not at.exception, page
        assert any("building the demo run" in i.value for i in at.info), f"{page}: not announced"
    assert len(jobs.list_jobs(runs)) == 1, "every rerun must not start another job"

    jobs.cancel(job)
    again = start_app(monkeypatch, data, runs)  # a later start: cancelled once, not started again
    assert not again.exception
    assert jobs.running_job("demo", runs) is None and len(jobs.list_jobs(runs)) == 1
    assert not any("building the demo run" in i.value for i in again.info)


def test_pages_that_need_a_run_offer_the_demo(app_roots: tuple[Path, Path], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    at = start_app(monkeypatch, app_roots[0], tmp_path / "no_runs", page="results")
    assert not at.exception and not at.error
    assert any("needs a run" in i.value for i in at.info)
    _button(at, "demo_offer_required")


def test_no_offer_once_a_run_exists(app_roots: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    at = start_app(monkeypatch, *app_roots)
    assert not at.exception
    assert not any("No run yet" in i.value for i in at.info)
    assert not [b for b in at.button if (b.key or "").startswith("demo_offer")]


def test_runs_page_starts_a_crossval_job_and_lists_it(app_roots: tuple[Path, Path], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch, cancel_jobs) -> None:
    data, runs = app_roots[0], tmp_path / "runs"
    cancel_jobs(runs)
    at = start_app(monkeypatch, data, runs, page="runs")
    assert not at.exception and not at.error
    assert [t.label for t in at.tabs] == ["Demo", "Cross-validation", "Segment an exam"]
    assert any("No job yet" in c.value for c in at.caption)

    form = at.tabs[1]
    form.selectbox[0].set_value("phantoms_ankle")
    form.selectbox[2].set_value("tiny")
    form.text_input[0].set_value("from_app")
    form.number_input[0].set_value(2)
    form.button[0].click().run()
    assert not at.exception and not at.error
    listed = jobs.list_jobs(runs)
    assert len(listed) == 1
    args = listed[0].info()["args"]
    assert args[0] == "crossval" and "tiny" in args and str(runs / "from_app") in args
    assert args[args.index("--workers") + 1] == "2"
