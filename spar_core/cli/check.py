"""``spar check DIR``: read every case of a dataset folder once, validate it, and print a summary.

Meant to be run before a long training job: a truncated file or a stray label value fails here in seconds,
with one line naming the file, instead of hours later.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from spar_core.cli.commands import summary
from spar_core.errors import SparError
from spar_core.paths import write_text


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "check",
        help=summary("check"),
        description=(
            "Read and validate every case of a dataset in the Medical Segmentation Decathlon / nnU-Net layout "
            "(dataset.json, imagesTr/, labelsTr/): files readable and 3D, image and label on the same grid, "
            "label values declared in dataset.json, finite intensities. Prints cases, labels with voxel counts, "
            "shapes, spacing and slice axis. Exit status 2 with one line naming the file on the first problem."
        ),
    )
    parser.add_argument("dataset", metavar="DIR", help="dataset folder holding dataset.json")
    parser.add_argument("--card", type=Path, metavar="FILE",
                        help="also draft a data card (Markdown) with the facts found; an existing file is kept")
    return parser


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm
    from spar_core.data.card import draft_card
    from spar_core.data.integrity import check_dataset

    if args.card is not None and args.card.exists():
        raise SparError(f"--card {args.card}: exists; expected a new file (a card may hold edits: it is never "
                        "overwritten)")
    start = time.perf_counter()
    # The bar goes to stderr, only on a terminal, and is cleared so an error stays one line.
    with tqdm(desc="checking", unit="case", file=sys.stderr, disable=None, leave=False) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        summary = check_dataset(args.dataset, progress)
    print(summary.format())
    print(f"OK: {summary.n_cases} cases valid ({time.perf_counter() - start:.1f} s)")
    if args.card is not None:
        write_text(args.card, draft_card(summary))
        print(f"data card drafted: {args.card} (fill in the sections marked 'To fill')")
    return 0
