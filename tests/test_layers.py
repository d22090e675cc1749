"""The package's shape: stages import only lower stages, and the light modules stay free of torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "spar_core"

# Rank of each part of spar_core, in pipeline order: a module may import only parts of its rank or lower.
RANKS: dict[str, int] = {
    "errors": 0, "paths": 0, "progress": 0, "methods": 0, "__init__": 0,
    "data": 1,
    "layout": 2, "scoring": 2, "models": 2,
    "training": 3,
    "inference": 4,
    "postprocessing": 5,
    "evaluation": 6,
    "latent": 7,
    "triage": 8,
    "pipeline": 9,
    "runs": 10, "figures": 10,
    "cli": 11, "__main__": 11,
}
TORCH_FREE = ("spar_core.methods", "spar_core.paths", "spar_core.progress", "spar_core.layout.run_folder",
              "spar_core.evaluation.report", "spar_core.evaluation.significance", "spar_core.runs.jobs",
              "spar_core.data.checks", "spar_core.triage.ranking", "spar_core.layout.study_folder",
              "spar_core.postprocessing.settings", "spar_core.runs.lock", "spar_core.training.names",
              "spar_core.cli.commands", "spar_core.cli.options")


def _part(module: str) -> str:
    """The RANKS key of a dotted module name below spar_core: its folder (or the top-level module)."""
    part = module.removeprefix("spar_core.").split(".")[0]
    if part not in RANKS:
        raise AssertionError(f"{module}: not in RANKS; add its folder to tests/test_layers.py")
    return part


def _imports(path: Path) -> list[str]:
    """Every spar_core module a file imports, at the top or inside functions."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("spar_core.")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("spar_core"):
            if node.module == "spar_core":
                found += [f"spar_core.{a.name}" for a in node.names]
            else:
                found.append(node.module)
    return found


def _modules() -> list[tuple[str, Path]]:
    return [("spar_core." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts), p)
            for p in sorted(PACKAGE.rglob("*.py"))]


def test_no_stage_imports_a_later_one() -> None:
    wrong = []
    for module, path in _modules():
        own = RANKS[_part(module)]
        for imported in _imports(path):
            if imported == "spar_core":
                continue
            if RANKS[_part(imported)] > own:
                wrong.append(f"{module} ({_part(module)}) imports {imported} ({_part(imported)})")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("module", TORCH_FREE)
def test_light_modules_do_not_import_torch(module: str) -> None:
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", f"importing {module} pulls in torch"
