"""Background jobs: a ``spar`` command run in its own process group, outside the app, watched through files.

```
RUNS_ROOT/.jobs/<id>/job.json       command, pid, start time, run folder; exit code and end time once it ended
RUNS_ROOT/.jobs/<id>/log.txt        the command's stdout and stderr
RUNS_ROOT/.jobs/<id>/progress.json  the latest progress event (spar_core.progress.JsonProgress)
```

:func:`start` launches ``python -m spar_core.runs.jobs run-wrapped FOLDER`` in a new session. That small wrapper runs
``python -m spar_core ARGS --progress-file FOLDER/progress.json`` and writes the command's exit code into
``job.json``, so a job's end is known even when the app that started it has stopped or restarted. The job
lives on when the app stops. :func:`cancel` sends SIGTERM to the whole process group (wrapper, command, any
worker processes), then SIGKILL after a timeout. POSIX only (sessions, process groups, ``flock``).

Imports neither streamlit nor torch, so the wrapper starts in a few tens of milliseconds.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from spar_core.errors import SparError
from spar_core.training.names import DEFAULT_PRESET
from spar_core.paths import data_root, new_folder, runs_root, write_json
from spar_core.progress import read_progress as _read_progress
from spar_core.runs.lock import holder

JOBS_FOLDER = ".jobs"  # hidden, so run pickers listing the runs root do not take it for a run
DEMO_RUN = "demo"  # the demo's run folder name in the runs root
PROGRESS_COMMANDS = frozenset({"demo", "crossval", "predict"})  # sub-commands that accept --progress-file
START_GRACE_S = 30.0  # a job.json without pid older than this is a start that failed

RUNNING, OK, FAILED, CANCELLED = "running", "ok", "failed", "cancelled"

_LAUNCHED: dict[int, subprocess.Popen] = {}  # wrappers started by this process: polled, so they get reaped
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass(frozen=True)
class Job:
    """One job folder; :meth:`info` reads its ``job.json`` afresh on every call."""

    folder: Path

    @property
    def id(self) -> str:
        return self.folder.name

    @property
    def job_file(self) -> Path:
        return self.folder / "job.json"

    @property
    def log_file(self) -> Path:
        return self.folder / "log.txt"

    @property
    def progress_file(self) -> Path:
        return self.folder / "progress.json"

    @property
    def lock_file(self) -> Path:
        return self.folder / "job.lock"

    def info(self) -> dict[str, Any]:
        """``job.json`` (``{}`` while it is missing or unreadable)."""
        try:
            return json.loads(self.job_file.read_text())
        except (OSError, ValueError):
            return {}


@dataclass(frozen=True)
class JobStatus:
    """Where a job stands: ``state`` is one of running, ok, failed, cancelled; ``message`` is one line."""

    state: str
    exit_code: int | None = None
    message: str = ""

    @property
    def done(self) -> bool:
        return self.state != RUNNING


# ---------------------------------------------------------------------------------------------- starting


def jobs_root(root: str | Path | None = None) -> Path:
    """``ROOT/.jobs`` for the runs root ``root`` (default :func:`~spar_core.paths.runs_root`)."""
    return Path(root or runs_root()) / JOBS_FOLDER


def start(args: Sequence[str | Path], *, title: str = "", run_dir: str | Path | None = None,
          output: str | Path | None = None, root: str | Path | None = None) -> Job:
    """Start ``spar ARGS`` in the background; returns at once with its job.

    Args:
        args: the sub-command and its arguments, e.g. ``["demo", "--preset", "tiny", "--out", RUN]``.
        title: shown in the app's job list (default: the command line).
        run_dir: the run folder the command writes; a second job on a run folder that a running job
            writes is refused.
        output: a file the command writes (e.g. ``spar predict``'s label volume), offered for download.
        root: the runs root holding ``.jobs/`` (default: ``$SPAR_RUNS_ROOT``).

    Raises:
        SparError: a running job already writes ``run_dir``.
    """
    args = [str(a) for a in args]
    if not args:
        raise ValueError("args: expected a spar sub-command and its arguments, got nothing")
    if run_dir is not None:
        run_dir = str(Path(run_dir).resolve())
        for other in list_jobs(root):
            if other.info().get("run_dir") == run_dir and not job_status(other).done:
                raise SparError(f"{run_dir}: job {other.id} is still writing this run folder; "
                                "wait for it or cancel it first")
        who = holder(run_dir)  # a job started elsewhere (a terminal, a scheduler)
        if who is not None:
            raise SparError(f"{run_dir}: {who} is writing this run folder; wait for it to finish first")
    job = Job(new_folder(jobs_root(root)))
    command = [sys.executable, "-m", "spar_core", *args]
    if args[0] in PROGRESS_COMMANDS:
        command += ["--progress-file", str(job.progress_file)]
    _write_info(job, {
        "id": job.id, "title": title or "spar " + " ".join(args), "kind": args[0], "args": args,
        "command": command, "cwd": os.getcwd(), "run_dir": run_dir,
        "output": None if output is None else str(Path(output).resolve()),
        "started": time.time(), "started_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    })
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # the log shows lines as they are printed
    package_parent = str(Path(__file__).resolve().parents[2])  # importable even without an installed package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    with open(job.log_file, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "spar_core.runs.jobs", "run-wrapped", str(job.folder)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    _LAUNCHED[proc.pid] = proc
    _update(job, pid=proc.pid)
    return job


def start_demo_job(preset: str = DEFAULT_PRESET, root: str | Path | None = None, data: str | Path | None = None) -> Job:
    """Build the demo run (``spar demo``) in ``ROOT/demo`` from the phantoms in ``data``, in the background.

    Returns the demo job already running, if there is one, instead of starting a second.
    """
    runs = Path(root or runs_root()).resolve()
    running = running_job("demo", runs)
    if running is not None:
        return running
    out = runs / DEMO_RUN
    return start(["demo", "--out", out, "--data", Path(data or data_root()).resolve(), "--preset", preset],
                 title=f"Demo run ({preset} preset)", run_dir=out, root=runs)


def running_job(kind: str, root: str | Path | None = None) -> Job | None:
    """The newest job of this kind (the sub-command, e.g. "demo") still running in the runs root, if any."""
    return next((job for job in list_jobs(root)
                 if job.info().get("kind") == kind and not job_status(job).done), None)


def _write_info(job: Job, info: dict[str, Any]) -> None:
    write_json(job.job_file, info)


@contextmanager
def _locked(job: Job) -> Iterator[None]:
    """Serialize read-modify-write of ``job.json`` between the app, the wrapper and a cancel."""
    with open(job.lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _update(job: Job, **changes: Any) -> None:
    with _locked(job):
        _write_info(job, {**job.info(), **changes})


# ---------------------------------------------------------------------------------------------- watching


def list_jobs(root: str | Path | None = None) -> list[Job]:
    """The jobs under the runs root ``root``, newest first."""
    base = jobs_root(root)
    if not base.is_dir():
        return []
    return [Job(p) for p in sorted(base.iterdir(), reverse=True) if (p / "job.json").is_file()]


def job_status(job: Job) -> JobStatus:
    """Running, finished ok, failed (with its exit code and last log line) or cancelled."""
    info = job.info()
    cancelled = "cancel_requested" in info
    if "exit_code" in info:
        code = int(info["exit_code"])
        if code == 0:
            return JobStatus(OK, 0, "finished")
        if cancelled:
            return JobStatus(CANCELLED, code, "cancelled")
        last = tail_log(job, 1)
        return JobStatus(FAILED, code, f"failed with exit code {code}" + (f": {last}" if last else ""))
    pid = info.get("pid")
    if pid is None:
        if time.time() - info.get("started", 0.0) < START_GRACE_S:
            return JobStatus(RUNNING, None, "starting")
        return JobStatus(FAILED, None, "never started")
    if _alive(int(pid), job):
        return JobStatus(RUNNING, None, "cancelling" if cancelled else "running")
    if "exit_code" in job.info():  # written just before the wrapper exited
        return job_status(job)
    if cancelled:
        return JobStatus(CANCELLED, None, "cancelled")
    return JobStatus(FAILED, None, "ended without an exit code (killed, or the machine restarted)")


def read_progress(job: Job) -> dict[str, Any] | None:
    """The job's latest progress event (see :class:`~spar_core.progress.JsonProgress`), or None."""
    return _read_progress(job.progress_file)


def tail_log(job: Job, n: int = 40) -> str:
    """The last ``n`` lines of the job's log, with progress bars' carriage-return redraws collapsed."""
    try:
        with open(job.log_file, "rb") as handle:
            handle.seek(max(handle.seek(0, os.SEEK_END) - 65536, 0))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = []
    for line in _ANSI.sub("", text).split("\n"):
        shown = [part for part in line.split("\r") if part.strip()]
        if shown:
            lines.append(shown[-1].rstrip())
    return "\n".join(lines[-n:]) if n > 0 else ""


def _alive(pid: int, job: Job) -> bool:
    """Is ``pid`` still this job's wrapper? (Reaps it when this process started it.)"""
    proc = _LAUNCHED.get(pid)
    if proc is not None:
        if proc.poll() is None:
            return True
        del _LAUNCHED[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # guard against a reused pid; a zombie's cmdline is empty
        return str(job.folder).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust the pid


# ---------------------------------------------------------------------------------------------- stopping


def cancel(job: Job, timeout: float = 5.0) -> JobStatus:
    """Stop a running job: SIGTERM to its process group, SIGKILL after ``timeout`` seconds; returns its status."""
    status = job_status(job)
    if status.done:
        return status
    _update(job, cancel_requested=time.time())
    pid = job.info().get("pid")
    if pid is not None and _alive(int(pid), job):
        pgid = int(pid)  # the wrapper leads its own session and process group
        _kill_group(pgid, signal.SIGTERM)
        if not _wait_group_gone(pgid, timeout):
            _kill_group(pgid, signal.SIGKILL)
            _wait_group_gone(pgid, 2.0)
    return job_status(job)


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    proc = _LAUNCHED.get(pgid)
    if proc is not None:
        proc.poll()  # reap the wrapper, or its zombie keeps the group alive
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _group_alive(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# ---------------------------------------------------------------------------------------------- the wrapper


def run_wrapped(folder: str | Path) -> int:
    """Run the job's command and write its exit code into ``job.json`` (``python -m spar_core.runs.jobs``)."""
    job = Job(Path(folder))
    command = job.info()["command"]
    terminated: list[int] = []
    # SIGTERM reaches the whole group: let the command stop, then record how it ended.
    signal.signal(signal.SIGTERM, lambda signum, _frame: terminated.append(signum))
    print("$ spar " + " ".join(job.info()["args"]), flush=True)
    code = -signal.SIGTERM
    if not terminated:
        code = subprocess.Popen(command, stdin=subprocess.DEVNULL).wait()
    _update(job, exit_code=code, ended=time.time())
    return 0 if code == 0 else 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 2 or argv[0] != "run-wrapped":
        print("usage: python -m spar_core.runs.jobs run-wrapped JOB_FOLDER", file=sys.stderr)
        return 2
    return run_wrapped(argv[1])


if __name__ == "__main__":
    sys.exit(main())
