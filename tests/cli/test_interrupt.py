"""Ctrl-C: a real SIGINT to a running `memaudit scan` exits 2 with a message saying how to go on, leaves
--out untouched and keeps the finished work, so the same command resumes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from memaudit.tiny.memorizer import build_memorizer
from tests.scan.test_resume import POLICY


@pytest.mark.slow
def test_sigint_exits_2_saying_rerun_to_resume(tiny_pipeline, tiny_folder, tmp_path):
    _, train, holdout, _ = build_memorizer(tiny_pipeline, tmp_path / "data", planted=3, generic=6, holdout=8)
    (tmp_path / "policy.yaml").write_text(POLICY.replace("generations: 8,", "generations: 16,"))
    cache, out = tmp_path / "cache", tmp_path / "out"
    argv = [sys.executable, "-m", "memaudit", "scan", str(tiny_folder), "--train", str(train),
            "--holdout", str(holdout), "--policy", str(tmp_path / "policy.yaml"), "--out", str(out),
            "--feature-cache", str(cache)]  # fmt: skip
    scan = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    units = lambda: list(cache.glob("scans/*/*"))  # noqa: E731
    deadline = time.monotonic() + 300
    while not units() and scan.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert scan.poll() is None, "the scan ended before it could be interrupted"
    scan.send_signal(signal.SIGINT)
    _, err = scan.communicate(timeout=120)
    assert scan.returncode == 2, err
    assert err.rstrip().endswith("memaudit: error: interrupted; rerun the same command to resume"), err
    assert "Traceback" not in err and not out.exists()
    assert units()  # the finished work stays for the rerun
