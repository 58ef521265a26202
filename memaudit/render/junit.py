"""JUnit XML for CI: one test case per policy rule (fail -> failure, error -> error, warn -> passed, noted)."""

from __future__ import annotations

from xml.etree import ElementTree

from memaudit.results.scan_result import RunRecord, ScanResult


def _suite(result: ScanResult, name: str) -> ElementTree.Element:
    suite = ElementTree.Element(
        "testsuite",
        name=name,
        tests=str(len(result.rules)),
        failures=str(sum(rule.status == "fail" for rule in result.rules)),
        errors=str(sum(rule.status == "error" for rule in result.rules)),
        skipped="0",
    )
    for rule in result.rules:
        case = ElementTree.SubElement(suite, "testcase", classname=f"memaudit.{result.policy.name}", name=rule.id)
        text = f"{rule.metric}: {rule.message}"
        if rule.status == "fail":
            ElementTree.SubElement(case, "failure", message=text, type="policy-violation").text = rule.description
        elif rule.status == "error":
            ElementTree.SubElement(case, "error", message=text, type="not-measured").text = rule.description
        else:
            ElementTree.SubElement(case, "system-out").text = f"{rule.status}: {text}"
    return suite


def _document(suites: list[ElementTree.Element]) -> str:
    root = ElementTree.Element(
        "testsuites",
        name="memaudit",
        tests=str(sum(int(suite.get("tests")) for suite in suites)),
        failures=str(sum(int(suite.get("failures")) for suite in suites)),
        errors=str(sum(int(suite.get("errors")) for suite in suites)),
    )
    root.extend(suites)
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="unicode") + "\n"


def junit_xml(result: ScanResult, run: RunRecord | None = None) -> str:
    return _document([_suite(result, f"memaudit policy {result.policy.name}")])


def gate_junit_xml(submitted: ScanResult, remediated: ScanResult, remediated_model: str) -> str:
    """The gate's JUnit: the submitted model's rules (it failed) and the remediated model's, named by path."""
    policy = submitted.policy.name
    return _document(
        [
            _suite(submitted, f"memaudit policy {policy}: submitted model {submitted.model.source}"),
            _suite(remediated, f"memaudit policy {policy}: remediated model {remediated_model}"),
        ]
    )
