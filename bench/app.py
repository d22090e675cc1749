"""The app in headless Chromium: how long a slice step takes to reach the screen on the browse and compare pages,
and how long the first view of an exam takes, on a real spine exam and on the same exam resampled larger.

    python bench/app.py --spine ../shared/data/myosegmentum_spine [--case spine_002] [--steps 40]

Builds, in a temporary folder, two one-exam datasets — the spine exam as it is (224 × 224 × 77) and resampled
to 384 × 384 × 50 (image linear, labels nearest) — and for each a run folder whose four "methods" predict the
truth shifted by 1-4 voxels (what is drawn matters, not how good it is). Then, for each exam, it starts
``streamlit run app/main.py`` (tests/browser_support.py), opens Debian's chromium through Playwright, and on
the slice browser and the compare page (truth + four methods):

* first view: from ``page.goto`` to the viewer's first drawn frame (server start-up excluded: the page is
  loaded once before), and the viewer's own share (decompressing the scene and drawing it);
* ``--steps`` slice steps by arrow key and as many by mouse wheel, each waited for on screen, then the
  viewer's latency records (input event's timestamp -> the frame after the redraw, see
  ``window.__sparViewerTimings`` in volume_viewer.js); also window/level drags and, on the browse page, steps
  with the three planes shown.

Reference in the same page: one empty double ``requestAnimationFrame`` (the frame floor any on-screen change
pays); latencies are also printed as multiples of it. Target: a slice step ≤ 50 ms median, a first view ≤ 2 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nibabel
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from browser_support import CHROMIUM, app_server, launch, wait_viewer  # noqa: E402

METHODS = ("baseline", "adversarial", "shape", "spar")
LARGE = (384, 384, 50)
STEP_TARGET_MS, FIRST_VIEW_TARGET_S = 50.0, 2.0


def _save(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nibabel.save(nibabel.Nifti1Image(array, affine), path)


def build(spine: Path, case: str, out: Path, shape: tuple[int, int, int] | None) -> tuple[Path, Path]:
    """A data root holding one dataset with ``case`` (resampled to ``shape`` when given) and a runs root
    holding one run whose four methods predict the truth shifted by 1-4 voxels."""
    from scipy.ndimage import zoom

    from spar_core.layout.run_folder import RunFolder
    from spar_core.data.splits import Split

    meta = json.loads((spine / "dataset.json").read_text())
    image_nii = nibabel.load(spine / "imagesTr" / f"{case}.nii.gz")
    image = np.asarray(image_nii.dataobj, dtype=np.float32)
    label = np.asarray(nibabel.load(spine / "labelsTr" / f"{case}.nii.gz").dataobj).astype(np.uint8)
    affine = image_nii.affine.copy()
    if shape is not None:
        factors = [n / o for n, o in zip(shape, image.shape)]
        image, label = zoom(image, factors, order=1), zoom(label, factors, order=0)
        affine[:3, :3] = affine[:3, :3] / np.asarray(factors)
    name = f"{case}_{'x'.join(map(str, image.shape))}"
    data, runs = out / "data", out / "runs"
    dataset = data / "bench"
    _save(image, affine, dataset / "imagesTr" / f"{name}.nii.gz")
    _save(label, affine, dataset / "labelsTr" / f"{name}.nii.gz")
    (dataset / "dataset.json").write_text(json.dumps({
        "name": "bench", "labels": meta["labels"], "slice_axis": meta.get("slice_axis", 0),
        "training": [{"image": f"./imagesTr/{name}.nii.gz", "label": f"./labelsTr/{name}.nii.gz"}]}))
    run = RunFolder(runs / "bench")
    run.root.mkdir(parents=True)
    run.write_config({"kind": "crossval", "dataset": str(dataset), "dataset_name": "bench",
                      "labels": meta["labels"], "methods": list(METHODS), "slice_axis": meta.get("slice_axis", 0)})
    run.write_split(Split(fold=0, train=(), test=(name,)))
    for shift, method in enumerate(METHODS, start=1):
        path = run.prediction_path(0, method, name)
        _save(np.roll(label, shift, axis=1), affine, path)
    return data, runs


def frame_floor_ms(page, repeats: int = 30) -> float:
    """Median ms of an empty double requestAnimationFrame in the page."""
    return page.evaluate("""async (n) => {
        const times = [];
        for (let i = 0; i < n; i++) {
            const t0 = performance.now();
            await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
            times.push(performance.now() - t0);
        }
        times.sort((a, b) => a - b);
        return times[Math.floor(n / 2)];
    }""", repeats)


def first_view_s(page, url: str) -> tuple[float, float]:
    """(seconds from navigation to the viewer drawn, the viewer's own ms to decode and draw the scene)."""
    start = time.perf_counter()
    page.goto(url)
    viewer = wait_viewer(page, timeout_ms=120_000)
    return time.perf_counter() - start, float(viewer.get_attribute("data-load-ms"))


def steps(page, viewer, n: int, how: str) -> None:
    """``n`` slice steps by ``how`` ("key" or "wheel"), back and forth, each waited for on screen."""
    canvas = viewer.locator("canvas").first
    canvas.hover()
    viewer.focus()
    handle = canvas.element_handle()
    for i in range(n):
        before = canvas.get_attribute("data-slice")
        up = (i // 10) % 2 == 0  # ten slices one way, ten back
        if how == "key":
            page.keyboard.press("ArrowUp" if up else "ArrowDown")
        else:
            page.mouse.wheel(0, 120 if up else -120)
        page.wait_for_function("([c, s]) => c.dataset.slice !== s", arg=[handle, before])
        page.wait_for_timeout(30)  # let the latency record land (one frame after the redraw)


def window_drags(page, viewer, n: int) -> None:
    box = viewer.locator("canvas").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down(button="right")
    for i in range(n):
        page.mouse.move(x + 5 * (i + 1), y + 3 * (i + 1))
        page.wait_for_timeout(30)
    page.mouse.up(button="right")


def records(page) -> list[dict]:
    out = page.evaluate("window.__sparViewerTimings || []")
    page.evaluate("window.__sparViewerTimings = []")
    return out


def summary(values: list[float], floor: float) -> str:
    if not values:
        return "no records"
    med = statistics.median(values)
    verdict = "ok" if med <= STEP_TARGET_MS else "SLOW"
    return f"median {med:5.1f} ms, max {max(values):5.1f} ms over {len(values)} ({med / floor:.1f} × the double-rAF floor) {verdict}"


def bench_exam(data: Path, runs: Path, log: Path, n: int) -> None:
    from playwright.sync_api import sync_playwright

    with app_server(data, runs, log) as url, sync_playwright() as driver:
        browser = launch(driver)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            for path in ("", "compare"):
                page.goto(f"{url}/{path}")
                wait_viewer(page, timeout_ms=120_000)  # the first visit fills the server's caches
                first, own = first_view_s(page, f"{url}/{path}")
                floor = frame_floor_ms(page)
                viewer = wait_viewer(page)
                panels = viewer.locator("canvas").count()
                name = "browse" if path == "" else "compare"
                verdict = "ok" if first <= FIRST_VIEW_TARGET_S else "SLOW"
                print(f"  {name:<8} {panels} canvas(es); first view {first:.2f} s ({verdict}; the viewer's decode "
                      f"+ draw {own:.0f} ms); double-rAF floor {floor:.1f} ms")
                records(page)
                for how in ("key", "wheel"):
                    steps(page, viewer, n, how)
                    got = [r["ms"] for r in records(page) if r["kind"] == how]
                    print(f"    slice step by {how:<5}: {summary(got, floor)}")
                window_drags(page, viewer, 20)
                got = [r["ms"] for r in records(page) if r["kind"] == "window"]
                print(f"    window/level drag  : {summary(got, floor)}")
                if path == "":
                    viewer.locator("select.spv-plane").select_option("3 planes")
                    records(page)
                    steps(page, viewer, n, "key")
                    got = [r["ms"] for r in records(page) if r["kind"] == "key"]
                    print(f"    3 planes, key step : {summary(got, floor)}")
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spine", type=Path, required=True, help="the MyoSegmenTUM spine dataset folder")
    parser.add_argument("--case", default="spine_002", help="the exam to show (default spine_002)")
    parser.add_argument("--steps", type=int, default=40, help="slice steps per input kind and page")
    args = parser.parse_args(argv)
    if not CHROMIUM.is_file():
        raise SystemExit(f"{CHROMIUM} not found (apt-get install chromium)")
    if not (args.spine / "imagesTr" / f"{args.case}.nii.gz").is_file():
        raise SystemExit(f"{args.spine}: no imagesTr/{args.case}.nii.gz")
    tmp = Path(tempfile.mkdtemp(prefix="spar_bench_app_"))
    try:
        import os

        print(f"chromium {CHROMIUM}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
        for shape in (None, LARGE):
            out = tmp / ("native" if shape is None else "large")
            data, runs = build(args.spine, args.case, out, shape)
            exam = next((data / "bench" / "imagesTr").iterdir()).name
            print(f"\n{exam}:")
            bench_exam(data, runs, out / "streamlit.log", args.steps)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
