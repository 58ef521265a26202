"""Publishing: every file of a result written, and signed only when a key is given."""

from __future__ import annotations

import json

from memaudit.attest import verify_attestation
from memaudit.publish import publish_remediation, publish_scan
from memaudit.results.remediation_result import RemediationResult
from memaudit.results.scan_result import RunRecord
from tests.results_fixtures import remediation_result, scan_result

SCAN_FILES = {"result.json", "run.json", "junit.xml", "report.html", "report.pdf", "model-card.md"}


def test_a_scan_is_published_unsigned_without_a_key(signed_scan, tmp_path):
    result = scan_result(signed_scan[0])
    written = publish_scan(result, RunRecord(seconds=1.0), tmp_path / "out")
    assert {path.name for path in written} == SCAN_FILES == {p.name for p in (tmp_path / "out").iterdir()}
    assert (tmp_path / "out" / "result.json").read_text() == result.to_json()


def test_a_published_and_signed_scan_verifies(signed_scan, tmp_path):
    out, model, keys, _ = signed_scan
    written = publish_scan(
        scan_result(out), RunRecord(), tmp_path / "out", sign_key=keys / "memaudit-signing.key"
    )
    assert written[-1].name == "attestation.dsse.json"
    report = verify_attestation(written[-1], keys / "memaudit-signing.pub", model=model)
    assert report.valid, report.problems


def test_a_remediation_is_published_as_its_result_and_its_report(signed_scan, tmp_path):
    out, _, keys, _ = signed_scan
    result = remediation_result(scan_result(out))
    mask = tmp_path / "out" / "mask.json"
    mask.parent.mkdir()
    mask.write_text("{}\n")
    written = publish_remediation(result, tmp_path / "out", records=[mask], sign_key=keys / "memaudit-signing.key")
    assert [p.name for p in written] == [
        "remediation.json", "remediation.html", "remediation.pdf", "attestation.dsse.json"
    ]  # fmt: skip
    parsed = RemediationResult.model_validate_json((tmp_path / "out" / "remediation.json").read_text())
    assert parsed == result and json.loads(written[0].read_text())["schema_version"] == "1.0"
    html = written[1].read_text()
    assert "Before: FAIL" in html and "After: PASS" in html and "(trial 1 of 3)" in html
    assert verify_attestation(written[-1], keys / "memaudit-signing.pub").valid
