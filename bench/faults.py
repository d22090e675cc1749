"""How many faults behind the front door spar handles: the corpus of tests/fault_corpus.py (every run-folder file
truncated, empty, binary or of the wrong type, the level model's files among them; what a user hands in: label
values past what spar holds, splits files, patients, flags; every header field spar parses missing, text, zero,
negative, huge or NaN; output paths of the wrong kind, a full disk, a read-only folder) run against fresh tiny runs.

    python bench/faults.py [--work DIR] [--show-handled]

Prints handled / total per kind of fault and every case not handled (a traceback, a hang, a wrong exit status or
a line that does not name the file or field). About four minutes on two cores (most of it building the runs).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import fault_corpus as corpus  # noqa: E402
from dicom_support import write_series  # noqa: E402
from row_support import write_row_dataset  # noqa: E402

from spar_core.cli import main as spar  # noqa: E402
from spar_core.data.phantoms import generate_cohort  # noqa: E402


def material(work: Path) -> tuple[Path, Path, Path, Path]:
    """Four ankle phantoms and a finished run on them (baseline and spar, two folds, --postprocess auto, triaged);
    six synthetic row exams and a run ordering their row by its level model (baseline, two folds)."""
    dataset = work / "ankle"
    generate_cohort("ankle", dataset, subjects=4, seed=0)
    run = work / "run"
    rows = write_row_dataset(work / "rows")
    row_run = work / "row_run"
    for argv in (["crossval", "--dataset", str(dataset), "--methods", "baseline,spar", "--folds", "2", "--preset",
                  "tiny", "--out", str(run), "--device", "cpu"],
                 ["triage", str(run), "--method", "baseline", "--fold", "0"],
                 ["crossval", "--dataset", str(rows), "--methods", "baseline", "--folds", "2", "--preset", "tiny",
                  "--out", str(row_run), "--device", "cpu", "--postprocess", "largest"]):
        if spar(argv) != 0:
            raise SystemExit(f"could not build the material: spar {' '.join(argv)} failed")
    return dataset, run, rows, row_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="folder for the material (default: a temporary one)")
    parser.add_argument("--show-handled", action="store_true", help="also list the handled cases")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        start = time.perf_counter()
        dataset, run, rows, row_run = material(work)
        built = time.perf_counter() - start
        cases = [*((c, corpus.run_case) for c in corpus.run_folder_cases(run, dataset)),
                 *((c, corpus.run_case) for c in corpus.run_folder_cases(row_run, rows, corpus.LEVEL_FILES)),
                 *((c, corpus.run_case) for c in corpus.input_cases(dataset)),
                 *((c, corpus.run_case) for c in corpus.nifti_cases(dataset)),
                 *((c, corpus.run_case) for c in corpus.dicom_cases(write_series)),
                 *((c, corpus.run_output_case) for c in corpus.output_cases(dataset, run))]
        handled, total = Counter(), Counter()
        for n, (case, runner) in enumerate(cases):
            outcome = runner(case, work / "cases" / str(n))
            total[case.kind] += 1
            handled[case.kind] += outcome.handled
            if not outcome.handled or args.show_handled:
                print(f"{'ok  ' if outcome.handled else 'FAIL'} {case.kind}: {case.name} ({case.expect})"
                      + ("" if outcome.handled else f": {outcome.problem}"))
    print(f"\n{'kind of fault':<16} handled / total")
    for kind in total:
        print(f"{kind:<16} {handled[kind]:>7} / {total[kind]}")
    print(f"{'all':<16} {sum(handled.values()):>7} / {sum(total.values())}"
          f"   ({time.perf_counter() - start - built:.0f} s for the cases, {built:.0f} s to build the run)")


if __name__ == "__main__":
    main()
