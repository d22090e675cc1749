"""Which exams belong to one patient, so that no patient straddles a fold's training and test exams (two visits
of one child, both knees of one adult).

A dataset may say so in two ways: ``import.json`` (written by ``spar import``) records each case's DICOM
PatientID, and ``dataset.json`` may hold ``"patients": {"<case>": "<patient>", ...}``. Exams with identical or
near-identical voxels (:mod:`spar_core.data.duplicates`) are grouped likewise;
:func:`spar_core.data.splits.merge_groups` joins every relation into one case -> group mapping, as the splits take
it.
"""

from __future__ import annotations

from spar_core.data.dataset import Dataset
from spar_core.errors import SparError
from spar_core.paths import DATASET_JSON, IMPORT_RECORD, read_json_object

def declared_patients(dataset: Dataset) -> dict[str, str]:
    """Case id -> patient id, for the cases the dataset assigns to a patient (``dataset.json``'s ``patients``, else
    ``import.json``'s PatientIDs); {} when it assigns none.

    Raises:
        SparError: a ``patients`` entry that is not a mapping of case ids to patient ids, or an unreadable
            ``import.json``.
    """
    where = dataset.root / DATASET_JSON
    table = dataset.meta.get("patients")
    if table is not None:
        if not isinstance(table, dict) or not all(isinstance(v, (str, int)) for v in table.values()):
            raise SparError(f'{where}: "patients" is not a mapping of case id -> patient id')
        unknown = sorted(set(table) - {c.case_id for c in dataset.cases})
        if unknown:
            raise SparError(f'{where}: "patients" names {len(unknown)} case(s) not in the dataset, e.g. {unknown[0]}')
        return {str(k): str(v) for k, v in table.items()}
    record = dataset.root / IMPORT_RECORD
    if not record.is_file():
        return {}
    cases = read_json_object(record, "spar import's record of the cases").get("cases") or []
    return {str(c["case"]): str(c["patient_id"]) for c in cases
            if isinstance(c, dict) and c.get("case") and c.get("patient_id")}
