"""Options shared by several sub-commands, declared once."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 or mps (default: the fastest present)")


def add_progress_file(p: argparse.ArgumentParser) -> None:
    p.add_argument("--progress-file", type=Path, default=None, metavar="PATH",
                   help="also keep the latest progress event in this JSON file (for the app's Runs page)")
