"""Options shared by several sub-commands, declared once. Light: a sub-command's ``--help`` imports no stage."""

from __future__ import annotations

import argparse
from pathlib import Path

from typing import TYPE_CHECKING

from spar_core.training.names import DEFAULT_PRESET, PRECISIONS, PRESET_NAMES

if TYPE_CHECKING:
    from spar_core.data.duplicates import Twins
    from spar_core.data.splits import Split


def add_dataset(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, type=Path, help="dataset folder (dataset.json, imagesTr, labelsTr)")


def add_run(p: argparse.ArgumentParser, written_by: str = "spar crossval / demo / train") -> None:
    p.add_argument("run", type=Path, metavar="RUN", help=f"run folder written by {written_by}")


def add_preset(p: argparse.ArgumentParser, choices: str | None = None) -> None:
    shown = choices or f"one of: {', '.join(PRESET_NAMES)}"
    p.add_argument("--preset", default=DEFAULT_PRESET, help=f"{shown} (default: {DEFAULT_PRESET})")


def add_seed(p: argparse.ArgumentParser, of: str, default: int | None = 0) -> None:
    shown = "the preset's, 0" if default is None else default
    p.add_argument("--seed", type=int, default=default, metavar="S", help=f"seed of {of} (default: {shown})")


def add_device(p: argparse.ArgumentParser, default: str | None = None) -> None:
    shown = default or "the fastest present"
    p.add_argument("--device", default=default, help=f"cpu, cuda, cuda:1 or mps (default: {shown})")


def add_precision(p: argparse.ArgumentParser, default: str | None = None) -> None:
    shown = default or "the preset's, auto"
    p.add_argument("--precision", choices=PRECISIONS, default=default,
                   help=f"fp32, or autocast to bf16 / fp16; auto: bf16 where the CPU or GPU runs it natively, "
                        f"fp16 on other GPUs, else fp32 (default: {shown})")


def add_progress_file(p: argparse.ArgumentParser) -> None:
    p.add_argument("--progress-file", type=Path, default=None, metavar="PATH",
                   help="also keep the latest progress event in this JSON file (for the app's Runs page)")


def add_folds(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--folds", default=default,
                   help=f"loo (leave one patient out), holdout, a number K of folds, or all (train on every exam, "
                        f"test none: the model to deploy) (default: {default})")
    p.add_argument("--splits", type=Path, default=None, metavar="FILE",
                   help="folds from a file in nnU-Net's splits_final.json form, a list of {\"train\": [...], "
                        "\"val\": [...]} (a published split); replaces --folds")


def report_twins(twins: "Twins", splits: "list[Split]", splits_file: Path | None) -> None:
    """Print the twins found; for a splits file (which spar does not regroup), each fold where twins straddle."""
    from spar_core.data.splits import straddling

    for line in twins.lines():
        print(line + ("" if splits_file is not None else " (kept in one fold)"))
    for line in straddling(splits, twins.groups()) if splits_file is not None else []:
        print(f"warning: {splits_file}: {line}: the test score of that fold is optimistic")
