"""``spar evaluate --pred P --truth T``: score a predicted label volume against the truth, one CSV row per
structure (Dice, RAVD %, ASSD mm, MSSD mm, volumes in ml) on stdout.

Distances use the truth header's voxel spacing; both files must share the voxel grid. Structure names come
from ``--labels dataset.json`` (its ``labels``), else ``label_<value>`` for every nonzero value present.
``--postprocess`` takes the modes of ``spar crossval`` and ``spar predict``: with ``--run`` the prediction is
post-processed as that run does (its label facts: a row put in order, a label of two parts kept whole; with
``auto``, the steps its folds kept); without a run only ``largest`` applies, and then as its help says.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from spar_core.cli.commands import summary
from spar_core.errors import SparError
from spar_core.postprocessing.settings import DEFAULT_CLOSING_MM, MODE_HELP, MODES, PostprocessMode, PostprocessSettings

if TYPE_CHECKING:
    import numpy as np


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "evaluate",
        help=summary("evaluate"),
        description=(
            "Compare two NIfTI label volumes on the same voxel grid and print CSV to stdout: one row per "
            "structure with Dice, RAVD (%), ASSD and MSSD (mm, from the truth header's spacing) and both volumes "
            "(ml). Undefined values (an empty structure) are printed as nan. Exit status 2 with one line on bad "
            "input."
        ),
    )
    parser.add_argument("--pred", required=True, type=Path, metavar="P.nii.gz", help="predicted label volume")
    parser.add_argument("--truth", required=True, type=Path, metavar="T.nii.gz", help="reference label volume")
    parser.add_argument("--labels", type=Path, metavar="dataset.json",
                        help="take structure names from this file's \"labels\" (default: label_<value>)")
    parser.add_argument("--postprocess", nargs="?", choices=MODES, const="largest", default="none",
                        help="post-process the prediction first, as RUN does with --run: auto (with --run only), "
                             f"{MODE_HELP['auto']}; largest (alone: --postprocess), {MODE_HELP['largest']} — "
                             "without --run: each structure's largest component and the closing only (no row "
                             "ordered, a label of two parts cut to one: those need a run's label facts); none "
                             f"(default), {MODE_HELP['none']}")
    parser.add_argument("--run", type=Path, default=None, metavar="RUN",
                        help="with --postprocess: post-process as this run does (its settings, its folds' label "
                             "facts and decisions; a row the run orders by its level model is ordered here by "
                             "the votes and where each structure sits: the level model needs the image)")
    parser.add_argument("--method", default=None, help="with --run: whose decisions (default: spar if trained)")
    parser.add_argument("--models", default="all", metavar="FOLDS",
                        help="with --run: the folds whose facts and decisions apply, as spar predict --models")
    parser.add_argument("--closing-mm", type=float, default=DEFAULT_CLOSING_MM, metavar="MM",
                        help="closing radius in mm for --postprocess without --run; 0 = no closing "
                             "(default: %(default)s)")
    return parser


def structures_to_score(pred: np.ndarray, truth: np.ndarray, names: dict[str, int] | None) -> dict[str, int]:
    """The named structures (background left out), plus ``label_<v>`` for any other value present."""
    import numpy as np

    present = np.union1d(np.unique(pred), np.unique(truth))
    structures = {n: v for n, v in (names or {}).items() if v != 0}
    known = set(structures.values())
    for value in present:
        if value != 0 and int(value) not in known:
            structures[f"label_{int(value)}"] = int(value)
    return dict(sorted(structures.items(), key=lambda item: item[1]))


def _format(value: object) -> object:
    return f"{value:.8g}" if isinstance(value, float) else value


def run(args: argparse.Namespace) -> int:
    from spar_core.data.checks import check_same_grid
    from spar_core.data.nifti import read_label_volume
    from spar_core.data.dataset import read_labels
    from spar_core.scoring.metrics import ROW_COLUMNS, evaluate_labels
    from spar_core.postprocessing.decision import postprocess_config
    from spar_core.postprocessing.steps import postprocess

    truth, spacing = read_label_volume(args.truth)
    pred, pred_spacing = read_label_volume(args.pred)
    check_same_grid(pred.shape, pred_spacing, truth.shape, spacing, what=f"{args.pred}: prediction", ref="truth",
                    ref_file=args.truth)
    names = read_labels(args.labels) if args.labels is not None else None
    if args.run is not None and args.postprocess != "none":
        from spar_core.pipeline.predict import chosen_folds
        from spar_core.layout.run_folder import RunFolder
        from spar_core.postprocessing.folds import run_postprocess_config
        from spar_core.triage.exams import default_method

        run = RunFolder(args.run)
        method = args.method or default_method(run, run.folds())
        pred = postprocess(pred, spacing, run_postprocess_config(run, chosen_folds(run, method, args.models, None), method,
                                                          args.postprocess))
    elif args.postprocess == "auto":
        raise SparError("--postprocess auto: expected --run RUN (the steps a run's folds kept)")
    elif args.postprocess == "largest":
        pred = postprocess(pred, spacing, postprocess_config(PostprocessSettings(PostprocessMode.ALL_STEPS.value, args.closing_mm)))
    rows = evaluate_labels(pred, truth, spacing, structures_to_score(pred, truth, names))
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(ROW_COLUMNS)
    for row in rows:
        writer.writerow([_format(row[c]) for c in ROW_COLUMNS])
    return 0
