"""Several worker processes on one machine, each running a share of a command's grid (``--shard i/n``) with its
share of the cores: on two cores, two one-thread workers train 1.32× the steps of one two-thread process
(``bench/threads.py``), because a small network's step does not keep two threads busy.

The workers are the same command run again, as a job array would run it; the caller then runs the command once
more in its own process, which finds every unit done and only merges (and decides what is decided over all
folds). Torch-free: it starts processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Sequence

from spar_core.errors import SparError

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def without_option(argv: Sequence[str], option: str) -> list[str]:
    """``argv`` without ``option`` and its value (``--workers 2`` or ``--workers=2``)."""
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == option:
            skip = True
        elif not item.startswith(option + "="):
            out.append(item)
    return out


def threads_each(count: int, cores: int | None = None) -> int:
    """The threads each of ``count`` workers gets: the cores shared out, at least one."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, int(cores) // count)


def run_workers(argv: Sequence[str], count: int, *, poll_s: float = 0.5) -> None:
    """Run ``spar <argv> --shard i/count`` for i < ``count`` side by side and wait for all of them.

    Each worker's output goes where this process's goes (progress lines carry their fold and method). Ctrl-C or
    SIGTERM stops every worker (they record that they stopped; finished units stay).

    Raises:
        SparError: a worker ended with a non-zero status (the others are stopped); its own message is above.
    """
    if count < 1:
        raise SparError(f"--workers {count}: expected a number of processes ≥ 1")
    env = {**os.environ, **{name: str(threads_each(count)) for name in THREAD_VARIABLES}}
    procs = [subprocess.Popen([sys.executable, "-m", "spar_core", *argv, "--shard", f"{i}/{count}"], env=env)
             for i in range(count)]
    try:
        while True:
            codes = [p.poll() for p in procs]
            failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                i, code = failed[0]
                _stop(procs)
                raise SparError(f"--workers: worker {i} of {count} stopped with exit status {code} (its message "
                                "is above); finished units stay: run the same command again to continue")
            if all(c == 0 for c in codes):
                return
            time.sleep(poll_s)
    except BaseException:
        _stop(procs)
        raise


def _stop(procs: Sequence[subprocess.Popen]) -> None:
    """SIGTERM to every running worker, then wait (SIGKILL after 30 s)."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
