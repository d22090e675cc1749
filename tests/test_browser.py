"""The app in a real browser: ``streamlit run`` as a server, Debian's chromium driven by Playwright.

Visits every page of the navigation, moves the slice slider with the keyboard, uploads a file that is not a
NIfTI image on the Runs page, and checks that no page shows a Python exception or an unexpected error.
Skipped where Playwright or ``/usr/bin/chromium`` is missing (``.ci/run`` installs both). Never uses
Playwright's own browser download.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from browser_support import CHROMIUM, VIEWER, app_server, launch, pixels, wait_viewer

playwright_sync = pytest.importorskip("playwright.sync_api")

EXCEPTION = '[data-testid="stException"]'
ERROR = '[data-testid="stAlertContentError"]'
TIMEOUT_MS = 30_000

if not CHROMIUM.is_file():
    pytest.skip(f"{CHROMIUM} not found (apt-get install chromium); the browser test needs it",
                allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on two phantom exams per cohort and an empty runs root."""
    from spar_core.data.phantoms import generate_cohort

    tmp = tmp_path_factory.mktemp("browser")
    data, runs = tmp / "data", tmp / "runs"
    for anatomy in ("ankle", "shoulder"):
        generate_cohort(anatomy, data / f"phantoms_{anatomy}", subjects=2, seed=0)
    runs.mkdir()
    with app_server(data, runs, tmp / "streamlit.log", SPAR_PHANTOM_SUBJECTS="2") as url:
        yield url


