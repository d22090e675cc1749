"""Precision: auto picks what the hardware runs natively, bf16 trains like fp32, resume stays exact."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

import spar_core.training.precision as precision_module
from spar_core.cli import main
from spar_core.data.dataset import load_dataset
from spar_core.data.splits import hold_out
from spar_core.errors import SparError
from spar_core.training.fold import fold_slices
from spar_core.training.precision import Precision, cpu_has_native_bf16, resolve
from spar_core.training.presets import get_preset
from spar_core.training.segmenter import train_segmenter
from spar_core.training.shape_ae import train_shape_ae
from resume_support import Interrupt, stop_after_first_epoch

CPU = torch.device("cpu")


@pytest.mark.parametrize("flags, native", [
    ("fpu vme avx512f avx512_bf16 avx512_vnni", True),
    ("fpu amx_bf16 amx_tile", True),
    ("fpu avx2 avx512f avx512bw", False),
])
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path: Path, flags: str, native: bool) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    assert cpu_has_native_bf16(info) is native
    assert cpu_has_native_bf16(tmp_path / "absent") is False  # cannot ask: never guess


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_on_the_cpu(monkeypatch, native: bool, expected: str) -> None:
    monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: native)
    assert resolve("auto", CPU) == expected
    assert resolve("fp32", CPU) == "fp32" and resolve("bf16", CPU) == "bf16"


@pytest.mark.parametrize("name, words", [("fp16", ["--precision fp16", "CUDA"]), ("fp64", ["--precision", "'fp64'"])])
def test_unusable_precisions_are_named(name: str, words: list[str]) -> None:
    with pytest.raises(SparError) as info:
        resolve(name, CPU)
    assert all(w in str(info.value) for w in words)


def test_autocast_and_scaler() -> None:
    bf16 = Precision.of("bf16", CPU)
    with bf16.autocast():
        out = torch.nn.Conv2d(1, 2, 3)(torch.ones(1, 1, 8, 8))
    assert out.dtype == torch.bfloat16
    assert Precision.of("fp32", CPU).dtype is None
    assert not bf16.grad_scaler().is_enabled()


@pytest.fixture(scope="module")
def fold(ankle_small: Path):
    dataset = load_dataset(ankle_small)
    split = hold_out([c.case_id for c in dataset.cases], test_fraction=0.25, seed=0)[0]
    preset = get_preset("tiny").for_classes(len(dataset.labels))
    preset = dataclasses.replace(preset, train=dataclasses.replace(preset.train, epochs=3))
    train, snapshot = fold_slices(dataset, split, preset)
    ae = train_shape_ae(train.labels, preset, device=CPU)
    return preset, train, snapshot, ae


def _train(fold, out: Path, precision: str, seed: int = 0, **kwargs) -> list[dict]:
    preset, train, snapshot, ae = fold
    preset = dataclasses.replace(preset, train=dataclasses.replace(preset.train, precision=precision, seed=seed))
    return train_segmenter("spar", train, ae, preset, out, device=CPU, snapshot=snapshot, **kwargs)


def test_bf16_trains_like_fp32(fold, tmp_path: Path) -> None:
    runs = {(p, s): _train(fold, tmp_path / f"{p}_{s}", p, s) for p, s in (("fp32", 0), ("fp32", 1), ("bf16", 0))}
    final = {key: h[-1]["loss"] for key, h in runs.items()}
    assert runs[("bf16", 0)][-1]["precision"] == "bf16" and runs[("fp32", 0)][-1]["precision"] == "fp32"
    spread = abs(final[("fp32", 1)] - final[("fp32", 0)])  # another seed: how far runs fall apart anyway
    assert abs(final[("bf16", 0)] - final[("fp32", 0)]) <= max(spread, 0.02 * final[("fp32", 0)]), final
    weights = torch.load(tmp_path / "bf16_0" / "model.pt", weights_only=True)["unet"]
    assert all(w.dtype == torch.float32 for w in weights.values() if w.is_floating_point())  # weights stay fp32


def test_bf16_resume_is_exact_and_keeps_its_precision(fold, tmp_path: Path) -> None:
    full = _train(fold, tmp_path / "full", "bf16")
    with pytest.raises(Interrupt):
        _train(fold, tmp_path / "cut", "bf16", progress=stop_after_first_epoch)
    with pytest.raises(SparError, match="resume with --precision bf16"):
        _train(fold, tmp_path / "cut", "fp32", resume=True)
    resumed = _train(fold, tmp_path / "cut", "bf16", resume=True)
    assert [h["loss"] for h in resumed] == [h["loss"] for h in full]
    a = torch.load(tmp_path / "full" / "model.pt", weights_only=True)["unet"]
    b = torch.load(tmp_path / "cut" / "model.pt", weights_only=True)["unet"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_refuses_fp16_on_the_cpu(ankle_small: Path, tmp_path: Path, capsys) -> None:
    assert main(["train", "--dataset", str(ankle_small), "--method", "baseline", "--preset", "tiny", "--out",
                 str(tmp_path / "run"), "--device", "cpu", "--precision", "fp16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--precision fp16" in err[0]
