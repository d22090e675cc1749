"""Training: the loss falls, resume equals an uninterrupted run, checkpoints and snapshots are usable."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from spar_core.cli import main
from spar_core.errors import SparError
from spar_core.data.dataset import load_dataset
from spar_core.training.fold import fold_slices, train_fold
from spar_core.training.presets import get_preset
from spar_core.layout.run_folder import RunFolder
from spar_core.data.splits import hold_out
from spar_core.training.segmenter import load_unet, train_segmenter
from spar_core.training.shape_ae import load_shape_ae, train_shape_ae
from resume_support import interrupted_then_resumed

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def fold(ankle_small: Path):
    dataset = load_dataset(ankle_small)
    split = hold_out([c.case_id for c in dataset.cases], test_fraction=0.25, seed=0)[0]
    preset = get_preset("tiny").for_classes(len(dataset.labels))
    train, snapshot = fold_slices(dataset, split, preset)
    ae = train_shape_ae(train.labels, preset, device=CPU)
    return dataset, split, preset, train, snapshot, ae


def test_tiny_training_lowers_the_loss(fold, tmp_path: Path) -> None:
    dataset, split, preset, train, snapshot, ae = fold
    preset = dataclasses.replace(preset, train=dataclasses.replace(preset.train, epochs=3))
    for method in ("baseline", "spar"):
        history = train_segmenter(method, train, ae, preset, tmp_path / method, device=CPU, snapshot=snapshot)
        assert len(history) == 3
        assert history[-1]["ce"] < history[0]["ce"], (method, [h["ce"] for h in history])
        assert all(np.isfinite(h["loss"]) for h in history)


@pytest.mark.parametrize("method", ["spar", "adversarial"])
def test_resume_equals_uninterrupted(fold, tmp_path: Path, method: str) -> None:
    _, _, preset, train, snapshot, ae = fold
    full = train_segmenter(method, train, ae, preset, tmp_path / "full", device=CPU, snapshot=snapshot)
    resumed = interrupted_then_resumed(method, train, ae, preset, tmp_path / "cut", device=CPU, snapshot=snapshot)
    assert [h["loss"] for h in resumed] == [h["loss"] for h in full]
    a = torch.load(tmp_path / "full" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "model.pt", weights_only=True)
    for key in ("unet", "discriminator"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), (key, name)


def test_finished_run_is_not_trained_again(fold, tmp_path: Path) -> None:
    _, _, preset, train, snapshot, ae = fold
    first = train_segmenter("baseline", train, ae, preset, tmp_path, device=CPU)
    stamp = (tmp_path / "model.pt").stat().st_mtime_ns
    again = train_segmenter("baseline", train, ae, preset, tmp_path, device=CPU, resume=True)
    assert again == first and (tmp_path / "model.pt").stat().st_mtime_ns == stamp


def test_run_folder_checkpoints_and_snapshots(ankle_small: Path, tmp_path: Path) -> None:
    dataset = load_dataset(ankle_small)
    split = hold_out([c.case_id for c in dataset.cases], test_fraction=0.25, seed=0)[0]
    run = RunFolder(tmp_path / "run")
    preset = get_preset("tiny")
    train_fold(dataset, split, ["shape"], preset, run, device=CPU)
    assert run.read_split(0) == split
    for path in (run.shape_ae_path(0), run.model_path(0, "shape")):
        torch.load(path, weights_only=True)  # no code in a checkpoint runs
    unet, meta = load_unet(run.model_path(0, "shape"))
    assert meta.method == "shape" and meta.epoch == preset.train.epochs and meta.size == preset.train.size
    ae = load_shape_ae(run.shape_ae_path(0))
    assert not any(p.requires_grad for p in ae.parameters())
    assert len(run.history(0, "shape")) == preset.train.epochs
    for epoch in preset.train.snapshot_epochs:
        codes = np.load(run.latent_dir(0, "shape") / f"epoch_{epoch}.npz")
        latent = preset.shape_prior.latent_channels
        assert codes["codes_true"].shape == codes["codes_pred"].shape
        assert codes["codes_true"].shape[1] == latent and len(codes["codes_true"]) > 0
        assert set(np.unique(codes["structure"])) <= set(dataset.structures.values())
        assert set(codes["case"]) <= set(split.test)  # snapshots come from the held-out exams


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["--method", "nope"], "--method"),
        (["--preset", "huge"], "--preset"),
        (["--fold", "7"], "--fold"),
    ],
)
def test_cli_rejects_bad_arguments(ankle_small: Path, tmp_path: Path, capsys, args, phrase) -> None:
    base = {"--dataset": str(ankle_small), "--method": "baseline", "--preset": "tiny", "--out": str(tmp_path)}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    argv = ["train"] + [x for kv in base.items() for x in kv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and phrase in err[0]


def test_cli_rejects_a_bad_dataset(tmp_path: Path, capsys) -> None:
    assert main(["train", "--dataset", str(tmp_path / "nothing"), "--method", "spar", "--out",
                 str(tmp_path / "run")]) == 2
    assert "dataset.json" in capsys.readouterr().err


def test_cli_records_the_preset_and_a_resume_refuses_a_changed_one(ankle_small: Path, tmp_path: Path,
                                                                    capsys) -> None:
    out = tmp_path / "run"
    argv = ["train", "--dataset", str(ankle_small), "--folds", "holdout",  # four exams: fewer than the default 5
            "--method", "baseline", "--preset", "tiny", "--out", str(out), "--device", "cpu"]
    assert main(argv) == 0
    run = RunFolder(out)
    config = run.read_config()
    assert config["preset_settings"]["train"]["epochs"] == get_preset("tiny").train.epochs
    assert config["preset_settings"]["unet"]["num_classes"] == 4  # ankle: 3 bones + background
    capsys.readouterr()
    config["preset_settings"]["train"]["lr"] = 0.5  # as if the preset's definition had changed since
    run.write_config(config)
    stamp = run.model_path(0, "baseline").stat().st_mtime_ns
    for extra in (["--resume"], ["--method", "spar"]):  # the same method resumed, or another method added
        assert main(argv + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "changed since this run began (train.lr)" in err[0], err
    assert run.model_path(0, "baseline").stat().st_mtime_ns == stamp
    assert not run.model_path(0, "spar").exists()
    assert main(argv[:-4] + ["--preset", "cpu", "--out", str(out), "--method", "shape"]) == 2
    assert "this run has preset 'tiny', not 'cpu'" in capsys.readouterr().err


def test_torchrun_two_processes_gloo(ankle_small: Path, tmp_path: Path) -> None:
    """DDP on the CPU: two processes share each batch, rank 0 alone writes the run folder."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "spar_core", "train", "--dataset", str(ankle_small), "--method", "spar", "--preset", "tiny",
           "--out", str(tmp_path / "run"), "--device", "cpu", "--folds", "holdout"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    run = RunFolder(tmp_path / "run")
    assert len(run.history(0, "spar")) == get_preset("tiny").train.epochs
    torch.load(run.model_path(0, "spar"), weights_only=True)


