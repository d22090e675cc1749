"""The training choices a user names on the command line — presets and precisions — in a module that imports
nothing, so that ``spar <command> --help`` lists them without loading torch. The modules that define what each
name means (:mod:`~spar_core.training.presets`, :mod:`~spar_core.training.precision`) import them from here."""

from __future__ import annotations

PRESET_NAMES: tuple[str, ...] = ("paper", "cpu", "tiny", "cpu_fov")
DEFAULT_PRESET = "cpu"  # what a command trains with when no --preset is named: a laptop's CPU in minutes
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
