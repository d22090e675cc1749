"""``spar --help`` answers at once: it lists every sub-command without importing one, nor torch."""

from __future__ import annotations

import importlib
import subprocess
import sys

from spar_core.cli.commands import COMMANDS

PROBE = """
import sys
from spar_core.cli import main
try:
    main({argv!r})
except SystemExit as exit:
    assert exit.code == 0, exit.code
print(sorted(m for m in sys.modules if m == "torch" or m.startswith("spar_core.cli.") or m == "pandas"))
"""


def _loaded(argv: list[str]) -> tuple[str, list[str]]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True, check=True)
    *help_lines, loaded = out.stdout.strip().splitlines()
    return "\n".join(help_lines), eval(loaded)


def test_top_level_help_imports_no_sub_command_and_no_torch() -> None:
    text, loaded = _loaded(["--help"])
    assert loaded == ["spar_core.cli.commands"]
    for name, _, _ in COMMANDS:
        assert name in text


def test_a_sub_command_imports_only_its_own_module() -> None:
    text, loaded = _loaded(["check", "--help"])
    assert "torch" not in loaded and "spar_core.cli.crossval" not in loaded and "spar_core.cli.check" in loaded
    assert "dataset.json" in text


def test_no_sub_command_help_imports_torch() -> None:
    for name, _, _ in COMMANDS:
        text, loaded = _loaded([name, "--help"])
        assert "torch" not in loaded and f"spar {name}" in text, name


def test_every_command_of_the_table_has_its_module_and_its_line() -> None:
    for name, module, text in COMMANDS:
        parser = importlib.import_module(f"spar_core.cli.{module}")
        assert callable(parser.register) and callable(parser.run) and text
    assert len({name for name, _, _ in COMMANDS}) == len(COMMANDS)
