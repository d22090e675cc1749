"""Server time of the main widget changes on the latent-convergence and triage pages (the pages whose widgets
still rerun the script; slice steps are drawn in the browser, see ``bench/app.py``).

    python bench/app_server.py --data /tmp/demo_data --runs-root /tmp/runs [--run demo] [--moves 12]

(or set ``SPAR_DATA_ROOT`` / ``SPAR_RUNS_ROOT``). The run's dataset must lie inside the data root.

What is timed: the whole app script rerun a widget change triggers (router, shared sidebar, the page: cached
loads, figures, serialization), driven headless with Streamlit's ``AppTest`` after a warm-up that fills the
caches. Network and browser drawing are not included. ``AppTest`` recompiles the scripts on every run, which a
server does not (it keeps their bytecode): the bench shares one script cache across runs, as a server does.

Three numbers per change: ``AppTest`` wall time (adds its own polling and element-tree parsing), the script
thread's wall time (the server time) and its CPU time (on a machine shared with other jobs the wall times swell,
the CPU time much less). Reference, to compare machines: building one ``slice_figure`` of the run's first
tested exam in the same process, and the ratio of the script's CPU time to the reference's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MAIN = str(REPO / "app" / "main.py")


SCRIPT_TIMES: list[tuple[float, float]] = []  # (wall ms, CPU ms) of each script run, in its own thread


def median_ms(fn: Callable[[], object], repeats: int, clock: Callable[[], float] = time.perf_counter) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return 1000 * statistics.median(times)


def time_script_runs() -> None:
    """Record wall and CPU time of every script run, measured in the script thread itself."""
    from streamlit.runtime.scriptrunner import script_runner

    original = script_runner.ScriptRunner._run_script_thread

    def timed(self, *args, **kwargs):
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return original(self, *args, **kwargs)
        finally:
            SCRIPT_TIMES.append((1000 * (time.perf_counter() - wall), 1000 * (time.thread_time() - cpu)))

    script_runner.ScriptRunner._run_script_thread = timed


def selectbox_changes(at, key: str, moves: int) -> list[tuple[float, float, float]]:
    """(AppTest wall, script wall, script CPU) ms of ``moves`` picks cycling through a selectbox's options,
    after one warm-up pass over them (first views fill the caches; what is timed is coming back)."""
    count = len(at.selectbox(key=key).options)
    for i in range(count):  # warm-up
        at.selectbox(key=key).select_index(i).run()
    times = []
    for m in range(moves):
        start = time.perf_counter()
        at.selectbox(key=key).select_index(m % count).run()
        times.append((1000 * (time.perf_counter() - start), *SCRIPT_TIMES[-1]))
        if at.exception:
            raise SystemExit(f"the page raised: {at.exception[0].value}")
    return times


def toggle_flips(at, key: str, moves: int) -> list[tuple[float, float, float]]:
    """The same for ``moves`` flips of a toggle (after a warm-up on and off)."""
    for value in (True, False):
        at.toggle(key=key).set_value(value).run()
    times = []
    for m in range(moves):
        start = time.perf_counter()
        at.toggle(key=key).set_value(m % 2 == 0).run()
        times.append((1000 * (time.perf_counter() - start), *SCRIPT_TIMES[-1]))
        if at.exception:
            raise SystemExit(f"the page raised: {at.exception[0].value}")
    return times


def share_script_cache() -> None:
    """Make AppTest keep compiled scripts across runs, as a Streamlit server does."""
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from streamlit.testing.v1 import app_test, local_script_runner

    shared = ScriptCache()
    local_script_runner.ScriptCache = lambda: shared
    app_test.ScriptCache = lambda: shared


def reference_ms(run_dir: Path, dataset_dir: Path, repeats: int) -> float:
    """CPU ms of one ``slice_figure`` of the run's first tested exam on its busiest slice (the reference)."""
    from spar_core.data.dataset import load_dataset, load_volume
    from spar_core.data.slicing import normalize_intensity
    from spar_core.figures import busiest_slice, extract_slice, in_plane_spacing, slice_figure
    from spar_core.layout.run_folder import RunFolder

    run = RunFolder(run_dir)
    case = run.read_split(run.folds()[0]).test[0]
    dataset = load_dataset(dataset_dir)
    volume = load_volume(dataset, case)
    image, axis = np.ascontiguousarray(normalize_intensity(volume.image)), volume.slice_axis
    label = np.ascontiguousarray(volume.label)
    index = busiest_slice(label, axis)
    names = {v: n for n, v in dataset.structures.items()}
    image2d, label2d = extract_slice(image, axis, index), extract_slice(label, axis, index)
    spacing = in_plane_spacing(volume.spacing, axis)
    return median_ms(lambda: slice_figure(image2d, label2d, spacing2d=spacing, names=names, axis=axis, index=index),
                     repeats, time.thread_time)


