"""Sharded scans: ranks take contiguous blocks and gather them in order; two CPU processes under torchrun
(gloo) write the same result.json as one process."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

import pytest

from memaudit.scan.shard import Shard, batch_unit, join_launch
from tests.scan.test_resume import POLICY, killed_when, write_scan_data


def test_ranks_take_contiguous_blocks_that_cover_everything_once():
    items = list(range(10))
    parts = [Shard(rank=rank, world=3).part(items) for rank in range(3)]
    assert parts == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    assert [Shard(rank=rank, world=4).bounds(2) for rank in range(4)] == [(0, 0), (0, 1), (1, 1), (1, 2)]
    assert Shard().part(items) == items and Shard().gather([1, 2]) == [1, 2]


def test_blocks_start_at_batch_boundaries_so_every_rank_runs_the_single_process_batches():
    # 10 prompts in units of 4: blocks [0, 4), [4, 8), [8, 10) over 3 ranks; over 2 ranks [0, 4), [4, 10).
    assert [Shard(rank=rank, world=3).bounds(10, unit=4) for rank in range(3)] == [(0, 4), (4, 8), (8, 10)]
    assert [Shard(rank=rank, world=2).bounds(10, unit=4) for rank in range(2)] == [(0, 4), (4, 10)]
    assert batch_unit((8, 3)) == 8  # 8 prompts x 3 samples = 3 batches of 8
    assert batch_unit((8, 2)) == 4 and batch_unit((8, 2), (32, 1)) == 32 and batch_unit((5, 10)) == 1


def test_outside_torchrun_the_shard_is_the_whole_scan(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert join_launch("cuda") == (Shard(), "cuda")


@pytest.mark.slow
def test_two_processes_write_the_single_process_result_byte_for_byte(tiny_folder, tmp_path):
    write_scan_data(tmp_path, train=24, holdout=10, seed=1)
    # 16 samples per prompt make the generated sample three chunks (10, 10 and 4 prompts: both ranks
    # make some), and re-triggering runs on whatever triage flags, split among the ranks by prompt.
    policy = POLICY.replace("generations_per_prompt: 1}", "generations_per_prompt: 16}")
    policy = policy.replace(
        "rules:",
        "  retrigger: {enabled: true, when: always, max_prompts: 4, scales: [0.1], ascent_radius: null}\nrules:",
    )
    policy = policy.replace("calibration_quantile: 0.9", "calibration_quantile: 0.5")  # flags several prompts
    policy = policy.replace("small_holdout: warn}", "small_holdout: warn, confidence: 0.5}")
    assert policy.count("16}") == 1 and "retrigger" in policy and "confidence: 0.5" in policy
    (tmp_path / "policy.yaml").write_text(policy)

    def scan(name):
        return ["scan", str(tiny_folder), "--train", str(tmp_path / "train"), "--holdout", str(tmp_path / "holdout"),
                "--policy", str(tmp_path / "policy.yaml"), "--out", str(tmp_path / name),
                "--feature-cache", str(tmp_path / f"cache-{name}")]  # fmt: skip

    # torchrun gives each rank one intra-op thread; CPU kernels split their sums by thread count, so the
    # single process gets one thread too (with two, results differ in the last digits).
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    run = functools.partial(subprocess.run, capture_output=True, text=True, env=env, timeout=900)
    single = run([sys.executable, "-m", "memaudit", *scan("single")])
    assert single.returncode in (0, 1), single.stderr
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    sharded = run([*launch, "-m", "memaudit", *scan("sharded")])
    assert sharded.returncode == single.returncode, sharded.stderr[-3000:]
    whole = (tmp_path / "single" / "result.json").read_bytes()
    assert (tmp_path / "sharded" / "result.json").read_bytes() == whole
    retriggered = json.loads(whole)["checks"]["retrigger"]["retrigger"]["prompts"]
    assert len(retriggered) == 4  # the first two by one rank, the last two by the other


@pytest.mark.slow
def test_a_sharded_scan_killed_halfway_resumes_in_one_process_with_the_same_result(tiny_folder, tmp_path):
    # A job pre-empted on two GPUs is often resumed on one. Units are named by their place in the scan
    # (prompt batches, prompts, sample chunks), not by rank, so one process reads back what two finished.
    write_scan_data(tmp_path, train=60, holdout=12, seed=0)
    (tmp_path / "policy.yaml").write_text(POLICY.replace("generations: 8,", "generations: 16,"))
    cache = tmp_path / "cache"

    def scan(out):
        return ["-m", "memaudit", "scan", str(tiny_folder), "--train", str(tmp_path / "train"),
                "--holdout", str(tmp_path / "holdout"), "--policy", str(tmp_path / "policy.yaml"),
                "--out", str(tmp_path / out), "--feature-cache", str(cache)]  # fmt: skip

    env = os.environ | {"OMP_NUM_THREADS": "1"}  # as in the test above: one thread per process everywhere
    run = functools.partial(subprocess.run, capture_output=True, text=True, env=env, timeout=900)
    whole = run([sys.executable, *scan("whole")])
    assert whole.returncode in (0, 1), whole.stderr[-3000:]
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    attacks = lambda: sorted(int(p.stem.split("-")[1]) for p in (cache / "scans").glob("*/attack-*.unit"))  # noqa: E731
    # rank 0 attacks prompts 0-29, rank 1 prompts 30-59: wait until both have finished some
    both = lambda: (found := attacks()) and found[0] < 30 <= found[-1] and len(found) >= 10  # noqa: E731
    assert killed_when([*launch, *scan("resumed")], until=both, env=env, timeout=600), "never caught both ranks"
    left = attacks()
    assert len(left) < 60 and not (tmp_path / "resumed" / "result.json").exists()
    (work,) = (cache / "scans").iterdir()
    assert any(path.name.startswith("triage-") for path in work.iterdir())
    resumed = run([sys.executable, *scan("resumed")])
    assert resumed.returncode == whole.returncode, resumed.stderr[-3000:]
    assert "resuming: " in resumed.stderr, resumed.stderr  # the log says the units were found
    assert (tmp_path / "resumed" / "result.json").read_bytes() == (tmp_path / "whole" / "result.json").read_bytes()
    assert not work.exists()  # finished: nothing left to resume
