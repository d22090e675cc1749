"""A finished run's trained models and raw predictions, post-processed anew under another ``--chain-prior``.

Training is independent of how rows are ordered afterwards, so comparing two priors needs one training: this
copies a run folder's record, splits, models (hard links where the file system allows) and raw predictions into a
new run folder that records the other prior, without anything the post-processing made (decisions, the
post-processed predictions and rows, level models and their evidence); ``spar crossval`` with the same arguments
and ``--chain-prior PRIOR --out DST`` then skips every trained unit and post-processes (training the fold's level
models where the prior is ``level``). The source run is only read.

    python bench/reorder.py SRC DST --chain-prior level
    spar crossval --dataset D --methods M --folds K --preset P --chain-prior level --out DST
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from spar_core.errors import SparError
from spar_core.paths import read_json_object, write_json
from spar_core.postprocessing.settings import CHAIN_PRIORS

# what post-processing makes, never copied (relative to a method folder, or a fold folder for the first two)
MADE_AFTER = {"level_model.pt", "level_model.json", "pred", "levels", "metrics_post.csv",
              "postprocess_decision.json", "postprocess.json"}


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def reorder(src: Path, dst: Path, prior: str) -> int:
    """Copy ``src`` into a new run folder ``dst`` recording ``prior``; returns the files copied."""
    if not (src / "run.json").is_file():
        raise SparError(f"{src}: not a spar run folder (no run.json)")
    if dst.exists():
        raise SparError(f"{dst}: exists; expected a new folder")
    config = read_json_object(src / "run.json", "a run's record")
    copied = 0
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if not path.is_file() or rel.parts[0] in ("report", "triage", "studies", "embeddings") \
                or set(rel.parts) & MADE_AFTER or str(rel) in ("run.json", "metrics.csv") or rel.name == ".lock":
            continue
        _link_or_copy(path, dst / rel)
        copied += 1
    post = dict(config.get("postprocess") or {})
    post["chain_prior"] = prior
    write_json(dst / "run.json", {**config, "postprocess": post, "status": "running"})
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--chain-prior", choices=CHAIN_PRIORS, required=True)
    args = parser.parse_args(argv)
    try:
        n = reorder(args.src, args.dst, args.chain_prior)
    except SparError as err:
        print(f"reorder: {err}", file=sys.stderr)
        return 2
    print(f"{n} files of {args.src} in {args.dst}, recording --chain-prior {args.chain_prior}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
