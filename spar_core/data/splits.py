"""Patient-level train/test splits: leave-one-out, k-fold, hold-out, all (train on every exam), or a file.

Exams of one patient are strongly correlated; if they landed on both sides of a split the test score would
be optimistic. Every scheme therefore splits *patients* (``groups``: case id -> patient id) and then lists
their cases. Splits are deterministic for a seed, and each side is sorted so split.json files diff cleanly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spar_core.errors import SparError
from spar_core.paths import read_json

@dataclass(frozen=True)
class Split:
    """One fold: the case ids to train on and to test on (disjoint, sorted, no patient on both sides)."""

    fold: int
    train: tuple[str, ...]
    test: tuple[str, ...]


def merge_groups(*relations: Mapping[str, str]) -> dict[str, str]:
    """One case -> group mapping from several (cases mapped to one value belong together, across mappings too):
    every case of a group maps to the group's smallest case id."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for relation in relations:
        first: dict[str, str] = {}
        for case, group in relation.items():
            a, b = root(case), root(first.setdefault(str(group), case))
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {case: root(case) for case in parent}


def _patients(case_ids: Sequence[str], groups: Mapping[str, str] | None) -> dict[str, list[str]]:
    """Patient id -> its case ids, patients in sorted order. Cases missing from ``groups`` are their own patient."""
    if isinstance(case_ids, str):
        raise SparError(f"case_ids={case_ids!r}: expected a sequence of case ids, not one string")
    if len(case_ids) == 0:
        raise SparError("case_ids is empty: expected at least two cases to split")
    duplicates = sorted(c for c, n in Counter(case_ids).items() if n > 1)
    if duplicates:
        raise SparError(f"case_ids has duplicates {duplicates[:5]}: expected each case once")
    by_patient: dict[str, list[str]] = {}
    for case in case_ids:
        patient = groups.get(case, case) if groups is not None else case
        by_patient.setdefault(str(patient), []).append(case)
    return {p: by_patient[p] for p in sorted(by_patient)}


def _split(fold: int, patients: dict[str, list[str]], test_patients: set[str]) -> Split:
    test = sorted(c for p in test_patients for c in patients[p])
    train = sorted(c for p, cases in patients.items() if p not in test_patients for c in cases)
    return Split(fold=fold, train=tuple(train), test=tuple(test))


def leave_one_out(case_ids: Sequence[str], groups: Mapping[str, str] | None = None) -> list[Split]:
    """One fold per patient (sorted by patient id): that patient's cases are the test set.

    Raises:
        SparError: fewer than two patients (nothing left to train on).
    """
    patients = _patients(case_ids, groups)
    if len(patients) < 2:
        raise SparError(f"leave-one-out needs at least 2 patients, got {len(patients)}")
    return [_split(i, patients, {p}) for i, p in enumerate(patients)]


def k_fold(
    case_ids: Sequence[str], k: int, seed: int = 0, groups: Mapping[str, str] | None = None
) -> list[Split]:
    """k folds over shuffled patients; every patient is tested exactly once.

    Fold sizes, counted in patients, differ by at most one (in cases they can differ more when patients
    have several exams).

    Raises:
        SparError: k < 2 or k greater than the number of patients.
    """
    patients = _patients(case_ids, groups)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= k <= len(patients):
        raise SparError(f"k={k!r}: expected an integer with 2 <= k <= {len(patients)} (the number of patients)")
    order = np.random.default_rng(seed).permutation(len(patients))
    names = list(patients)
    chunks = np.array_split(order, int(k))
    return [_split(i, patients, {names[j] for j in chunk}) for i, chunk in enumerate(chunks)]


def hold_out(
    case_ids: Sequence[str],
    test_fraction: float = 0.2,
    seed: int = 0,
    groups: Mapping[str, str] | None = None,
    include: Sequence[str] = (),
) -> list[Split]:
    """A single split holding out round(test_fraction × patients) patients (at least one, and at least one
    left for training): the patients of ``include`` first, then shuffled others.

    ``include`` names cases that must be tested, e.g. known-bad exams an outlier detector should find.

    Raises:
        SparError: test_fraction outside (0, 1), fewer than two patients, or ``include`` naming unknown cases
            or leaving no patient to train on.
    """
    if not 0.0 < test_fraction < 1.0:
        raise SparError(f"test_fraction={test_fraction}: expected a number strictly between 0 and 1")
    patients = _patients(case_ids, groups)
    n = len(patients)
    if n < 2:
        raise SparError(f"hold-out needs at least 2 patients, got {n}")
    unknown = sorted(set(include) - set(case_ids))
    if unknown:
        raise SparError(f"include={unknown[:5]}: not among the case ids")
    forced = {p for p, cases in patients.items() if set(cases) & set(include)}
    if len(forced) >= n:
        raise SparError(f"include holds out all {n} patients: expected at least one left for training")
    n_test = min(max(1, round(test_fraction * n), len(forced)), n - 1)
    names = list(patients)
    order = [names[j] for j in np.random.default_rng(seed).permutation(n) if names[j] not in forced]
    return [_split(0, patients, forced | set(order[:n_test - len(forced)]))]


