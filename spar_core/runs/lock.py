"""One job at a time on a run folder: an OS file lock (``flock``) that the kernel releases when the job's process
ends, however it ends (Ctrl-C, SIGKILL, a node that goes down takes its locks with it).

A job on the whole grid holds ``RUN/.lock`` exclusively. The shards of one grid (``spar crossval --shard i/n``, a
job array) run side by side by design: each holds ``RUN/.lock`` shared and its own ``RUN/.lock-shard-i-of-n``
exclusively, so two copies of one shard, or a shard beside a whole-grid job, are refused. The holder writes who
it is (process, command, start time) into its lock file, so the refusal can say which job holds the folder.

Network file systems may not honour ``flock`` between machines; there the scheduler's job array is what keeps
shards apart.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from spar_core.errors import SparError

try:
    import fcntl
except ImportError:  # Windows: no flock; jobs are then not kept apart
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"


def _shard_file(index: int, count: int) -> str:
    return f"{LOCK_FILE}-shard-{index}-of-{count}"


def _who(fd: int) -> str:
    """The holder a lock file names, in words ("" when it names none)."""
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
        info = json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return ""
    if not isinstance(info, dict) or "pid" not in info:
        return ""
    return f"process {info['pid']} ({info.get('command', '?')}, since {info.get('started', '?')})"


def _write_who(fd: int, command: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": command,
                              "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode(), 0)


def _try(fd: int, mode: int) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _refuse(folder: Path, who: str) -> SparError:
    return SparError(f"{folder}: another job is writing this run folder ({who or 'a job of spar'}); wait for it to "
                     "finish or stop it, or use another --out")


@contextmanager
def hold(folder: str | Path, command: str, shard: tuple[int, int] | None = None) -> Iterator[None]:
    """Hold ``folder`` for the block: exclusively, or with ``shard`` (index, count) as one shard of its grid.

    Raises:
        SparError: another job holds it (the message names that job).
    """
    folder = Path(folder)
    if fcntl is None:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    main = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    own = None
    try:
        if shard is None or shard[1] == 1:
            if not _try(main, fcntl.LOCK_EX):
                raise _refuse(folder, _who(main) or holder(folder) or "")
            _write_who(main, command)
        else:
            own = os.open(folder / _shard_file(*shard), os.O_RDWR | os.O_CREAT, 0o644)
            if not _try(main, fcntl.LOCK_SH):
                raise _refuse(folder, _who(main))
            if not _try(own, fcntl.LOCK_EX):
                raise _refuse(folder, _who(own))
            os.ftruncate(main, 0)  # no whole-grid job holds it now: what it names is stale
            _write_who(own, command)
        try:
            yield
        finally:
            os.ftruncate(own if own is not None else main, 0)
    finally:
        for fd in (own, main):
            if fd is not None:
                os.close(fd)  # closing releases the lock


def holder(folder: str | Path) -> str | None:
    """Which job holds ``folder`` now, in words; None when none does (or locks are not available here)."""
    folder = Path(folder)
    path = folder / LOCK_FILE
    if fcntl is None or not path.is_file():
        return None
    fd = os.open(path, os.O_RDWR)
    try:
        if _try(fd, fcntl.LOCK_EX):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        who = _who(fd)
    finally:
        os.close(fd)
    if who:
        return who
    shards = []
    for shard in sorted(folder.glob(f"{LOCK_FILE}-shard-*")):
        sfd = os.open(shard, os.O_RDWR)
        try:
            if not _try(sfd, fcntl.LOCK_EX):
                shards.append(_who(sfd) or shard.name)
            else:
                fcntl.flock(sfd, fcntl.LOCK_UN)
        finally:
            os.close(sfd)
    return "; ".join(shards) or "a job of spar"