# (page, widget key, what is changed, timer): the server work of the other pages' main widgets.
PAGE_WIDGETS = [
    ("latent", "latent_point", "open another point's mask", selectbox_changes),
    ("latent", "latent_method", "switch method", selectbox_changes),
    ("triage", "triage_exam", "open another exam", selectbox_changes),
    ("triage", "triage_3d", "3D surface on/off", toggle_flips),
]


def _table(results: dict[str, list[tuple[float, float, float]]], reference: float) -> None:
    print(f"{'page':<36}{'AppTest':>15}{'server':>15}{'server CPU':>15}{'CPU × ref':>11}")
    for page, times in results.items():
        cols = [(statistics.median(c), max(c)) for c in zip(*times)]
        cells = "".join(f"{f'{m:.0f} ({x:.0f})':>15}" for m, x in cols)
        print(f"{page:<36}{cells}{cols[2][0] / reference:>11.1f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=os.environ.get("SPAR_DATA_ROOT"),
                        help="data root holding the run's dataset (default $SPAR_DATA_ROOT)")
    parser.add_argument("--runs-root", type=Path, default=os.environ.get("SPAR_RUNS_ROOT"),
                        help="runs root holding the run folder (default $SPAR_RUNS_ROOT)")
    parser.add_argument("--run", default=None, help="run folder name inside the runs root (default: the first)")
    parser.add_argument("--moves", type=int, default=12, help="timed changes per widget")
    parser.add_argument("--repeats", type=int, default=15, help="repeats of the reference timing")
    args = parser.parse_args(argv)
    if args.data is None or args.runs_root is None:
        parser.error("give --data and --runs-root (or set SPAR_DATA_ROOT and SPAR_RUNS_ROOT)")
    os.environ["SPAR_DATA_ROOT"] = str(args.data.resolve())
    os.environ["SPAR_RUNS_ROOT"] = str(args.runs_root.resolve())

    from streamlit.testing.v1 import AppTest

    share_script_cache()
    time_script_runs()
    at = AppTest.from_file(MAIN, default_timeout=300).run()
    if args.run is not None:
        at.selectbox(key="run").set_value(args.run).run()
    if at.exception or at.error:
        raise SystemExit(f"the app did not start cleanly: {[e.value for e in [*at.exception, *at.error]]}")
    run_name = at.selectbox(key="run").value
    run_dir = args.runs_root.resolve() / run_name
    from spar_core.layout.run_folder import RunFolder

    dataset_dir = Path(RunFolder(run_dir).read_config()["dataset"])
    print(f"run {run_dir}, dataset {dataset_dir}; {args.moves} changes per widget after a warm-up")
    reference = reference_ms(run_dir, dataset_dir, args.repeats)
    others = {}
    for page, key, what, timer in PAGE_WIDGETS:
        at.switch_page(f"views/{page}.py").run()
        if at.exception or at.error:
            raise SystemExit(f"{page} page failed: {[e.value for e in [*at.exception, *at.error]]}")
        if not [w for w in [*at.selectbox, *at.toggle] if w.key == key]:
            print(f"({page}: no widget {key!r}; is the run's {page} output missing?)")
            continue
        others[f"{page}: {what}"] = timer(at, key, args.moves)

    print(f"\nms per widget change, median (max) over {args.moves} changes (load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores); reference: one slice_figure, {reference:.1f} ms CPU")
    _table(others, reference)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
