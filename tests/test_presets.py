"""Presets are named settings: each size given once, the networks' configurations derived from it."""

from __future__ import annotations

import pytest

from spar_core.errors import SparError
from spar_core.training.presets import PRESETS, get_preset


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_network_is_sized_from_the_one_slice_size_and_the_dataset(name: str) -> None:
    preset = get_preset(name).for_classes(6)
    assert preset.unet.num_classes == preset.shape_ae.num_classes == preset.mask_disc.num_classes == 6
    assert preset.code_disc.spatial == preset.train.size // 2**preset.shape_ae.depth == preset.latent_size
    assert preset.code_disc.latent_channels == preset.shape_ae.latent_channels
    assert (preset.mask_disc.base_channels, preset.mask_disc.depth) == (preset.unet.base_channels, preset.unet.depth)
    bigger = preset.with_size(2 * preset.train.size)
    assert bigger.code_disc.spatial == 2 * preset.code_disc.spatial


def test_the_paper_and_cpu_recipes() -> None:
    paper = get_preset("paper").for_classes(6)
    assert (paper.train.size, paper.train.batch_size, paper.train.epochs, paper.shape_ae.latent_channels) \
        == (256, 32, 10, 512)
    assert paper.code_disc.spatial == 8  # 256 / 2**5
    cpu = get_preset("cpu").for_classes(6)
    assert (cpu.train.size, cpu.unet.context, cpu.unet.context_mm, cpu.unet.input_channels) == (96, 2, 4.0, 5)


def test_run_json_records_the_networks_as_before() -> None:
    settings = get_preset("tiny").for_classes(3).settings()
    assert set(settings) == {"name", "unet", "shape_ae", "code_disc", "mask_disc", "train"}
    assert settings["unet"]["num_classes"] == 3 and settings["code_disc"]["spatial"] == 8
    assert set(get_preset("tiny").default_settings()) == {"unet", "shape_ae", "code_disc", "mask_disc", "train"}


def test_a_preset_not_sized_for_a_dataset_says_so() -> None:
    with pytest.raises(SparError, match="for_classes"):
        get_preset("cpu").unet
    with pytest.raises(SparError, match="--preset.*tiny"):
        get_preset("huge")
