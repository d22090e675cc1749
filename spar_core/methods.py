"""The four methods as facts: key, name in the paper, colour, and what each one needs.

Torch-free and light, so that reports, figures, the command line and the app name, order and colour the methods
without importing the networks. The regularizer classes (:mod:`spar_core.training.regularizers`) implement
them and take their ``info`` from here; adding a fifth method adds one entry below and one class there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from spar_core.errors import SparError


@dataclass(frozen=True)
class Method:
    """What the rest of the system needs to know about a method without building it."""

    key: str  # used on the command line, in run folders and in metrics.csv
    display: str  # name in tables and figures, as in the paper
    color: str  # fixed, so a method keeps its colour whichever others are shown
    reg_term: str  # L_reg, as tables and notebooks print it
    needs_shape_encoder: bool  # uses the fold's frozen shape encoder F
    has_discriminator: bool  # trains a discriminator of its own
    regularized: bool  # its segmenter loss has a λ·L_reg term


# Colours: Paul Tol's "bright" scheme, colour-blind friendly and apart from the structure palette of the slices.
METHODS: dict[str, Method] = {m.key: m for m in (
    Method("baseline", "Base. UNet", "#4477AA", "none", False, False, False),
    Method("adversarial", "Adv. Reg.", "#EE6677", "−log D_mask(ŷ)", False, True, True),
    Method("shape", "Sh. Reg.", "#228833", "‖F(ŷ) − F(y)‖²", True, False, True),
    Method("spar", "SPAR", "#CCBB44", "−log D(F(ŷ))", True, True, True),
)}
BASELINE = "baseline"  # what every other method is compared with
SPAR = "spar"  # the method whose code discriminator the triage asks how plausible a shape is
# Colours of keys that are not methods (a run written by another version), in order of first appearance.
EXTRA_COLORS: tuple[str, ...] = ("#66CCEE", "#AA3377", "#BBBBBB")


def method(key: str, arg: str = "--method") -> Method:
    """The method called ``key``.

    Raises:
        SparError: unknown key; the message names ``arg`` and lists the valid keys.
    """
    try:
        return METHODS[key]
    except KeyError:
        raise SparError(f"{arg}: unknown method {key!r}; expected one of {', '.join(METHODS)}") from None


def parse_methods(text: str, arg: str = "--methods") -> list[str]:
    """``all`` or a comma-separated list of method keys, validated, in the order given."""
    if text.strip() == "all":
        return list(METHODS)
    keys = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in METHODS]
    if unknown or not keys:
        raise SparError(f"{arg}: unknown {', '.join(unknown) or '(empty)'}; expected 'all' or a comma-separated "
                        f"list of {', '.join(METHODS)}")
    return keys


def display_name(key: str) -> str:
    """The paper's name of a method ("SPAR"), or the key itself when it is not a method."""
    found = METHODS.get(key)
    return found.display if found is not None else key


def method_order(keys: Sequence[str]) -> list[str]:
    """Registry order (baseline, adversarial, shape, spar), then unknown keys alphabetically."""
    present = set(keys)
    return [k for k in METHODS if k in present] + sorted(present - set(METHODS))


def method_colors(keys: Sequence[str]) -> dict[str, str]:
    """Key -> colour: each method's own, unknown keys from ``EXTRA_COLORS`` in sorted order."""
    extra = sorted(set(keys) - set(METHODS))
    return {k: METHODS[k].color if k in METHODS else EXTRA_COLORS[extra.index(k) % len(EXTRA_COLORS)]
            for k in keys}
