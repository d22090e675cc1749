"""``spar demo``: phantoms, the four methods on the ankle cohort (cpu preset, hold-out), latent maps, triage and
the report."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from spar_core.cli.commands import summary
from spar_core.cli.options import add_precision, add_device, add_preset, add_progress_file
from spar_core.paths import data_root, output_folder, runs_root
from spar_core.progress import cli_progress, stage_line
from spar_core.runs.lock import hold


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help=summary("demo"),
                       description="Generate the built-in phantom cohorts if absent, cross-validate the four "
                                   "methods on the ankle cohort with the cpu preset (one hold-out split that "
                                   "tests the degraded exams and random others), embed the latent codes, triage "
                                   "the held-out exams and write the report. Started again, it finishes what "
                                   "is missing.")
    p.add_argument("--out", type=Path, default=None, help="run folder (default: $SPAR_RUNS_ROOT/demo)")
    p.add_argument("--data", type=Path, default=None, help="where the phantoms live (default: $SPAR_DATA_ROOT)")
    add_preset(p, "cpu, or tiny for a seconds-long smoke run")
    add_device(p)
    add_precision(p)
    add_progress_file(p)
    return p


def run(args: argparse.Namespace) -> int:
    from spar_core.pipeline.demo import TIMING_FILE, run_demo

    out = output_folder(args.out or runs_root() / "demo")
    start = time.perf_counter()
    with hold(out, "spar demo"):
        report = run_demo(out, args.data or data_root(), preset_name=args.preset, device=args.device,
                          precision=args.precision, progress=cli_progress(args.progress_file))
    print(report.read_text())
    stages = json.loads((out / TIMING_FILE).read_text()).get("stages_s", {})
    print(f"demo finished in {time.perf_counter() - start:.0f} s ({stage_line(stages)}); run folder {out}; "
          f"report {report}")
    return 0
