"""nnU-Net v2's raw dataset layout out: the keys its ``dataset.json`` needs, and a whole dataset written in it.

``imagesTr/<case>_0000.nii.gz`` (one channel), ``labelsTr/<case>.nii.gz``, and a ``dataset.json`` with
``channel_names``, ``labels``, ``numTraining`` and ``file_ending`` (nnU-Net v2's own integrity check accepts what
spar writes: ``tests/test_nnunet_layout.py``). spar's own writers (phantoms, import) add the keys it reads besides
(a ``training`` list, ``slice_axis``).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Mapping

import nibabel

from spar_core.data.dataset import Dataset
from spar_core.data.nifti import image_file, label_file
from spar_core.errors import SparError
from spar_core.paths import DATASET_JSON, NIFTI_SUFFIX, write_json

CHANNEL_NAME = "MRI"


def v2_keys(labels: Mapping[str, int], num_training: int) -> dict[str, Any]:
    """The keys nnU-Net v2 reads in a raw dataset's ``dataset.json`` (one MR channel, spar's file ending)."""
    return {"channel_names": {"0": CHANNEL_NAME}, "labels": {str(k): int(v) for k, v in labels.items()},
            "numTraining": int(num_training), "file_ending": NIFTI_SUFFIX}


def write_raw_dataset(dataset: Dataset, out: str | Path, name: str | None = None) -> Path:
    """Every labelled case of ``dataset`` in nnU-Net v2's raw layout under ``out`` (a new or empty folder):
    compressed NIfTI copied as it is, ``.nii`` written compressed; returns ``out``.

    Raises:
        SparError: ``out`` holds files already, or the dataset has no labelled case.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise SparError(f"{out}: not empty; expected a new folder for the nnU-Net raw dataset")
    cases = [c for c in dataset.cases if c.label_path is not None]
    if not cases:
        raise SparError(f"{dataset.root}: no labelled case to write as an nnU-Net raw dataset")
    (out / "imagesTr").mkdir(parents=True, exist_ok=True)
    (out / "labelsTr").mkdir(exist_ok=True)
    for case in cases:
        for source, target in ((case.image_path, out / "imagesTr" / image_file(case.case_id)),
                               (case.label_path, out / "labelsTr" / label_file(case.case_id))):
            if str(source).endswith(NIFTI_SUFFIX):
                shutil.copyfile(source, target)
            else:
                nibabel.save(nibabel.load(source), target)
    write_json(out / DATASET_JSON, {"name": name or dataset.meta.get("name") or dataset.root.name,
                                    **v2_keys(dataset.labels, len(cases))})
    return out
