"""``spar evaluate --pred P --truth T``: score a predicted label volume against the truth, one CSV row per
structure (Dice, RAVD %, ASSD mm, MSSD mm, volumes in ml) on stdout.

Distances use the truth header's voxel spacing; both files must share the voxel grid. Structure names come
from ``--labels dataset.json`` (its ``labels``), else ``label_<value>`` for every nonzero value present.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import numpy as np

from spar_core.data.dataset import read_nifti
from spar_core.errors import SparError
from spar_core.evaluation.metrics import evaluate_labels
from spar_core.evaluation.postprocess import PostprocessConfig, postprocess

COLUMNS = ("structure", "label", "dice", "ravd_pct", "assd_mm", "mssd_mm", "true_ml", "pred_ml")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score a predicted label volume against the truth (Dice, RAVD, ASSD, MSSD) as CSV",
        description=(
            "Compare two NIfTI label volumes on the same voxel grid and print CSV to stdout: one row per "
            "structure with Dice, RAVD (%%), ASSD and MSSD (mm, from the truth header's spacing) and both volumes "
            "(ml). Undefined values (an empty structure) are printed as nan. Exit status 2 with one line on bad "
            "input."
        ),
    )
    parser.add_argument("--pred", required=True, type=Path, metavar="P.nii.gz", help="predicted label volume")
    parser.add_argument("--truth", required=True, type=Path, metavar="T.nii.gz", help="reference label volume")
    parser.add_argument("--labels", type=Path, metavar="dataset.json",
                        help="take structure names from this file's \"labels\" (default: label_<value>)")
    parser.add_argument("--postprocess", action="store_true",
                        help="post-process the prediction first (largest component, closing)")
    parser.add_argument("--closing-mm", type=float, default=PostprocessConfig().closing_mm, metavar="MM",
                        help="closing radius in mm for --postprocess; 0 = no closing (default: %(default)s)")
    parser.set_defaults(func=run)


def read_label_volume(path: Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A NIfTI label volume as an integer array, and its voxel spacing in mm (header zooms).

    Raises:
        SparError: missing or unreadable file, not 3D, non-integer or negative values, bad voxel sizes.
    """
    img = read_nifti(path)
    data = np.asanyarray(img.dataobj)
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise SparError(f"{path}: {data.ndim}D data of shape {data.shape}; expected a 3D label volume")
    if data.dtype.kind == "f":
        if not np.isfinite(data).all() or not np.array_equal(data, np.round(data)):
            raise SparError(f"{path}: non-integer label values; expected integer labels")
        data = data.astype(np.int32)
    elif data.dtype.kind not in "biu":
        raise SparError(f"{path}: voxel type {data.dtype}; expected integer labels")
    if data.size and data.min() < 0:
        raise SparError(f"{path}: negative label value {data.min()}; expected labels ≥ 0")
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    if len(zooms) != 3 or not all(math.isfinite(z) and z > 0 for z in zooms):
        raise SparError(f"{path}: voxel sizes {zooms} in the header; expected three positive spacings in mm")
    return data, zooms  # type: ignore[return-value]


def read_label_names(path: Path) -> dict[str, int]:
    """``labels`` of a dataset.json as name -> value (the nnU-Net v1 form value -> name is inverted)."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SparError(f"{path}: file not found; expected a dataset.json with \"labels\"") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SparError(f"{path}: cannot read as JSON ({' '.join(str(err).split())})") from None
    raw = meta.get("labels") if isinstance(meta, dict) else None
    if not isinstance(raw, dict) or not raw:
        raise SparError(f"{path}: no \"labels\" object; expected \"labels\": {{name: integer value}}")
    pairs = [(v, k) for k, v in raw.items()] if all(isinstance(v, str) for v in raw.values()) else raw.items()
    names: dict[str, int] = {}
    for name, value in pairs:
        try:
            number = int(value) if not isinstance(value, (bool, float)) else None
        except ValueError:
            number = None
        if number is None or number < 0:
            raise SparError(f"{path}: label {name!r} has value {value!r}; expected an integer ≥ 0")
        names[str(name)] = number
    return names


def structures_to_score(pred: np.ndarray, truth: np.ndarray, names: dict[str, int] | None) -> dict[str, int]:
    """The named structures (background left out), plus ``label_<v>`` for any other value present."""
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
    truth, spacing = read_label_volume(args.truth)
    pred, pred_spacing = read_label_volume(args.pred)
    if pred.shape != truth.shape:
        raise SparError(f"{args.pred}: shape {pred.shape} differs from {args.truth}: shape {truth.shape}; "
                        "expected the same voxel grid")
    if not np.allclose(pred_spacing, spacing, rtol=1e-3, atol=0):
        raise SparError(f"{args.pred}: voxel size {pred_spacing} mm differs from {args.truth}: {spacing} mm; "
                        "expected the same voxel grid")
    names = read_label_names(args.labels) if args.labels is not None else None
    if args.postprocess:
        pred = postprocess(pred, spacing, PostprocessConfig(closing_mm=args.closing_mm))
    rows = evaluate_labels(pred, truth, spacing, structures_to_score(pred, truth, names))
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_format(row[c]) for c in COLUMNS])
    return 0
