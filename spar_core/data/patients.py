"""Which exams belong to one patient, so that no patient straddles a fold's training and test exams (two visits
of one child, both knees of one adult).

A dataset may say so in two ways: ``import.json`` (written by ``spar import``) records each case's DICOM
PatientID, and ``dataset.json`` may hold ``"patients": {"<case>": "<patient>", ...}``. Exams with identical or
near-identical voxels (:mod:`spar_core.data.duplicates`) are grouped likewise;
:func:`spar_core.data.splits.merge_groups` joins every relation into one case -> group mapping, as the splits take
it.
"""

from __future__ import annotations

import json

from spar_core.data.dataset import Dataset
from spar_core.errors import SparError
from spar_core.paths import IMPORT_RECORD, read_json_object

def declared_patients(dataset: Dataset) -> dict[str, str]:
    """Case id -> patient id, for the cases the dataset assigns to a patient (``dataset.json``'s ``patients``, else
    ``import.json``'s PatientIDs); {} when it assigns none.

    ``patients`` was checked when the dataset was loaded (:func:`spar_core.data.dataset.load_dataset`).

    Raises:
        SparError: an unreadable ``import.json``, or one naming a case not in the dataset or a patient that is
            not text.
    """
    table = dataset.meta.get("patients")
    if table is not None:
        return {str(k): str(v) for k, v in table.items()}
    record = dataset.root / IMPORT_RECORD
    if not record.is_file():
        return {}
    cases = read_json_object(record, "spar import's record of the cases").get("cases") or []
    if not isinstance(cases, list):
        raise SparError(f'{record}: "cases" is a {type(cases).__name__}; expected the list spar import writes')
    known = {c.case_id for c in dataset.cases}
    out = {}
    for entry in cases:
        if not isinstance(entry, dict) or not entry.get("case") or not entry.get("patient_id"):
            continue  # a case imported without a PatientID: no grouping said
        case, patient = entry["case"], entry["patient_id"]
        if not isinstance(case, str) or case not in known:
            raise SparError(f"{record}: case {json.dumps(case)} is not in the dataset; expected the case ids of "
                            "its images (edit both together, or import again)")
        if not isinstance(patient, str) or not patient.strip():
            raise SparError(f"{record}: case {case!r} has the patient {json.dumps(patient)}; expected a PatientID "
                            "as text")
        out[case] = patient
    return out
