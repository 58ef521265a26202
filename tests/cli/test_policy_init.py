"""`memaudit policy init`: a shipped policy fitted to a holdout, which `policy validate` accepts and whose
holdout needs `data check` then finds met."""

from __future__ import annotations

import json

import numpy as np
import pytest

from memaudit.cli import run
from memaudit.errors import ExitCode
from memaudit.metrics.calibration import minimum_holdout
from memaudit.paths import PROJECT_ROOT
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


def test_hours_fit_the_budgets_to_a_planned_scan_of_the_model(holdout, tiny_folder, tmp_path, capsys):
    images = list(np.random.default_rng(2).integers(0, 256, (40, 8, 8), dtype=np.uint8))
    train = write_dataset(tmp_path / "train", images, [f"study {i}" for i in range(40)], prefix="t")
    start = tmp_path / "ci-pixels.yaml"  # ci with an extractor that runs without downloaded weights
    start.write_text((PROJECT_ROOT / "policies" / "ci.yaml").read_text().replace("xrv-densenet121", "pixels"))
    argv = ["policy", "init", "--holdout", str(holdout), "--from", str(start), "--model", str(tiny_folder)]
    argv += ["--train", str(train)]
    roomy = tmp_path / "roomy.yaml"
    assert run([*argv, "--out", str(roomy), "--hours", "100"]) == ExitCode.OK
    text = roomy.read_text()
    assert "# Budgets fitted to 100 h on cpu" in text and "the policy's budgets fit as written" in text
    assert (
        load_policy(roomy).policy.checks.extraction.max_prompts
        == load_policy("ci").policy.checks.extraction.max_prompts
    )
    tight = tmp_path / "tight.yaml"
    assert run([*argv, "--out", str(tight), "--hours", "0.000001"]) == ExitCode.OK  # 3.6 ms: no scan fits
    assert "NOT met: even at the smallest budgets the scan plans" in tight.read_text()
    assert "not met: even at the smallest budgets" in capsys.readouterr().err
    assert run(["policy", "validate", str(tight)]) == ExitCode.OK
    untimed = tmp_path / "untimed.yaml"  # the shipped ci's extractor has no weights here: no time to fit
    assert run([*argv[:5], "ci", *argv[6:], "--out", str(untimed), "--hours", "1"]) == ExitCode.ERROR
    assert "cannot be timed on cpu: no cost for sample checks" in capsys.readouterr().err and not untimed.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--hours", "2"], "--hours fits the budgets to a planned scan: give --model and --train too"),
        (["--model", "m"], "--model and --train are read to fit the budgets: give --hours too"),
        (["--hours", "2", "--model", "m", "--train", "t", "--device", "tpu"], "--device"),
    ],
)
def test_budget_options_are_checked_before_any_work(holdout, tmp_path, capsys, extra, message):
    out = tmp_path / "policy.yaml"
    assert run(["policy", "init", "--holdout", str(holdout), "--out", str(out), *extra]) == ExitCode.ERROR
    assert message in capsys.readouterr().err and not out.exists()
