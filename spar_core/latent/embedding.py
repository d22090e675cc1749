"""2D maps of the latent shape space during training (paper §3.4, Fig. 3): where the codes ẑ = F(ŷ_b) of
predicted 2D masks lie relative to the codes z = F(y_b) of the true masks, at each snapshot epoch.

Three kinds of map, one table (``RUN/embeddings/fold_<k>.csv``, one row per point):

- ``tsne``: scikit-learn t-SNE fitted anew for every (method, epoch) on that epoch's true and predicted codes:
  the paper's picture. Each map has its own layout (axes, rotation, scale are arbitrary), so positions are NOT
  comparable across epochs or methods; only "are the two clouds mixed" is.
- ``aligned``: one openTSNE map fitted on the reference points, the true codes (identical at every epoch and
  for every method: F is frozen and the snapshot slices are fixed), then every (method, epoch)'s predicted
  codes placed into that fixed map (``TSNEEmbedding.transform``). True points keep their coordinates, so a
  predicted point that moves between epochs moved in the latent space.
- ``umap``: the same idea with UMAP (fit on the true codes, transform the predicted ones).

Perplexity (and UMAP's neighbourhood) shrinks with small sample counts (perplexity < n/3). Every map is
deterministic for a seed (single-threaded).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from spar_core.errors import SparError
from spar_core.paths import load_arrays, read_table, write_csv
from spar_core.progress import Progress, ProgressEvent, silent
from spar_core.layout.run_folder import RunFolder

EMBEDDINGS = ("tsne", "aligned", "umap")
COLUMNS = ["fold", "embedding", "method", "epoch", "structure", "origin", "case", "slice", "x", "y"]
MIN_POINTS = 5  # fewer reference codes than this give no meaningful neighbourhoods


@dataclass
class FoldSnapshots:
    """Every latent snapshot of one fold, stacked.

    frame: one row per code pair: method, epoch, label (value), structure (name), row, case, slice.
    true, pred: (N, L) float32 codes F(y_b) and F(ŷ_b) aligned with ``frame``'s rows.
    """

    fold: int
    frame: pd.DataFrame
    true: np.ndarray
    pred: np.ndarray

    def keys(self) -> list[tuple[str, int]]:
        """(method, epoch) of every snapshot, sorted."""
        pairs = self.frame[["method", "epoch"]].drop_duplicates()
        return sorted((str(m), int(e)) for m, e in pairs.itertuples(index=False))

    def index(self, method: str, epoch: int) -> np.ndarray:
        """Row indices of one snapshot."""
        return np.flatnonzero((self.frame["method"].to_numpy() == method) & (self.frame["epoch"].to_numpy() == epoch))

    def reference(self) -> tuple[pd.DataFrame, np.ndarray]:
        """The true codes, once: (frame of one snapshot, (M, L) codes). They are the same in every snapshot of a
        fold; ``load_snapshots`` has checked it."""
        method, epoch = self.keys()[0]
        idx = self.index(method, epoch)
        return self.frame.iloc[idx].reset_index(drop=True), self.true[idx]


def _label_names(run: RunFolder) -> dict[int, str]:
    labels = run.read_config().get("labels") or {}
    return {int(v): str(k) for k, v in labels.items()}


def load_snapshots(run: RunFolder | str | Path, fold: int) -> FoldSnapshots:
    """Read ``RUN/folds/<fold>/<method>/latent/epoch_<e>.npz`` of every method.

    Raises:
        SparError: not a run folder, no snapshot in the fold, an unreadable file, or true codes that differ
            between snapshots (they must share the fold's frozen shape AE and its fixed slices).
    """
    run = RunFolder(run) if not isinstance(run, RunFolder) else run
    names = _label_names(run)
    paths = run.snapshot_files(fold)
    if not paths:
        raise SparError(f"{run.fold_dir(fold)}: no latent snapshots (folds/{fold}/<method>/latent/epoch_<e>.npz); "
                        "train the fold first")
    frames, trues, preds = [], [], []
    ref_keys = ref_true = None
    ref_path = None
    for path in paths:
        arrays = load_arrays(path, ("epoch", "codes_true", "codes_pred", "structure", "row", "case", "slice"),
                             "a latent snapshot (codes of true and predicted masks)")
        method = path.parent.parent.name
        n = len(arrays["row"])
        keys = np.stack([arrays["row"], arrays["structure"]], 1)
        if ref_keys is None:
            ref_keys, ref_true, ref_path = keys, arrays["codes_true"], path
        elif not (keys.shape == ref_keys.shape and np.array_equal(keys, ref_keys)
                  and np.allclose(arrays["codes_true"], ref_true, rtol=1e-4, atol=1e-5)):
            raise SparError(f"{path}: its true codes differ from those of {ref_path}; the snapshots of a fold must "
                            "share the fold's shape AE and snapshot slices")
        labels = arrays["structure"].astype(int)
        frames.append(pd.DataFrame({
            "method": method, "epoch": int(arrays["epoch"]), "label": labels,
            "structure": [names.get(v, str(v)) for v in labels], "row": arrays["row"].astype(int),
            "case": arrays["case"].astype(str), "slice": arrays["slice"].astype(int)}, index=range(n)))
        trues.append(arrays["codes_true"].astype(np.float32))
        preds.append(arrays["codes_pred"].astype(np.float32))
    frame = pd.concat(frames, ignore_index=True)
    return FoldSnapshots(fold, frame, np.concatenate(trues), np.concatenate(preds))


# ---------------------------------------------------------------------------------------------- the maps


def perplexity_for(n: int, default: float = 30.0) -> float:
    """t-SNE perplexity for n points: ``default``, lowered below n/3 for small samples (at least 1)."""
    return float(max(1.0, min(default, (n - 1) / 3.0)))


def _check_count(n: int, what: str) -> None:
    if n < MIN_POINTS:
        raise SparError(f"{what}: {n} codes; at least {MIN_POINTS} are needed to embed (snapshot more slices)")


def tsne_map(codes: np.ndarray, seed: int) -> np.ndarray:
    """scikit-learn t-SNE of (n, L) codes → (n, 2); its own layout, comparable with no other map."""
    from sklearn.manifold import TSNE

    n = len(codes)
    tsne = TSNE(n_components=2, perplexity=perplexity_for(n), init="pca", random_state=seed, n_jobs=1)
    return tsne.fit_transform(codes.astype(np.float64))


class AlignedTSNE:
    """One openTSNE map of the reference codes; ``place`` puts new codes into it without moving it."""

    def __init__(self, reference: np.ndarray, seed: int) -> None:
        from openTSNE import TSNE

        n = len(reference)
        self.embedding = TSNE(n_components=2, perplexity=perplexity_for(n), n_jobs=1, random_state=seed,
                              verbose=False).fit(reference.astype(np.float64))
        # openTSNE.transform re-centres the reference in place; centre it once here so it never moves after.
        self.embedding -= (np.max(self.embedding, axis=0) + np.min(self.embedding, axis=0)) / 2
        self.reference_xy = np.array(self.embedding)
        self.k = min(25, n - 1)

    def place(self, codes: np.ndarray) -> np.ndarray:
        """(m, L) → (m, 2): each point optimized against the fixed reference only (not against each other)."""
        xy = self.embedding.transform(codes.astype(np.float64), perplexity=perplexity_for(self.k + 1, 5.0),
                                      k=self.k)
        return np.array(xy)


class AlignedUMAP:
    """UMAP fitted on the reference codes; ``place`` transforms new codes into the fixed map."""

    def __init__(self, reference: np.ndarray, seed: int) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # n_jobs forced to 1 by random_state; small-sample notes
            from umap import UMAP

            n = len(reference)
            self.model = UMAP(n_components=2, n_neighbors=max(2, min(15, n - 1)), random_state=seed,
                              transform_seed=seed, n_jobs=1).fit(reference.astype(np.float32))
        self.reference_xy = np.asarray(self.model.embedding_, dtype=np.float64)

    def place(self, codes: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(self.model.transform(codes.astype(np.float32)), dtype=np.float64)


ALIGNED = {"aligned": AlignedTSNE, "umap": AlignedUMAP}


def parse_kinds(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"tsne,aligned"`` or a sequence → validated kinds, in the given order."""
    kinds = [k.strip() for k in (text.split(",") if isinstance(text, str) else text) if k.strip()]
    unknown = [k for k in kinds if k not in EMBEDDINGS]
    if unknown or not kinds:
        raise SparError(f"--embeddings: unknown {', '.join(unknown) or '(empty)'}; expected a comma-separated "
                        f"list of {', '.join(EMBEDDINGS)}")
    return tuple(dict.fromkeys(kinds))


def _rows(meta: pd.DataFrame, xy: np.ndarray, kind: str, method: str, epoch: int, origin: str, fold: int
          ) -> pd.DataFrame:
    return pd.DataFrame({"fold": fold, "embedding": kind, "method": method, "epoch": epoch,
                         "structure": meta["structure"].to_numpy(), "origin": origin,
                         "case": meta["case"].to_numpy(), "slice": meta["slice"].to_numpy(),
                         "x": xy[:, 0], "y": xy[:, 1]})


def embed_snapshots(snaps: FoldSnapshots, kinds: Sequence[str] = EMBEDDINGS, seed: int = 0,
                    progress: Progress = silent) -> pd.DataFrame:
    """The embedding table of loaded snapshots (see :func:`embed_fold`)."""
    kinds = parse_kinds(kinds)
    keys = snaps.keys()
    ref_meta, ref_codes = snaps.reference()
    _check_count(len(ref_codes), f"fold {snaps.fold}")
    parts = []
    for kind in kinds:
        fixed = ALIGNED[kind](ref_codes, seed) if kind in ALIGNED else None
        for step, (method, epoch) in enumerate(keys, start=1):
            idx = snaps.index(method, epoch)
            meta = snaps.frame.iloc[idx]
            if fixed is None:
                xy = tsne_map(np.concatenate([snaps.true[idx], snaps.pred[idx]]), seed)
                true_xy, pred_xy = xy[:len(idx)], xy[len(idx):]
            else:
                true_xy, pred_xy = fixed.reference_xy, fixed.place(snaps.pred[idx])
            parts.append(_rows(meta, true_xy, kind, method, epoch, "true", snaps.fold))
            parts.append(_rows(meta, pred_xy, kind, method, epoch, "predicted", snaps.fold))
            progress(ProgressEvent("embed", 1, 1, step, len(keys), label=f"{kind} fold {snaps.fold}"))
    return pd.concat(parts, ignore_index=True)[COLUMNS]


def embed_fold(run: RunFolder | str | Path, fold: int, kinds: Sequence[str] = EMBEDDINGS, seed: int = 0,
               progress: Progress = silent) -> pd.DataFrame:
    """2D coordinates of every true and predicted code of every snapshot of ``fold``.

    Args:
        run: the run folder.
        fold: which fold's snapshots.
        kinds: any of ``"tsne"``, ``"aligned"``, ``"umap"`` (see the module docstring).
        seed: random state of every map (same seed, same table).

    Returns:
        One row per (kind, method, epoch, code pair, origin) with ``COLUMNS``: fold, embedding, method,
        epoch, structure (name), origin ("true"/"predicted"), case, slice, x, y. True points of a snapshot
        come first, in snapshot order, then its predicted points in the same order.

    Raises:
        SparError: no snapshots, unknown kind, fewer than ``MIN_POINTS`` codes.
    """
    return embed_snapshots(load_snapshots(run, fold), kinds, seed, progress)


def read_embeddings(path: str | Path) -> pd.DataFrame:
    """A table written by :func:`write_embeddings` (columns ``COLUMNS``).

    Raises:
        SparError: missing, unreadable or wrong-shaped (named).
    """
    return read_table(path, COLUMNS, "an embedding table (spar embed RUN writes it)", text=("case", "structure"))


def write_embeddings(run: RunFolder | str | Path, fold: int, kinds: Sequence[str] = EMBEDDINGS, seed: int = 0,
                     progress: Progress = silent) -> Path:
    """Compute :func:`embed_fold` and write it atomically to ``RUN/embeddings/fold_<fold>.csv``."""
    run = RunFolder(run) if not isinstance(run, RunFolder) else run
    frame = embed_fold(run, fold, kinds, seed, progress)
    path = run.embeddings_path(fold)
    write_csv(path, frame)
    return path
