"""The methods' facts (spar_core.methods): one entry per method, the regularizer registry built on them."""

from __future__ import annotations

import pytest

from spar_core.errors import SparError
from spar_core.methods import (
    BASELINE,
    METHODS,
    SPAR,
    display_name,
    method,
    method_colors,
    method_order,
    parse_methods,
)
from spar_core.training.regularizers import REGULARIZERS

# key, name in the paper's Table 1, uses F, own discriminator, has λ·L_reg
PAPER = [
    ("baseline", "Base. UNet", False, False, False),
    ("adversarial", "Adv. Reg.", False, True, True),
    ("shape", "Sh. Reg.", True, False, True),
    ("spar", "SPAR", True, True, True),
]


@pytest.mark.parametrize("key, display, encoder, disc, regularized", PAPER)
def test_each_method_as_in_the_paper(key: str, display: str, encoder: bool, disc: bool, regularized: bool) -> None:
    m = METHODS[key]
    assert (m.key, m.display, m.needs_shape_encoder, m.has_discriminator, m.regularized) == (
        key, display, encoder, disc, regularized)
    assert display_name(key) == display


def test_registry_of_classes_follows_the_facts() -> None:
    assert list(METHODS) == [row[0] for row in PAPER] == list(REGULARIZERS)
    for key, cls in REGULARIZERS.items():
        assert cls.info is METHODS[key]
    assert BASELINE in METHODS and SPAR in METHODS


def test_order_colours_and_unknown_keys() -> None:
    assert method_order(["spar", "mine", "baseline", "another"]) == ["baseline", "spar", "another", "mine"]
    colours = method_colors(["spar", "baseline", "adversarial", "shape", "mine"])
    assert colours["spar"] == method_colors(["spar"])["spar"] == METHODS["spar"].color
    assert len(set(colours.values())) == 5
    assert display_name("mine") == "mine"


@pytest.mark.parametrize("text, expected", [
    ("all", ["baseline", "adversarial", "shape", "spar"]),
    ("spar, baseline", ["spar", "baseline"]),
    ("shape", ["shape"]),
])
def test_parse_methods(text: str, expected: list[str]) -> None:
    assert parse_methods(text) == expected


@pytest.mark.parametrize("call, words", [
    (lambda: parse_methods("spar,unet++"), ["--methods", "unet++", "baseline"]),
    (lambda: parse_methods(" , "), ["--methods", "(empty)"]),
    (lambda: method("Spar"), ["--method", "'Spar'", "spar"]),
    (lambda: method("x", arg="--baseline"), ["--baseline"]),
])
def test_unknown_methods_are_named(call, words: list[str]) -> None:
    with pytest.raises(SparError) as info:
        call()
    assert all(w in str(info.value) for w in words)
