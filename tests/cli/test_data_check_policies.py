"""`memaudit data check --holdout`: which shipped policies a holdout supports, and what each lacks, before any scan."""

from __future__ import annotations

import json

import numpy as np
import pytest

from memaudit.cli import run
from memaudit.errors import ExitCode
from tests.images import write_dataset


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """A train set of 20 and a holdout of 120 images (60 patients, 2 studies each, 100 distinct captions)."""
    root = tmp_path_factory.mktemp("data-check")
    rng = np.random.default_rng(0)
    images = list(rng.integers(0, 256, (140, 8, 8), dtype=np.uint8))
    write_dataset(root / "train", images[:20], [f"train {i}" for i in range(20)], prefix="t")
    write_dataset(root / "holdout", images[20:], [f"finding {i % 100}" for i in range(120)], prefix="h")
    for side in ("train", "holdout"):  # patient ids under the manifest's own name, two studies each
        rows = [json.loads(line) for line in (root / side / "metadata.jsonl").read_text().splitlines()]
        for index, row in enumerate(rows):
            row["subject_id"] = f"{side}{index // 2}"
        (root / side / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return root


def test_a_holdout_of_120_names_the_policies_it_supports_and_what_the_others_lack(sets, capsys):
    code = run(["data", "check", str(sets / "train"), "--holdout", str(sets / "holdout"), "--json",
                "--columns", "patient_id=subject_id"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == ExitCode.OK, err
    report = json.loads(out)
    assert report["holdout"]["patients"] == 60 and report["holdout"]["unique_captions"] == 100
    assert report["holdout"]["studies_per_patient"] == {"min": 2, "median": 2, "max": 2}
    support = {item["policy"]: item for item in report["policies"]}
    assert set(support) == {"ci", "demo", "hospital-release", "research"}
    assert support["demo"]["supported"]  # 3% quantiles: 99 values suffice
    for name in ("ci", "hospital-release", "research"):
        assert not support[name]["supported"]
    missing = {need["setting"]: (need["required"], need["missing"]) for need in support["hospital-release"]["needs"]}
    assert missing["checks.noise_magnitude.calibration_quantile"] == (299, 199)  # 100 distinct captions
    assert missing["checks.extraction.verify_quantile"] == (299, 179)  # 120 images
    assert missing["checks.nearest_neighbour.near_copy_quantile"] == (59, 0)  # 5%: 120 images suffice


def test_the_text_report_says_what_is_missing(sets, capsys):
    code = run(["data", "check", str(sets / "train"), "--holdout", str(sets / "holdout"), "--policy", "ci"])
    out = " ".join(capsys.readouterr().out.split())
    assert code == ExitCode.OK
    assert "policy ci: NOT supported (a scan stops)" in out
    assert "checks.extraction.verify_quantile (false-alarm share 0.01 at confidence 0.95) needs 299 images, has 120: " \
           "179 more" in out  # fmt: skip
    assert "demo" not in out  # only the policy asked for
    assert "train/holdout overlap: 0 patient(s), 0 image(s)" in out


def test_policy_without_holdout_exits_2_naming_the_option(sets, capsys):
    assert run(["data", "check", str(sets / "train"), "--policy", "ci"]) == ExitCode.ERROR
    assert "--policy checks what a policy needs from the holdout: give --holdout" in capsys.readouterr().err


def test_an_unknown_policy_exits_2_naming_it(sets, capsys):
    argv = ["data", "check", str(sets / "train"), "--holdout", str(sets / "holdout"), "--policy", "no-such-policy"]
    assert run(argv) == ExitCode.ERROR
    assert "no-such-policy" in capsys.readouterr().err