def all_exams(case_ids: Sequence[str]) -> list[Split]:
    """One fold that trains on every exam and tests none: the model to deploy (``spar predict`` uses it)."""
    if isinstance(case_ids, str) or len(case_ids) == 0:
        raise SparError("case_ids is empty: expected at least one case to train on")
    return [Split(fold=0, train=tuple(sorted(case_ids)), test=())]


SPLITS_FILE = "splits_final.json"  # nnU-Net's name for it


def splits_final(splits: Sequence[Split]) -> list[dict[str, list[str]]]:
    """The folds in nnU-Net's ``splits_final.json`` form (a list of ``{"train": [...], "val": [...]}``), so that
    nnU-Net trains on exactly spar's folds; :func:`read_splits_file` reads it back."""
    return [{"train": list(s.train), "val": list(s.test)} for s in splits]


def read_splits_file(path: str | Path, case_ids: Sequence[str]) -> list[Split]:
    """nnU-Net's ``splits_final.json``: a list of ``{"train": [...], "val": [...]}``, one per fold, as folds.

    Exams that no fold tests are allowed (nnU-Net's custom splits may leave exams out: :func:`untested` names
    them, and a run records and says so); an exam tested in two folds is not (it would count twice in every
    table).

    Raises:
        SparError: unreadable or not that form, a case not in the dataset, a case on both sides of a fold, an
            empty training or test side, an exam in the test sides of two folds; named with the file, the fold
            and the case.
    """
    path = Path(path)
    try:
        raw = read_json(path, "a list of {train, val} (nnU-Net's splits_final.json)")
    except SparError as err:
        raise SparError(f"--splits {err}") from None
    form = 'expected a list of {"train": [case ids], "val": [case ids]} (nnU-Net splits_final.json)'
    if not isinstance(raw, list) or not raw:
        raise SparError(f"--splits {path}: {form}")
    known = set(case_ids)
    splits = []
    for fold, entry in enumerate(raw):
        sides = [entry.get(k) if isinstance(entry, dict) else None for k in ("train", "val")]
        if not all(isinstance(side, list) and all(isinstance(c, str) for c in side) for side in sides):
            raise SparError(f"--splits {path}: fold {fold} is not {{\"train\": [...], \"val\": [...]}}; {form}")
        train, test = sides
        unknown = sorted((set(train) | set(test)) - known)
        if unknown:
            raise SparError(f"--splits {path}: fold {fold} names {len(unknown)} case(s) not in the dataset, e.g. "
                            f"{unknown[0]!r}; expected case ids of dataset.json")
        both = sorted(set(train) & set(test))
        if both or not train or len(set(train)) < len(train) or len(set(test)) < len(test):
            what = f"{both[0]!r} on both sides" if both else "an empty or repeated training list"
            raise SparError(f"--splits {path}: fold {fold} has {what}; expected disjoint train and val lists")
        if not test:
            raise SparError(f"--splits {path}: fold {fold} has an empty val list; expected every fold to test at "
                            "least one exam (to train on every exam and test none, use --folds all)")
        tested_in = {c: s.fold for s in splits for c in s.test}
        again = sorted(c for c in test if c in tested_in)
        if again:
            raise SparError(f"--splits {path}: {again[0]!r} is in the val lists of folds {tested_in[again[0]]} and "
                            f"{fold}" + (f" ({len(again)} such exams)" if len(again) > 1 else "") + "; expected "
                            "each exam tested by one fold at most (it would count twice in every table)")
        splits.append(Split(fold=fold, train=tuple(sorted(train)), test=tuple(sorted(test))))
    return splits


def untested(splits: Sequence[Split], case_ids: Sequence[str]) -> list[str]:
    """The cases of ``case_ids`` that no fold of ``splits`` tests."""
    tested = {c for s in splits for c in s.test}
    return sorted(c for c in case_ids if c not in tested)


def straddling(splits: Sequence[Split], groups: Mapping[str, str]) -> list[str]:
    """Lines naming each fold where one group (twins) has cases both in training and in test."""
    lines = []
    for split in splits:
        test_groups = {groups[c] for c in split.test if c in groups}
        leaks = sorted({c for c in split.train if groups.get(c) in test_groups})
        if leaks:
            lines.append(f"fold {split.fold}: {', '.join(leaks)} in training with a twin in test")
    return lines


def make_splits(
    case_ids: Sequence[str], scheme: str, seed: int = 0, groups: Mapping[str, str] | None = None
) -> list[Split]:
    """Splits from the command line's ``--folds`` value: ``"loo"``, ``"holdout"``, ``"all"`` or an integer ``"k"``.

    Raises:
        SparError: an unknown scheme or a k out of range, naming ``--folds``.
    """
    key = str(scheme).strip().lower()
    if key == "all":
        return all_exams(case_ids)
    if key == "loo":
        return leave_one_out(case_ids, groups)
    if key == "holdout":
        return hold_out(case_ids, seed=seed, groups=groups)
    n_patients = len(_patients(case_ids, groups))
    accepted = f"'loo', 'holdout', 'all' or an integer k with 2 <= k <= {n_patients} (the number of patients)"
    try:
        k = int(key)
    except ValueError:
        raise SparError(f"--folds {scheme!r}: expected {accepted}") from None
    if not 2 <= k <= n_patients:
        raise SparError(f"--folds {scheme!r}: expected {accepted}")
    return k_fold(case_ids, k, seed=seed, groups=groups)
