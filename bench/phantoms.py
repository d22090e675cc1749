"""Wall-clock time to write both built-in phantom cohorts at default settings, against the 30 s target.

    python bench/phantoms.py [--workers 2] [--repeats 1]

Writes the ankle (17 exams) and shoulder (15 exams) cohorts into a temporary folder, gzip included, as the
app does on its first start. The time of a cohort is the fastest of ``--repeats`` runs (other jobs share the
machine). Target: both cohorts together in ≤ 30 s on two cores.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from spar_core.data.phantoms import generate_cohort

TARGET_S = 30.0


def time_cohort(anatomy: str, root: Path, workers: int, repeats: int) -> float:
    best = float("inf")
    for r in range(repeats):
        start = time.perf_counter()
        generate_cohort(anatomy, root / f"{anatomy}_{r}", workers=workers)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="parallel exams")
    parser.add_argument("--repeats", type=int, default=1, help="runs per cohort; the fastest counts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        times = {a: time_cohort(a, Path(tmp), args.workers, args.repeats) for a in ("ankle", "shoulder")}
    total = sum(times.values())
    for anatomy, seconds in times.items():
        print(f"{anatomy:9s} {seconds:6.1f} s")
    print(f"{'total':9s} {total:6.1f} s   target {TARGET_S:.0f} s   ratio {total / TARGET_S:.2f} "
          f"({'OK' if total <= TARGET_S else 'TOO SLOW'}; workers={args.workers})")


if __name__ == "__main__":
    main()
