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


def test_production_code_importing_a_demo_tool_breaks_the_contract(tmp_path):
    shutil.copytree(ROOT / "memaudit", tmp_path / "memaudit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with (tmp_path / "memaudit" / "finetune" / "run.py").open("a") as module:
        module.write("import memaudit.tiny.pipeline  # noqa: E402, F401\n")
    done = _lint(tmp_path)
    assert done.returncode == 1
    assert "memaudit.finetune is not allowed to import memaudit.tiny" in done.stdout
    assert "memaudit.finetune.run -> memaudit.tiny.pipeline" in done.stdout
    assert "No cycles are allowed in memaudit" in done.stdout  # tiny imports finetune: a cycle too


def test_a_lower_layer_importing_a_higher_one_breaks_the_contract(tmp_path):
    shutil.copytree(ROOT / "memaudit", tmp_path / "memaudit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with (tmp_path / "memaudit" / "metrics" / "fid.py").open("a") as module:
        module.write("import memaudit.scan.judge  # noqa: E402, F401\n")
    done = _lint(tmp_path)
    assert done.returncode == 1
    assert "memaudit.metrics.fid -> memaudit.scan.judge" in done.stdout
