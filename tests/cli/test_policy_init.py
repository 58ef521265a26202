"""`memaudit policy init`: a shipped policy fitted to a holdout, which `policy validate` accepts and whose
holdout needs `data check` then finds met."""

from __future__ import annotations

import json

import numpy as np
import pytest

from memaudit.cli import run
from memaudit.errors import ExitCode
from memaudit.metrics.calibration import minimum_holdout
from memaudit.policy import load_policy
from memaudit.policy.initial import smallest_false_alarm
from tests.images import write_dataset


@pytest.fixture(scope="module")
def holdout(tmp_path_factory):
    """120 images, 100 distinct captions."""
    root = tmp_path_factory.mktemp("policy-init")
    images = list(np.random.default_rng(1).integers(0, 256, (120, 8, 8), dtype=np.uint8))
    return write_dataset(root / "holdout", images, [f"finding {i % 100}" for i in range(120)], prefix="h")


@pytest.mark.parametrize(("available", "confidence"), [(120, 0.95), (100, 0.95), (299, 0.95), (57, 0.99)])
def test_the_smallest_share_a_holdout_bounds_is_one_it_supports(available, confidence):
    share = smallest_false_alarm(available, confidence)
    assert minimum_holdout(share, confidence) <= available
    assert minimum_holdout(share - 0.0002, confidence) > available  # and not much smaller would do


def test_init_widens_only_what_the_holdout_cannot_support(holdout, tmp_path, capsys):
    out = tmp_path / "policy.yaml"
    assert run(["policy", "init", "--holdout", str(holdout), "--from", "ci", "--out", str(out)]) == ExitCode.OK
    text = out.read_text()
    assert text.startswith("# Written by `memaudit policy init` from the shipped policy 'ci'")
    assert "checks.extraction.verify_quantile: 0.01 -> 0.0247" in text
    policy = load_policy(out).policy
    assert policy.name == "ci-holdout"
    assert policy.checks.extraction.verify_quantile == 0.0247
    assert policy.checks.noise_magnitude.calibration_quantile == 0.9704  # 100 distinct captions bound 2.96%
    assert policy.checks.nearest_neighbour.near_copy_quantile == 0.05  # supported: kept
    assert policy.rules == load_policy("ci").policy.rules
    capsys.readouterr()
    assert run(["policy", "validate", str(out)]) == ExitCode.OK
    assert "valid policy 'ci-holdout'" in capsys.readouterr().out


def test_the_fitted_policy_is_supported_by_its_holdout(holdout, tmp_path, capsys):
    out = tmp_path / "policy.yaml"
    assert run(["policy", "init", "--holdout", str(holdout), "--out", str(out)]) == ExitCode.OK
    capsys.readouterr()
    train = write_dataset(tmp_path / "train", [np.zeros((8, 8), np.uint8)], ["x"], prefix="t")
    argv = ["data", "check", str(train), "--holdout", str(holdout), "--policy", str(out), "--json"]
    assert run(argv) == ExitCode.OK
    (support,) = json.loads(capsys.readouterr().out)["policies"]
    assert support["supported"], support


def test_init_refuses_an_existing_file_and_names_it(holdout, tmp_path, capsys):
    out = tmp_path / "policy.yaml"
    out.write_text("keep me")
    assert run(["policy", "init", "--holdout", str(holdout), "--out", str(out)]) == ExitCode.ERROR
    assert f"--out {out}: the file exists" in " ".join(capsys.readouterr().err.split())
    assert out.read_text() == "keep me"


def test_init_with_an_unknown_base_policy_names_it(holdout, tmp_path, capsys):
    argv = ["policy", "init", "--holdout", str(holdout), "--from", "no-such", "--out", str(tmp_path / "p.yaml")]
    assert run(argv) == ExitCode.ERROR
    assert "no-such" in capsys.readouterr().err
