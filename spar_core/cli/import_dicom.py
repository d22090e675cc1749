"""``spar import DICOM_DIR --out DATASET``: DICOM series and their masks into a dataset folder.

See :mod:`spar_core.data.importer` for what is checked, how cases are named and where masks are looked for.
"""

from __future__ import annotations

import argparse
import sys

from spar_core.data.importer import NAMINGS

from spar_core.cli.commands import summary
from spar_core.errors import SparError
from spar_core.paths import output_folder


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "import",
        help=summary("import"),
        description=(
            "Read every DICOM file under DICOM_DIR (nested folders, any file names), group the images by "
            "SeriesInstanceUID, check each chosen series is one regular 3D stack (one orientation, no missing, "
            "duplicated or unevenly spaced slices, no gantry tilt, decodable pixel data) and write it as NIfTI "
            "(RAS affine from the DICOM geometry, rescale applied) in the Decathlon / nnU-Net layout. Masks: a "
            "DICOM SEG referring to the series (in DICOM_DIR or --masks), or in --masks a NIfTI file "
            "<case>.nii.gz or a folder <case>/ of per-slice arrays <k>.npy (k = slice index) or "
            "<SOPInstanceUID>.npy, where <case> is the case id or the PatientID. Cases are case_001, ... in "
            "order of PatientID, study date and series number (--case-ids patient: the PatientID)."
        ),
    )
    parser.add_argument("dicom", metavar="DICOM_DIR", help="folder of DICOM files (one or many patients)")
    parser.add_argument("--out", metavar="DATASET", help="new dataset folder to write (must not exist or be empty)")
    parser.add_argument("--masks", metavar="DIR", help="folder of masks (NIfTI files, DICOM SEG, per-slice .npy)")
    parser.add_argument("--labels", metavar="V=NAME,...", help="label names of NIfTI / .npy mask values, e.g. "
                        "1=femur,2=tibia (a SEG names its own segments)")
    parser.add_argument("--series-description", metavar="REGEX",
                        help="import the series whose SeriesDescription matches (case-insensitive)")
    parser.add_argument("--series-number", metavar="N", type=int, help="import the series with this SeriesNumber")
    parser.add_argument("--all-series", action="store_true", help="import every series of a study as its own case")
    parser.add_argument("--case-ids", choices=NAMINGS, default="number", help="case_001, ... (default) or PatientID")
    parser.add_argument("--transpose", action="store_true", help="per-slice .npy masks are columns × rows")
    parser.add_argument("--name", help="dataset name in dataset.json (default: the folder's name)")
    parser.add_argument("--list", action="store_true", help="list the cases that would be imported; write nothing")
    return parser


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm
    from spar_core.data.importer import parse_labels, plan_import, write_dataset

    if not args.list and not args.out:
        raise SparError("--out: required (the dataset folder to write), or --list to only list the series")
    if not args.list:
        output_folder(args.out)  # before the headers are read: a wrong --out fails in a second, not in minutes
    labels = parse_labels(args.labels) if args.labels else None
    with tqdm(desc="reading headers", unit="file", file=sys.stderr, disable=None, leave=False) as bar:
        plan = plan_import(args.dicom, masks=args.masks, labels=labels, description=args.series_description,
                           number=args.series_number, all_series=args.all_series, naming=args.case_ids,
                           transpose=args.transpose, progress=lambda seen: bar.update(seen - bar.n))
    print(plan.summary())
    for line in plan.skipped:
        print(f"left out: {line}")
    if args.list:
        return 0
    with tqdm(desc="writing", unit="case", file=sys.stderr, disable=None, leave=False) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        out = write_dataset(plan, args.out, args.name, progress)
    n_masks = sum(c.mask is not None for c in plan.cases)
    print(f"OK: {len(plan.cases)} cases ({n_masks} with a mask) written to {out}; next: spar check {out}")
    return 0