@pytest.fixture(scope="module")
def run_server(app_roots: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on the session's tiny finished run (conftest.app_roots)."""
    with app_server(*app_roots, tmp_path_factory.mktemp("browser_run") / "streamlit.log") as url:
        yield url


def wait_idle(page, new_title_after: str | None = None) -> None:
    """Until the script has finished its run and no element is stale (left over from the previous run);
    with ``new_title_after``, also until the page title (h1) is another one (a page switch went through)."""
    page.wait_for_function(
        """(previous) => {
            const app = document.querySelector('[data-testid="stApp"]');
            const title = document.querySelector('h1');
            return app && app.getAttribute('data-test-script-state') === 'notRunning'
                && !document.querySelector('[data-testid="stElementContainer"][data-stale="true"]')
                && (previous === null || (title !== null && title.textContent.trim() !== previous));
        }""",
        arg=new_title_after,
        timeout=TIMEOUT_MS,
    )


def _page(browser, width: int = 1400, height: int = 1000) -> tuple[object, list[str]]:
    """A new page and the list its uncaught script errors are collected in."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(TIMEOUT_MS)
    page_errors: list[str] = []
    page.on("pageerror", lambda err: page_errors.append(str(err)))
    return page, page_errors


def problems(page) -> list[str]:
    """Texts of the exceptions and error alerts on the page."""
    return [el.inner_text() for el in page.locator(f"{EXCEPTION}, {ERROR}").all()]


def test_every_page_renders_in_a_real_browser(server: str) -> None:
    with playwright_sync.sync_playwright() as driver:
        browser = launch(driver)
        try:
            page, page_errors = _page(browser)
            page.goto(server)
            wait_viewer(page)  # the default page, the slice browser
            wait_idle(page)
            assert not problems(page)

            # Every page of the navigation.
            links = page.locator('[data-testid="stSidebarNavLink"]')
            titles = [text.strip().splitlines()[-1] for text in links.all_inner_texts()]  # after the icon's name
            assert {"Slice browser", "Runs"} <= set(titles)
            visited = [page.locator("h1").first.inner_text().strip()]
            for i, title in enumerate(titles[1:], start=1):  # the first is the page shown now
                links.nth(i).click()
                wait_idle(page, new_title_after=visited[-1])
                visited.append(page.locator("h1").first.inner_text().strip())
                assert not problems(page), f"page {title!r}: {problems(page)}"
            assert len(set(visited)) == len(titles), visited

            # Runs page: offers the demo on an empty runs root, and a bad upload is a message, not a crash.
            if visited[-1] != "Runs":
                links.nth(titles.index("Runs")).click()
                wait_idle(page, new_title_after=visited[-1])
            page.get_by_text("No run yet").wait_for()
            page.get_by_role("tab", name="Segment an exam").click()
            page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
                {"name": "bad.nii.gz", "mimeType": "application/gzip", "buffer": b"not an image"})
            error = page.locator(ERROR).filter(has_text="upload 'bad.nii.gz'")
            error.wait_for()
            wait_idle(page)
            assert page.locator(EXCEPTION).count() == 0
            assert page.locator(ERROR).count() == 1
            assert not page_errors, page_errors
        finally:
            browser.close()


def _slice(canvas) -> int:
    return int(canvas.get_attribute("data-slice"))


def _scroll_and_check(page, viewer, where: str) -> None:
    """The wheel and the keys step the first canvas's slice; each step draws another, non-blank image, and going
    back draws the first one again."""
    canvas = viewer.locator("canvas").first
    canvas.scroll_into_view_if_needed()
    first, start = pixels(canvas.screenshot()), _slice(canvas)
    assert first.std() > 10, f"{where}: the canvas is blank"
    canvas.hover()
    delta = -120 if start > 0 else 120  # towards a slice that exists
    page.mouse.wheel(0, delta)
    page.wait_for_function("([c, s]) => c.dataset.slice !== String(s)", arg=[canvas.element_handle(), start])
    moved = pixels(canvas.screenshot())
    assert moved.std() > 10 and np.abs(moved.astype(int) - first).mean() > 0.5, f"{where}: the wheel drew nothing new"
    viewer.focus()
    page.keyboard.press("ArrowDown" if delta > 0 else "ArrowUp")  # and back with the keys
    page.wait_for_function("([c, s]) => c.dataset.slice === String(s)", arg=[canvas.element_handle(), start])
    np.testing.assert_array_equal(pixels(canvas.screenshot()), first, err_msg=f"{where}: not the same slice again")
    viewer.locator("input.spv-slice").fill("0")  # and the toolbar's slider
    page.wait_for_function("(c) => c.dataset.slice === '0'", arg=canvas.element_handle())


def test_viewer_scrolls_with_wheel_and_keys_on_every_viewer_page(run_server: str) -> None:
    with playwright_sync.sync_playwright() as driver:
        browser = launch(driver)
        try:
            page, page_errors = _page(browser)
            for path, tab in [("", None), ("compare", None), ("triage", "Uncertainty")]:
                page.goto(f"{run_server}/{path}")
                wait_idle(page)
                if tab is not None:
                    page.get_by_role("tab", name=tab).click()
                viewer = wait_viewer(page)
                assert not problems(page), f"/{path}: {problems(page)}"
                _scroll_and_check(page, viewer, f"/{path}")
                if path == "compare":  # truth + four methods, all on the slice just shown
                    slices = {c.get_attribute("data-slice") for c in viewer.locator("canvas").all()}
                    assert viewer.locator("canvas").count() == 5 and len(slices) == 1

            # Three planes on one crosshair: a click on the axial view moves the sagittal and coronal slices.
            page.goto(run_server)
            wait_idle(page)
            viewer = wait_viewer(page)
            viewer.locator("select.spv-plane").select_option("3 planes")
            canvases = {c.get_attribute("data-plane"): c for c in viewer.locator("canvas").all()}
            assert sorted(canvases) == ["axial", "coronal", "sagittal"]
            before = {p: _slice(c) for p, c in canvases.items()}
            box = canvases["axial"].bounding_box()
            canvases["axial"].click(position={"x": box["width"] * 0.3, "y": box["height"] * 0.7})
            # a crosshair move is drawn on the next animation frame: wait for it
            page.wait_for_function("([c, s]) => c.dataset.slice !== String(s)",
                                   arg=[canvases["sagittal"].element_handle(), before["sagittal"]])
            after = {p: _slice(c) for p, c in canvases.items()}
            assert after["axial"] == before["axial"]
            assert after["sagittal"] != before["sagittal"] and after["coronal"] != before["coronal"]
            assert "voxel (" in viewer.get_attribute("data-hover")
            assert not page_errors, page_errors
        finally:
            browser.close()


def test_notebook_viewer_draws_from_its_cell_html_alone(tmp_path: Path) -> None:
    """The HTML a notebook cell shows holds the viewer and the exam: opened as a file, with no server, it draws
    the exam and follows the keys."""
    from spar_core.figures.notebook_viewer import notebook_viewer
    from spar_core.figures.volume_scene import Panel, volume_scene

    rng = np.random.default_rng(0)
    image = rng.normal(0.5, 0.1, (48, 40, 12)).astype(np.float32)
    label = np.zeros(image.shape, np.uint8)
    label[10:30, 8:20, 2:10] = 1
    image[label > 0] += 0.4
    scene = volume_scene(image, np.diag([0.8, 0.8, 3.0, 1.0]), layers={"truth": label},
                         panels=[Panel("cell", fill="truth")], names={1: "bone"}, slice_axis=2, exam="cell")
    page_file = tmp_path / "cell.html"
    page_file.write_text(f"<!doctype html><html><body>{notebook_viewer(scene).html}</body></html>")
    with playwright_sync.sync_playwright() as driver:
        browser = launch(driver)
        try:
            page, page_errors = _page(browser, width=900, height=800)
            page.goto(page_file.as_uri())
            viewer = wait_viewer(page)
            canvas = viewer.locator("canvas").first
            first = pixels(canvas.screenshot())
            assert first.std() > 10
            start = _slice(canvas)
            viewer.focus()
            page.keyboard.press("ArrowUp" if start < 11 else "ArrowDown")
            page.wait_for_function("([c, s]) => c.dataset.slice !== String(s)", arg=[canvas.element_handle(), start])
            assert np.abs(pixels(canvas.screenshot()).astype(int) - first).mean() > 0.5
            assert not page_errors, page_errors
        finally:
            browser.close()
