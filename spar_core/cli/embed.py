"""``spar embed RUN``: 2D maps of the latent shape codes per epoch, and the latent convergence table."""

from __future__ import annotations

import argparse

from spar_core.cli.commands import summary
from spar_core.cli.options import add_run, add_seed
from spar_core.errors import SparError
from spar_core.latent.embedding import EMBEDDINGS
from spar_core.progress import TqdmProgress
from spar_core.layout.run_folder import RunFolder


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("embed", help=summary("embed"),
                       description="From the latent snapshots of every method of a fold, write the 2D embeddings "
                                   "of true and predicted structure codes per epoch to RUN/embeddings/fold_<k>.csv "
                                   "and the mean latent distance of predicted to true codes per method and epoch "
                                   "to RUN/embeddings/convergence_fold_<k>.csv. 'tsne' refits a map per epoch "
                                   "(the paper's figure; layouts not comparable across epochs); 'aligned' and "
                                   "'umap' fit one map on the true codes and place every epoch's predicted codes "
                                   "into it.")
    add_run(p)
    p.add_argument("--fold", type=int, default=None, help="one fold (default: every fold)")
    p.add_argument("--embeddings", default=",".join(EMBEDDINGS),
                   help=f"comma-separated kinds among {', '.join(EMBEDDINGS)} (default: all)")
    add_seed(p, "every map")
    return p


def run(args: argparse.Namespace) -> int:
    from spar_core.latent.convergence import convergence_table, write_convergence
    from spar_core.latent.embedding import parse_kinds, write_embeddings

    kinds = parse_kinds(args.embeddings)
    run_dir = RunFolder(args.run)
    run_dir.read_config()
    folds = run_dir.folds() if args.fold is None else [args.fold]
    if args.fold is not None and args.fold not in run_dir.folds():
        raise SparError(f"--fold: {args.fold} is not a fold of {args.run} (folds: {run_dir.folds() or 'none'})")
    if not folds:
        raise SparError(f"{args.run}: no folds (folds/<k>/split.json) in this run")
    progress = TqdmProgress()
    for fold in folds:
        path = write_embeddings(run_dir, fold, kinds, args.seed, progress)
        progress.close()
        conv = write_convergence(run_dir, fold)
        print(f"fold {fold}: embeddings ({', '.join(kinds)}) in {path}; convergence in {conv}")
        table = convergence_table(run_dir, fold)
        curve = (table[table["structure"] == "all"]
                 .pivot(index="epoch", columns="method", values="mean_distance"))
        print("mean latent distance ‖F(ŷ) − F(y)‖ per epoch:")
        print(curve.to_string(float_format=lambda v: f"{v:.3f}"))
    return 0