def test_a_setting_added_later_keeps_old_runs_resumable_only_at_its_default(tmp_path: Path) -> None:
    preset = get_preset("tiny").for_classes(4)
    run = RunFolder(tmp_path / "run")
    old = preset.settings()
    del old["train"]["lr_schedule"]  # a run that began before the setting existed
    run.write_config({"dataset": "d", "preset": "tiny", "folds": "2", "preset_settings": old})
    summary = {"dataset": "d", "preset": "tiny", "folds": "2", "preset_settings": preset.settings()}
    run.check_same_experiment(summary, defaults=preset.default_settings())  # the default: the same experiment
    poly = dataclasses.replace(preset, train=dataclasses.replace(preset.train, lr_schedule="poly"))
    with pytest.raises(SparError, match=r"changed since this run began \(train.lr_schedule\)"):
        run.check_same_experiment({**summary, "preset_settings": poly.settings()}, defaults=poly.default_settings())
    with pytest.raises(SparError, match="train.lr_schedule"):
        run.check_same_experiment(summary)  # without the defaults, any unrecorded setting is a change


def test_a_2p5d_network_trains_on_neighbouring_slices_and_predicts_with_them(fold, tmp_path: Path) -> None:
    from spar_core.data.dataset import load_volume
    from spar_core.inference.predict import predict_volume

    dataset, split, preset, _, _, ae = fold
    preset = dataclasses.replace(preset, segmenter=dataclasses.replace(preset.segmenter, context=1, context_mm=2.0))
    train, snapshot = fold_slices(dataset, split, preset)
    assert train.images.shape[1] == 3
    history = train_segmenter("spar", train, ae, preset, tmp_path, device=CPU, snapshot=snapshot)
    assert all(np.isfinite(h["loss"]) for h in history)
    unet, _ = load_unet(tmp_path / "model.pt")
    assert (unet.cfg.context, unet.cfg.context_mm) == (1, 2.0)  # the checkpoint says how to feed it
    volume = load_volume(dataset, split.test[0])
    step = unet.cfg.stride_along(volume.spacing[volume.slice_axis])
    assert step == max(1, round(2.0 / volume.spacing[volume.slice_axis]))
    labels = predict_volume(unet, volume, preset.train.size)
    assert labels.shape == volume.image.shape


def test_a_checkpoint_is_one_record_for_every_network(tmp_path: Path) -> None:
    from spar_core.errors import SparError
    from spar_core.models import ShapeAEConfig, ShapeAutoEncoder
    from spar_core.training.checkpoint import Checkpoint
    from spar_core.training.shape_ae import load_shape_ae, save_shape_ae

    ae = ShapeAutoEncoder(ShapeAEConfig(num_classes=3, base_channels=4, depth=2, latent_channels=8))
    save_shape_ae(ae, tmp_path / "ae.pt")
    record = Checkpoint.load(tmp_path / "ae.pt")
    assert record.network == "shape_ae" and record.config["latent_channels"] == 8 and record.method is None
    assert load_shape_ae(tmp_path / "ae.pt").cfg == ae.cfg
    with pytest.raises(SparError, match="not a spar segmenter checkpoint"):
        load_unet(tmp_path / "ae.pt")
    torch.save({"format": 1, "weights": {}}, tmp_path / "other.pt")
    with pytest.raises(SparError, match="other.pt: not a spar checkpoint"):
        Checkpoint.load(tmp_path / "other.pt")
