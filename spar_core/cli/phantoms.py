"""``spar phantoms --anatomy ankle|shoulder --out DIR``: write the built-in synthetic pediatric MR exams.

The dataset every demo, test and notebook can run on without downloading or sharing patient data
(see :mod:`spar_core.data.phantoms`).
"""

from __future__ import annotations

import argparse
import sys
import time

from spar_core.data.phantoms import ANATOMIES

from spar_core.cli.commands import summary
from spar_core.cli.options import add_seed
from spar_core.paths import output_folder


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "phantoms",
        help=summary("phantoms"),
        description=(
            "Generate synthetic pediatric MR exams in the Medical Segmentation Decathlon / nnU-Net layout "
            "(dataset.json, imagesTr/, labelsTr/): ankle (calcaneus, talus, tibia; 17 exams by default) or "
            "shoulder (humerus, scapula; 15 exams), ages 4-17 with growth plates, about three pathological "
            "shapes and two degraded exams (motion, low SNR) per cohort. The same seed gives the same files."
        ),
    )
    parser.add_argument("--anatomy", required=True, choices=sorted(ANATOMIES), help="which joint to simulate")
    parser.add_argument("--out", required=True, metavar="DIR", help="dataset folder to write (created if missing)")
    parser.add_argument("--subjects", type=int, default=None, metavar="N",
                        help="number of exams (default: 17 ankles or 15 shoulders, the paper's cohorts)")
    add_seed(parser, "the cohort")
    return parser


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm
    from spar_core.data.phantoms import generate_cohort
    from spar_core.data.phantoms.cohort import plan_cohort

    start = time.perf_counter()
    total = len(plan_cohort(args.anatomy, args.subjects, args.seed))  # validates before any file is written
    with tqdm(total=total, desc=f"{args.anatomy} phantoms", unit="exam", file=sys.stderr, disable=None,
              leave=False) as bar:

        def progress(done: int, _total: int) -> None:
            bar.update(done - bar.n)

        out = generate_cohort(args.anatomy, output_folder(args.out), args.subjects, args.seed, progress)
    print(f"wrote {total} {args.anatomy} exams to {out.resolve()} ({time.perf_counter() - start:.1f} s)")
    return 0
