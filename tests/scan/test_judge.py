"""Judging check outcomes: statuses, fail-closed errors, and the verdict."""

from __future__ import annotations

from xml.etree import ElementTree

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
