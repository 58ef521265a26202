"""The benchmark scripts still run (smoke run at small sizes; their figures are printed, not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.mark.slow
def test_scan_benchmark_runs_quick():
    result = subprocess.run(
        [sys.executable, str(BENCH / "scan_bench.py"), "--quick"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("speed-up") == 4


def test_peft_counts_script_prints_every_method():
    result = subprocess.run(
        [sys.executable, str(BENCH / "peft_counts.py")], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert "859,520,964 parameters" in result.stdout
    for method in ("full", "svdiff", "difffit", "attention", "lora"):
        assert f"  {method}" in result.stdout
    assert "memcontrol-sd15 preset (22 of 32 attentions)    66,816" in result.stdout
