"""``spar report``: the paper's Table 1 and paired significance tests from a run's metrics.csv."""

from __future__ import annotations

import argparse

from spar_core.cli.commands import summary
from spar_core.cli.options import add_run, add_seed
from spar_core.layout.run_folder import RunFolder


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help=summary("report"),
                       description="Read RUN/metrics.csv and write RUN/report/: Table 1 (mean ± std over exam × "
                                   "structure pairs, markdown, CSV, booktabs LaTeX), per-structure and per-exam "
                                   "tables, and each method's paired comparison with the baseline (bootstrap CI "
                                   "over exams, Wilcoxon on per-exam means, Holm correction). Prints Table 1 "
                                   "and the significance table.")
    add_run(p, "spar crossval / demo")
    p.add_argument("--postprocess", choices=("run", "none"), default="run",
                   help="run: the predictions post-processed as the run decided (default); none: the raw "
                        "predictions")
    p.add_argument("--raw", dest="postprocess", action="store_const", const="none",
                   help=argparse.SUPPRESS)  # earlier spelling of --postprocess none
    p.add_argument("--bootstrap", type=int, default=10_000, metavar="N",
                   help="bootstrap resamples of the exams (default: 10000)")
    add_seed(p, "the bootstrap")
    return p


def run(args: argparse.Namespace) -> int:
    from spar_core.evaluation.report import write_report

    path = write_report(RunFolder(args.run), postprocessed=args.postprocess == "run", n_boot=args.bootstrap,
                        seed=args.seed)
    out = path.parent
    print((out / "table1.md").read_text())
    print("Paired comparison with the baseline\n")
    print((out / "significance.md").read_text())
    print(f"report written to {out}")
    return 0
