"""Patient-level splits: no patient on both sides, every patient tested once, deterministic for a seed."""

from __future__ import annotations

from collections import Counter

import pytest

from spar_core.errors import SparError
from spar_core.data.splits import Split, hold_out, k_fold, leave_one_out, make_splits

CASES = [f"case{i:02d}" for i in range(10)]
# case00/case01 and case02/case03/case04 are exams of the same patients: 7 patients in all.
GROUPS = {"case00": "A", "case01": "A", "case02": "B", "case03": "B", "case04": "B"}


def patient(case: str) -> str:
    return GROUPS.get(case, case)


SCHEMES = [
    ("loo", lambda seed: leave_one_out(CASES, GROUPS), 7),
    ("k3", lambda seed: k_fold(CASES, 3, seed=seed, groups=GROUPS), 3),
    ("k7", lambda seed: k_fold(CASES, 7, seed=seed, groups=GROUPS), 7),
    ("holdout", lambda seed: hold_out(CASES, 0.3, seed=seed, groups=GROUPS), 1),
    ("make 4", lambda seed: make_splits(CASES, "4", seed=seed, groups=GROUPS), 4),
    ("make holdout", lambda seed: make_splits(CASES, "holdout", seed=seed, groups=GROUPS), 1),
]


@pytest.mark.parametrize("name, splitter, n_folds", SCHEMES, ids=[s[0] for s in SCHEMES])
def test_no_patient_on_both_sides(name: str, splitter, n_folds: int) -> None:
    splits = splitter(0)
    assert len(splits) == n_folds and [s.fold for s in splits] == list(range(n_folds))
    for split in splits:
        assert split.train and split.test
        assert sorted(split.train + split.test) == CASES
        assert not {patient(c) for c in split.train} & {patient(c) for c in split.test}
        assert list(split.train) == sorted(split.train) and list(split.test) == sorted(split.test)


@pytest.mark.parametrize("splitter", [lambda: leave_one_out(CASES, GROUPS), lambda: k_fold(CASES, 3, groups=GROUPS)])
def test_every_case_is_tested_exactly_once(splitter) -> None:
    tested = Counter(c for split in splitter() for c in split.test)
    assert tested == Counter(CASES)


def test_leave_one_out_tests_one_patient_per_fold() -> None:
    splits = leave_one_out(CASES, GROUPS)
    assert splits[0].test == ("case00", "case01") and splits[1].test == ("case02", "case03", "case04")
    assert all(len({patient(c) for c in s.test}) == 1 for s in splits)


@pytest.mark.parametrize("n_cases, k", [(10, 3), (11, 5), (7, 7), (40, 5)])
def test_k_fold_sizes_differ_by_at_most_one(n_cases: int, k: int) -> None:
    sizes = [len(s.test) for s in k_fold([f"c{i}" for i in range(n_cases)], k, seed=3)]
    assert sum(sizes) == n_cases and max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("name, splitter, n_folds", SCHEMES[1:], ids=[s[0] for s in SCHEMES[1:]])
def test_deterministic_for_a_seed_and_different_for_another(name: str, splitter, n_folds: int) -> None:
    assert splitter(0) == splitter(0)
    assert any(splitter(0) != splitter(seed) for seed in (1, 2, 3))


@pytest.mark.parametrize("fraction, n_test_patients", [(0.2, 1), (0.3, 2), (0.5, 4), (0.01, 1), (0.99, 6)])
def test_hold_out_size(fraction: float, n_test_patients: int) -> None:
    (split,) = hold_out(CASES, fraction, groups=GROUPS)
    assert len({patient(c) for c in split.test}) == n_test_patients


def test_without_groups_each_case_is_a_patient() -> None:
    assert [s.test for s in make_splits(["b", "a", "c"], "loo")] == [("a",), ("b",), ("c",)]
    assert make_splits(["b", "a", "c"], "LOO")[0] == Split(fold=0, train=("b", "c"), test=("a",))


@pytest.mark.parametrize("scheme", ["1", "0", "-2", "8", "five", "", "2.5", "leave-one-out"])
def test_bad_scheme_names_folds_argument(scheme: str) -> None:
    with pytest.raises(SparError, match="--folds") as info:
        make_splits(CASES, scheme, groups=GROUPS)
    assert "'loo'" in str(info.value) and "7" in str(info.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda: k_fold(CASES, 1),
        lambda: k_fold(CASES, 11),
        lambda: k_fold(CASES, 8, groups=GROUPS),
        lambda: leave_one_out(["only"]),
        lambda: hold_out(CASES, 0.0),
        lambda: hold_out(CASES, 1.0),
        lambda: leave_one_out([]),
        lambda: leave_one_out(["a", "b", "a"]),
    ],
)
def test_ill_arguments_raise(call) -> None:
    with pytest.raises(SparError):
        call()


def test_hold_out_tests_the_included_cases_first() -> None:
    plain = hold_out(CASES, 0.3, seed=1, groups=GROUPS)[0]
    train_case = plain.train[0]
    (split,) = hold_out(CASES, 0.3, seed=1, groups=GROUPS, include=[train_case])
    assert train_case in split.test
    assert len({GROUPS.get(c, c) for c in split.test}) == len({GROUPS.get(c, c) for c in plain.test})
    assert not set(split.train) & set(split.test)
    assert hold_out(CASES, 0.3, seed=1, groups=GROUPS, include=[]) == [plain]  # nothing forced: unchanged


@pytest.mark.parametrize("include", [["nope"], CASES])
def test_hold_out_rejects_bad_includes(include: list[str]) -> None:
    with pytest.raises(SparError, match="include"):
        hold_out(CASES, 0.3, groups=GROUPS, include=include)
