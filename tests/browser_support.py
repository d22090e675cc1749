"""The app as a real server and Debian's chromium driven by Playwright (shared by tests/test_browser.py and
bench/app.py). Never uses Playwright's own browser download."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWER = '[data-testid="spar-volume-viewer"]'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def app_server(data: Path, runs: Path, log_path: Path, **env: str) -> Iterator[str]:
    """``streamlit run app/main.py`` on a free port with SPAR_DATA_ROOT / SPAR_RUNS_ROOT (and ``env``); yields
    its URL once healthy, stops the whole process group after."""
    port = _free_port()
    environ = {**os.environ, "SPAR_DATA_ROOT": str(data), "SPAR_RUNS_ROOT": str(runs), **env}
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=REPO, env=environ, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
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
                raise RuntimeError(f"streamlit did not start:\n{log_path.read_text()[-3000:]}")
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


def launch(driver):
    """Debian's chromium, headless."""
    return driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)


def pixels(png: bytes) -> np.ndarray:
    """A screenshot as an (H, W, 3) uint8 array."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def wait_viewer(page, timeout_ms: float = 30_000):
    """The first volume viewer on the page once its scene is drawn (``data-ready``)."""
    viewer = page.locator(f'{VIEWER}[data-ready="1"]').first
    viewer.wait_for(timeout=timeout_ms)
    return viewer
