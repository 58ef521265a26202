"""The layer contract (import-linter, pyproject.toml) holds, and a layer broken on purpose is caught."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(root: Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=environment, capture_output=True, text=True, timeout=300
    )


def test_the_package_keeps_every_contract():
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 3 kept, 0 broken." in done.stdout


def _lint_with_an_import(root, *, module: str, imported: str) -> subprocess.CompletedProcess:
    """Lint a copy of the package in which ``module`` also imports ``imported``."""
    shutil.copytree(ROOT / "memaudit", root / "memaudit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root)
    with (root / "memaudit" / module).open("a") as source:
        source.write(f"import {imported}  # noqa: E402, F401\n")
    return _lint(root)


def test_production_code_importing_a_demo_tool_breaks_the_contract(tmp_path):
    done = _lint_with_an_import(tmp_path, module="finetune/run.py", imported="memaudit.tiny.pipeline")
    assert done.returncode == 1
    assert "memaudit.finetune is not allowed to import memaudit.tiny" in done.stdout
    assert "memaudit.finetune.run -> memaudit.tiny.pipeline" in done.stdout
    assert "No cycles are allowed in memaudit" in done.stdout  # tiny imports finetune: a cycle too


def test_a_lower_layer_importing_a_higher_one_breaks_the_contract(tmp_path):
    done = _lint_with_an_import(tmp_path, module="metrics/fid.py", imported="memaudit.scan.judge")
    assert done.returncode == 1
    assert "memaudit.metrics.fid -> memaudit.scan.judge" in done.stdout
