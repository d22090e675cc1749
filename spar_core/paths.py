"""Where spar keeps data and runs: configurable roots, and atomic writes inside them (JSON, JSON lines, CSV,
NumPy archives): a killed process leaves the previous file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from spar_core.errors import SparError

NIFTI_SUFFIX = ".nii.gz"  # what spar writes; it reads .nii too
DATASET_JSON = "dataset.json"  # a dataset folder's description (Decathlon / nnU-Net layout)
# The built-in phantom cohorts as the demo and the app write them into a data root: anatomy -> folder.
PHANTOM_FOLDERS = {"ankle": "phantoms_ankle", "shoulder": "phantoms_shoulder"}
IMPORT_RECORD = "import.json"  # what spar import records of each case (patient, study, series, mask)
# A folder of predictions holds label maps only at its top level (a glob of OUT/*.nii.gz, as nnU-Net's evaluation
# takes it, finds predictions and nothing else); the uncertainty maps and probabilities go to sub-folders.
PREDICTION_FILES = {"labels": "{case}" + NIFTI_SUFFIX, "entropy": "uncertainty/{case}_entropy" + NIFTI_SUFFIX,
                    "disagreement": "uncertainty/{case}_disagreement" + NIFTI_SUFFIX,
                    "probabilities": "probabilities/{case}.npz", "levels": "levels/{case}.json"}
MAX_JSON_BYTES = 64 * 2**20  # the largest JSON file read: a dataset.json of 100,000 exams is a few MB
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


def new_folder(parent: Path) -> Path:
    """A new folder named ``<date>-<time>-<random>``: unique, and sorted by start time."""
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        folder = parent / f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue


def output_folder(path: str | Path, what: str = "--out") -> Path:
    """``path`` as a folder to write into: refused in one line when something other than a folder is there."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SparError(f"{what} {path}: exists and is not a folder; expected a folder to write into (or a path "
                        "that does not exist yet)")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise SparError(f"{what} {path}: {parent} is not a folder")
            break
    return path


def is_within(path: str | Path, root: str | Path) -> bool:
    """True when ``path`` resolves inside ``root`` (symlinks and ``..`` resolved)."""
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
        return True
    except ValueError:
        return False


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_jsonable) + "\n")


def read_json(path: str | Path, expected: str, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """The JSON value in ``path``; a missing, oversized, unreadable, truncated, binary or too deeply nested file
    is one :class:`SparError` naming the file and ``expected`` (what the file should hold)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise SparError(f"{path}: {size:,} bytes; expected {expected} under {max_bytes:,} bytes")
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SparError(f"{path}: missing; expected {expected}") from None
    except json.JSONDecodeError as err:
        raise SparError(f"{path}: unreadable, not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}; "
                        f"expected {expected}") from None
    except RecursionError:
        raise SparError(f"{path}: JSON nested too deeply; expected {expected}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SparError(f"{path}: unreadable ({type(err).__name__}); expected {expected}") from None


def read_json_object(path: str | Path, expected: str = "a JSON object") -> dict[str, Any]:
    """:func:`read_json` of a file that must hold a JSON object."""
    data = read_json(path, expected)
    if not isinstance(data, dict):
        raise SparError(f"{path}: holds a JSON {type(data).__name__}; expected {expected}")
    return data


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r, default=_jsonable) + "\n" for r in rows))


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file, one per line ([] when the file is missing); a line that is no JSON
    object (a truncated last line, binary garbage) is one :class:`SparError` naming the file and the line."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise SparError(f"{path}: unreadable ({type(err).__name__}); expected JSON lines") from None
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            row = None
        if not isinstance(row, dict):
            raise SparError(f"{path}: line {number} is not a JSON object; expected one object per line")
        rows.append(row)
    return rows


def read_table(path: str | Path, columns: Iterable[str], what: str, text: Iterable[str] = ("case",)) -> Any:
    """A CSV table (a pandas frame) that must hold ``columns``, the ``text`` columns read as strings (case ids
    like "001" stay strings); a missing, empty, truncated, binary or wrong-shaped file is one :class:`SparError`
    naming it and ``what`` it should be."""
    import pandas as pd  # here: the foundation stays light for the modules that never read a table

    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype={c: str for c in text})
    except FileNotFoundError:
        raise SparError(f"{path}: missing; expected {what}") from None
    except (OSError, ValueError, pd.errors.ParserError) as err:  # EmptyDataError and UnicodeDecodeError are ValueErrors
        reason = " ".join(str(err).split())[:120]
        raise SparError(f"{path}: unreadable ({type(err).__name__}: {reason}); expected {what}") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SparError(f"{path}: no column {', '.join(missing)}; expected {what}")
    return frame


def load_arrays(path: str | Path, keys: Iterable[str], what: str) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of a NumPy archive (.npz), read without running code; a missing, truncated or binary
    file, or one without those keys, is one :class:`SparError` naming it and ``what`` it should be."""
    import zipfile

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {k: archive[k] for k in keys}
    except FileNotFoundError:
        raise SparError(f"{path}: missing; expected {what}") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise SparError(f"{path}: unreadable ({type(err).__name__}: {err}); expected {what}") from None


def write_csv(path: str | Path, frame: Any, **to_csv: Any) -> Path:
    """``frame.to_csv`` (a pandas frame, ``index=False`` unless given) written atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **{"index": False, **to_csv})
    return Path(path)


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, (np.ndarray, tuple, set)):
        return list(obj.tolist() if isinstance(obj, np.ndarray) else obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def missing_phantoms(data_root: str | Path) -> list[str]:
    """The built-in cohorts (anatomies of :data:`PHANTOM_FOLDERS`) not yet in ``data_root``."""
    return [a for a, folder in PHANTOM_FOLDERS.items() if not (Path(data_root) / folder / DATASET_JSON).is_file()]
