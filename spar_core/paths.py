"""Where spar keeps data and runs: configurable roots, and atomic writes inside them."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

DATA_ROOT_ENV = "SPAR_DATA_ROOT"
RUNS_ROOT_ENV = "SPAR_RUNS_ROOT"


def data_root() -> Path:
    """Folder holding datasets (one sub-folder each); ``$SPAR_DATA_ROOT`` or ``./data``."""
    return Path(os.environ.get(DATA_ROOT_ENV, "data")).expanduser().resolve()


def runs_root() -> Path:
    """Folder holding run folders; ``$SPAR_RUNS_ROOT`` or ``./runs``."""
    return Path(os.environ.get(RUNS_ROOT_ENV, "runs")).expanduser().resolve()


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` in one step.

    A killed process leaves either the old file or the new one, never a half-written file.
    The temporary name keeps ``target``'s suffixes so writers that infer the format from the name work.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(target.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name.split('.')[0]}-", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def is_within(path: str | Path, root: str | Path) -> bool:
    """True when ``path`` resolves inside ``root`` (symlinks and ``..`` resolved)."""
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
        return True
    except ValueError:
        return False
