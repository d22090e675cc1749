"""``spar check``: summary and exit 0 on a valid dataset; one stderr line and exit 2 on a bad one."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import spar_core.cli as cli
from test_dataset import cut_in_half, image, write_dataset


@pytest.fixture
def check_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register only ``check``, so these tests do not depend on sibling sub-commands being importable."""
    monkeypatch.setattr(cli, "COMMANDS", ("check",))


def test_check_valid_dataset_prints_summary(tmp_path: Path, check_only, capsys) -> None:
    root = write_dataset(tmp_path / "knees")
    assert cli.main(["check", str(root)]) == 0
    out = capsys.readouterr().out
    assert "tiny knees" in out and "femur" in out and "12×10×6" in out
    assert out.strip().splitlines()[-1].startswith("OK: 3 cases valid")


def test_check_bad_dataset_exits_2_with_one_line(tmp_path: Path, check_only, capsys) -> None:
    root = write_dataset(tmp_path / "knees")
    cut_in_half(image(root))
    assert cli.main(["check", str(root)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("spar check: error: ") and str(image(root)) in lines[0]
    assert "Traceback" not in captured.err
    assert "OK:" not in captured.out


def test_check_help_mentions_the_layout(check_only, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["check", "--help"])
    assert info.value.code == 0
    assert "dataset.json" in capsys.readouterr().out


def test_python_m_spar_core_check_bad_dir(tmp_path: Path) -> None:
    missing = [n for n in cli.COMMANDS if importlib.util.find_spec(f"spar_core.cli.{n}") is None]
    if missing:
        pytest.skip(f"sub-command module(s) {missing} listed in spar_core.cli.COMMANDS do not exist yet")
    root = write_dataset(tmp_path / "knees")
    cut_in_half(image(root))
    proc = subprocess.run(
        [sys.executable, "-m", "spar_core", "check", str(root)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert str(image(root)) in proc.stderr
