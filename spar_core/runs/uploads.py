"""Exams uploaded through the app: saved under the runs root, checked, and removed again when unusable.

```
RUNS_ROOT/.uploads/<id>/<name>.nii.gz       one uploaded exam (a readable 3D NIfTI image)
```
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from spar_core.data.nifti import NIFTI_SUFFIXES, load_image
from spar_core.errors import SparError
from spar_core.paths import atomic_path, new_folder, runs_root

UPLOADS_FOLDER = ".uploads"  # hidden, so run pickers listing the runs root do not take it for a run


def stage_upload(name: str, data: bytes, root: str | Path | None = None, max_bytes: int | None = None) -> Path:
    """Save an uploaded exam under ``ROOT/.uploads/<id>/`` and check it is a readable 3D NIfTI image.

    Args:
        name: the uploaded file's name (only its last part is kept, other characters than letters,
            digits, ``.``, ``_`` and ``-`` become ``_``); must end in ``.nii`` or ``.nii.gz``.
        data: the file's bytes.
        root: the runs root (default ``$SPAR_RUNS_ROOT``).
        max_bytes: refuse larger uploads.

    Returns:
        The saved file's path.

    Raises:
        SparError: wrong name, too large, or not a valid NIfTI image (the saved file is removed again).
    """
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name.replace("\\", "/")).name).lstrip(".")
    if not safe.lower().endswith(NIFTI_SUFFIXES):
        raise SparError(f"upload {name!r}: expected a NIfTI file ending in .nii or .nii.gz")
    if max_bytes is not None and len(data) > max_bytes:
        raise SparError(f"upload {name!r}: {len(data) / 2**20:.1f} MB, more than the limit of "
                        f"{max_bytes / 2**20:.0f} MB")
    folder = new_folder(Path(root or runs_root()) / UPLOADS_FOLDER)
    path = folder / safe
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    try:
        load_image(path)
    except SparError as err:
        shutil.rmtree(folder, ignore_errors=True)
        raise SparError(f"upload {name!r}: {err}") from None
    return path
