"""The app in a real browser: ``streamlit run`` as a server, Debian's chromium driven by Playwright.

Visits every page of the navigation, moves the slice slider with the keyboard, uploads a file that is not a
NIfTI image on the Runs page, and checks that no page shows a Python exception or an unexpected error.
Skipped where Playwright or ``/usr/bin/chromium`` is missing (``.ci/run`` installs both). Never uses
Playwright's own browser download.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

playwright_sync = pytest.importorskip("playwright.sync_api")

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
EXCEPTION = '[data-testid="stException"]'
ERROR = '[data-testid="stAlertContentError"]'
TIMEOUT_MS = 30_000

if not CHROMIUM.is_file():
    pytest.skip(f"{CHROMIUM} not found (apt-get install chromium); the browser test needs it",
                allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``streamlit run app/main.py`` on a free port, on two phantom exams per cohort and an empty runs root."""
    from spar_core.data.phantoms import generate_cohort

    tmp = tmp_path_factory.mktemp("browser")
    data, runs = tmp / "data", tmp / "runs"
    for anatomy in ("ankle", "shoulder"):
        generate_cohort(anatomy, data / f"phantoms_{anatomy}", subjects=2, seed=0)
    runs.mkdir()
    port = _free_port()
    env = {**os.environ, "SPAR_DATA_ROOT": str(data), "SPAR_RUNS_ROOT": str(runs), "SPAR_PHANTOM_SUBJECTS": "2"}
    log = open(tmp / "streamlit.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                    if answer.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start:\n{(tmp / 'streamlit.log').read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


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


def problems(page) -> list[str]:
    """Texts of the exceptions and error alerts on the page."""
    return [el.inner_text() for el in page.locator(f"{EXCEPTION}, {ERROR}").all()]


def test_every_page_renders_in_a_real_browser(server: str) -> None:
    with playwright_sync.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            page_errors: list[str] = []
            page.on("pageerror", lambda err: page_errors.append(str(err)))
            page.goto(server)
            page.locator(".js-plotly-plot").first.wait_for()  # the default page, the slice browser
            wait_idle(page)
            assert not problems(page)

            # Slice browser: the slice slider follows the keyboard, and the figure follows the slider.
            slider = page.get_by_role("slider", name=re.compile(r"^Slice")).first  # an <input type="range">
            before = int(slider.input_value())
            low, high = int(slider.get_attribute("min")), int(slider.get_attribute("max"))
            slider.focus()
            key, after = ("ArrowRight", before + 1) if before < high else ("ArrowLeft", before - 1)
            assert low <= after <= high
            page.keyboard.press(key)
            page.wait_for_function(
                "(text) => [...document.querySelectorAll('.js-plotly-plot .gtitle')]"
                ".some(t => t.textContent.includes(text))",
                arg=f"slice {after} of {high}",
            )
            wait_idle(page)
            assert int(slider.input_value()) == after
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
