"""JUnit XML for CI: one test case per policy rule (fail -> failure, error -> error, warn -> passed, noted)."""

from __future__ import annotations

from xml.etree import ElementTree

from memaudit.scan.result import ScanResult


def junit_xml(result: ScanResult) -> str:
    failures = sum(rule.status == "fail" for rule in result.rules)
    errors = sum(rule.status == "error" for rule in result.rules)
    suite = ElementTree.Element(
        "testsuite",
        name=f"memaudit policy {result.policy.name}",
        tests=str(len(result.rules)),
        failures=str(failures),
        errors=str(errors),
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
    suites = ElementTree.Element(
        "testsuites", name="memaudit", tests=suite.get("tests"), failures=str(failures), errors=str(errors)
    )
    suites.append(suite)
    ElementTree.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(suites, encoding="unicode") + "\n"
