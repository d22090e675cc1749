"""Latent maps and convergence: complete and reproducible tables, a fixed reference map, distances that fall."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from spar_core.cli import main
from spar_core.latent.convergence import convergence_table
from spar_core.data.dataset import load_dataset
from spar_core.latent.embedding import (
    EMBEDDINGS,
    FoldSnapshots,
    embed_fold,
    embed_snapshots,
    load_snapshots,
    parse_kinds,
    perplexity_for,
)
from spar_core.errors import SparError
from spar_core.training.fold import train_fold
from spar_core.training.presets import get_preset
from spar_core.training.regularizers import REGULARIZERS
from spar_core.layout.run_folder import RunFolder
from spar_core.data.splits import k_fold

EPOCHS = 6


@pytest.fixture(scope="module")
def run6(ankle_small: Path, tmp_path_factory: pytest.TempPathFactory) -> RunFolder:
    """Fold 0 of a 2-fold split, the four methods trained 6 epochs with the tiny preset, a snapshot each epoch."""
    dataset = load_dataset(ankle_small)
    tiny = get_preset("tiny")
    preset = dataclasses.replace(tiny, train=dataclasses.replace(
        tiny.train, epochs=EPOCHS, snapshot_epochs=tuple(range(1, EPOCHS + 1))))
    run = RunFolder(tmp_path_factory.mktemp("embed") / "run")
    run.write_config({"kind": "test", "dataset": str(ankle_small), "labels": dataset.labels,
                      "slice_axis": dataset.slice_axis, "preset": "tiny", "methods": list(REGULARIZERS)})
    split = k_fold([c.case_id for c in dataset.cases], 2)[0]
    train_fold(dataset, split, list(REGULARIZERS), preset, run, device=torch.device("cpu"))
    return run


@pytest.fixture(scope="module")
def table(run6: RunFolder) -> pd.DataFrame:
    return embed_fold(run6, 0, seed=0)


def test_table_is_complete(run6: RunFolder, table: pd.DataFrame) -> None:
    snaps = load_snapshots(run6, 0)
    assert snaps.keys() == [(m, e) for m in sorted(REGULARIZERS) for e in range(1, EPOCHS + 1)]
    counts = table.groupby(["embedding", "method", "epoch", "origin"]).size()
    assert len(counts) == len(EMBEDDINGS) * len(REGULARIZERS) * EPOCHS * 2
    for (kind, method, epoch, origin), n in counts.items():
        assert n == len(snaps.index(method, epoch)), (kind, method, epoch, origin)
    assert np.isfinite(table[["x", "y"]].to_numpy()).all()
    assert set(table["structure"]) <= {"calcaneus", "talus", "tibia"}


def test_same_seed_same_table(run6: RunFolder, table: pd.DataFrame) -> None:
    """Recomputed on two snapshots only: the same rows, to the bit (each snapshot's map is independent of the
    others, and the aligned maps depend on the true codes alone)."""
    snaps = load_snapshots(run6, 0)
    keep = snaps.frame["method"].isin(["shape", "spar"]).to_numpy() & (snaps.frame["epoch"] == EPOCHS).to_numpy()
    subset = FoldSnapshots(0, snaps.frame[keep].reset_index(drop=True), snaps.true[keep], snaps.pred[keep])
    again = embed_snapshots(subset, seed=0)
    expected = table[table["method"].isin(["shape", "spar"]) & (table["epoch"] == EPOCHS)].reset_index(drop=True)
    pd.testing.assert_frame_equal(again, expected)


@pytest.mark.parametrize("kind", ["aligned", "umap"])
def test_reference_points_stay_fixed(table: pd.DataFrame, kind: str) -> None:
    true = table[(table["embedding"] == kind) & (table["origin"] == "true")]
    groups = [g[["x", "y"]].to_numpy() for _, g in true.groupby(["method", "epoch"])]
    assert len(groups) == len(REGULARIZERS) * EPOCHS
    for xy in groups[1:]:
        np.testing.assert_array_equal(xy, groups[0])
    predicted = table[(table["embedding"] == kind) & (table["origin"] == "predicted")]
    first, last = (predicted[predicted["epoch"] == e][["x", "y"]].to_numpy() for e in (1, EPOCHS))
    assert not np.array_equal(first, last)  # the predicted points do move


def test_refitted_tsne_layouts_differ_between_epochs(table: pd.DataFrame) -> None:
    true = table[(table["embedding"] == "tsne") & (table["origin"] == "true") & (table["method"] == "spar")]
    a, b = (true[true["epoch"] == e][["x", "y"]].to_numpy() for e in (1, 2))
    assert not np.allclose(a, b)


def test_convergence_falls_for_shape_priors(run6: RunFolder) -> None:
    conv = convergence_table(run6, 0)
    overall = conv[conv["structure"] == "all"].set_index(["method", "epoch"])["mean_distance"]
    for method in ("spar", "shape"):
        assert overall[(method, EPOCHS)] < overall[(method, 1)], overall.loc[method].to_dict()
    per = conv[conv["structure"] != "all"].groupby(["method", "epoch"])["n"].sum()
    np.testing.assert_array_equal(per.to_numpy(), conv[conv["structure"] == "all"].set_index(
        ["method", "epoch"]).loc[per.index, "n"].to_numpy())


@pytest.mark.parametrize("n, expected", [(5, 4 / 3), (10, 3.0), (91, 30.0), (1000, 30.0), (2, 1.0)])
def test_perplexity_adapts_to_small_samples(n: int, expected: float) -> None:
    assert perplexity_for(n) == pytest.approx(expected)
    if n > 3:
        assert perplexity_for(n) < n / 3


@pytest.mark.parametrize("text", ["pca", "", "tsne,magic"])
def test_unknown_embedding_is_rejected(text: str) -> None:
    with pytest.raises(SparError, match="--embeddings"):
        parse_kinds(text)


def test_cli_embed(run6: RunFolder, tmp_path: Path, capsys) -> None:
    assert main(["embed", str(run6.root), "--embeddings", "aligned", "--seed", "1"]) == 0
    frame = pd.read_csv(run6.root / "embeddings" / "fold_0.csv")
    assert set(frame["embedding"]) == {"aligned"}
    conv = pd.read_csv(run6.root / "embeddings" / "convergence_fold_0.csv")
    assert set(conv["method"]) == set(REGULARIZERS)
    capsys.readouterr()
    for argv in (["embed", str(tmp_path / "nowhere")], ["embed", str(run6.root), "--fold", "7"],
                 ["embed", str(run6.root), "--embeddings", "pca"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
