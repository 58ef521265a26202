"""Judging check outcomes: statuses, fail-closed errors, and the verdict."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

from memaudit.policy import Policy
from memaudit.render import junit_xml
from memaudit.results.scan_result import CheckOutcome
from memaudit.scan.judge import judge

POLICY = Policy.model_validate(
    {
        "name": "p",
        "checks": {"nearest_neighbour": {"extractor": "pixels"}},
        "rules": {
            "extracted": {"metric": "extraction.extracted_count", "at_most": 0},
            "amd": {"metric": "nearest_neighbour.amd", "at_least": 0.05, "severity": "warn"},
        },
    }
)


def _ok(**metrics):
    return CheckOutcome(status="ok", required=True, metrics=metrics)


def test_pass_warn_and_fail():
    verdict, rules, summary = judge(
        POLICY,
        {
            "extraction": _ok(**{"extraction.extracted_count": 0.0}),
            "nearest_neighbour": _ok(**{"nearest_neighbour.amd": 0.01}),
        },
    )
    assert verdict == "pass" and [r.status for r in rules] == ["pass", "warn"]
    assert summary == "PASSED: all 2 rules hold; warnings: amd"
    verdict, rules, summary = judge(
        POLICY,
        {
            "extraction": _ok(**{"extraction.extracted_count": 3.0}),
            "nearest_neighbour": _ok(**{"nearest_neighbour.amd": 0.2}),
        },
    )
    assert verdict == "fail" and rules[0].message == "3 violates <= 0 by 3"
    assert summary.startswith("FAILED: 1 of 2 rules violated (extracted)")


def test_a_required_check_that_could_not_run_is_an_error_never_a_pass():
    broken = CheckOutcome(status="error", required=True, message="no weights")
    verdict, rules, _ = judge(
        POLICY, {"extraction": _ok(**{"extraction.extracted_count": 0.0}), "nearest_neighbour": broken}
    )
    assert verdict == "error" and rules[1].status == "error" and "no weights" in rules[1].message


def test_an_optional_check_that_could_not_run_warns():
    broken = CheckOutcome(status="error", required=False, message="no weights")
    verdict, rules, _ = judge(
        POLICY, {"extraction": _ok(**{"extraction.extracted_count": 0.0}), "nearest_neighbour": broken}
    )
    assert verdict == "pass" and rules[1].status == "warn"


def test_junit_has_one_case_per_rule():
    from memaudit.results.scan_result import DatasetRecord, Environment, PolicyRecord, ScanResult

    checks = {
        "extraction": _ok(**{"extraction.extracted_count": 2.0}),
        "nearest_neighbour": CheckOutcome(status="error", required=True, message="x"),
    }
    verdict, rules, summary = judge(POLICY, checks)
    record = DatasetRecord(source="d", digest="0" * 64, items=1)
    result = ScanResult(
        mode="model",
        verdict=verdict,
        summary=summary,
        policy=PolicyRecord(name="p", file="p.yaml", sha256="0" * 64, content={}, overrides={}),
        model=None,
        generated_images=None,
        train=record,
        holdout=record,
        checks=checks,
        rules=rules,
        environment=Environment(memaudit="0", python="3", torch="t", diffusers="d", transformers="t", device="cpu"),
    )
    root = ElementTree.fromstring(junit_xml(result).split("\n", 1)[1])
    cases = root.findall(".//testcase")
    assert [c.get("name") for c in cases] == ["extracted", "amd"]
    assert cases[0].find("failure") is not None and cases[1].find("error") is not None
    assert root.find("testsuite").get("failures") == "1" and root.find("testsuite").get("errors") == "1"


RATE_POLICY = Policy.model_validate(
    {
        "name": "rates",
        "checks": {"nearest_neighbour": {"extractor": "pixels"}},
        "rules": {"near-copies": {"metric": "nearest_neighbour.near_copy_rate", "at_most": 0.10}},
    }
)


def _rate(count: int, samples: int) -> dict[str, CheckOutcome]:
    outcome = CheckOutcome(
        status="ok",
        required=True,
        metrics={"nearest_neighbour.near_copy_rate": count / samples, "nearest_neighbour.amd": 0.1},
        sample_sizes={"nearest_neighbour.near_copy_rate": samples},
    )
    return {"nearest_neighbour": outcome}


def test_a_rate_above_its_threshold_by_chance_passes_and_says_on_how_many_samples():
    from scipy.stats import binom

    verdict, (rule,), _ = judge(RATE_POLICY, _rate(5, 24))  # 0.21 > 0.10, but 5 of 24 happens by chance
    assert verdict == "pass" and rule.samples == 24
    assert rule.p_value == pytest.approx(binom.sf(4, 24, 0.10))  # reference: scipy
    assert "5 of 24" in rule.message and "within chance" in rule.message


def test_a_rate_significantly_above_its_threshold_fails():
    verdict, (rule,), _ = judge(RATE_POLICY, _rate(9, 24))
    assert verdict == "fail" and rule.p_value <= 0.01 and "significant" in rule.message
    verdict, (rule,), _ = judge(RATE_POLICY, _rate(40, 200))  # 0.20 on a larger sample: significant
    assert verdict == "fail"


def test_a_rate_within_its_threshold_passes_without_a_test():
    verdict, (rule,), _ = judge(RATE_POLICY, _rate(2, 24))
    assert verdict == "pass" and rule.p_value is None


def test_calibration_warnings_reach_the_summary():
    outcomes = _rate(0, 24)
    outcomes["nearest_neighbour"] = outcomes["nearest_neighbour"].model_copy(
        update={"warnings": ["the near-copy tau rests on 24 holdout values"]}
    )
    _, _, summary = judge(RATE_POLICY, outcomes)
    assert summary.endswith("; calibration warning: the near-copy tau rests on 24 holdout values")
