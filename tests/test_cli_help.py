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


import pytest  # noqa: E402

from spar_core.cli import main  # noqa: E402


@pytest.mark.parametrize("argv, said", [
    (["crossval", "--dataset", "d", "--out", "o", "--chain-prior", "bogus"],
     "spar crossval: error: argument --chain-prior: invalid choice: 'bogus' (choose from 'level', 'position', "
     "'volume', 'none')"),
    (["predict", "RUN", "--method", "spar", "-i", "a", "-o", "b", "--postprocess", "every"],
     "spar predict: error: argument --postprocess: invalid choice: 'every'"),
    (["crossval", "--dataset", "d", "--out", "o", "--workers", "two"],
     "spar crossval: error: argument --workers: invalid int value: 'two'"),
    (["study", "robustness", "RUN", "--splits", "splits_final.json"], "error: unrecognized arguments: --splits"),
    (["crossval", "--out"], "spar crossval: error: argument --out: expected one argument"),
    (["transmogrify"], "spar: error: argument COMMAND: invalid choice: 'transmogrify'"),
])
def test_a_bad_flag_is_one_line_and_exit_2(argv: list[str], said: str, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and said in err and "usage:" not in err


def test_help_is_argparse_own(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["crossval", "--help"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith("usage: spar crossval")
