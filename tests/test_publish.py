"""Publishing: every file of a result written, signed only when a key is given, and put in place all at
once: a failure while writing leaves the output folder as it was, and a reused folder holds exactly the
new run's files."""

from __future__ import annotations

import errno
import json

import pytest

import memaudit.render.outputs as outputs
from memaudit.attest import verify_attestation
from memaudit.errors import MemauditError
from memaudit.publish import publish_remediation, publish_scan
from memaudit.results.remediation_result import RemediationResult
from memaudit.results.scan_result import RunRecord
from tests.results_fixtures import remediation_result, scan_result

SCAN_FILES = {"result.json", "run.json", "junit.xml", "report.html", "report.pdf", "model-card.md"}


def test_a_scan_is_published_unsigned_without_a_key(signed_scan, tmp_path):
    result = scan_result(signed_scan[0])
    published = publish_scan(result, RunRecord(seconds=1.0), tmp_path / "out")
    assert {path.name for path in published.files} == SCAN_FILES == {p.name for p in (tmp_path / "out").iterdir()}
    assert (tmp_path / "out" / "result.json").read_text() == result.to_json()
    assert published.others == [] and [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left


def test_a_published_and_signed_scan_verifies(signed_scan, tmp_path):
    out, model, keys, _ = signed_scan
    published = publish_scan(scan_result(out), RunRecord(), tmp_path / "out", sign_key=keys / "memaudit-signing.key")
    assert published.files[-1] == tmp_path / "out" / "attestation.dsse.json"
    report = verify_attestation(published.files[-1], keys / "memaudit-signing.pub", model=model)
    assert report.valid, report.problems


def _full_disk_after(files: int, monkeypatch) -> None:
    """Writing the reports fails with ENOSPC once ``files`` of them are written (what a full disk does)."""
    original, written = outputs.write_atomic, []

    def write(path, data):
        if len(written) == files:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(path)
        return original(path, data)

    monkeypatch.setattr(outputs, "write_atomic", write)


@pytest.mark.parametrize("files", [0, 2, 4])
def test_a_full_disk_leaves_a_new_out_folder_absent_and_names_it(files, signed_scan, tmp_path, monkeypatch):
    _full_disk_after(files, monkeypatch)
    out = tmp_path / "reports" / "out"
    with pytest.raises(MemauditError) as raised:
        publish_scan(scan_result(signed_scan[0]), RunRecord(), out)
    assert str(out) in str(raised.value) and "No space left on device" in str(raised.value)
    assert not out.exists() and list((tmp_path / "reports").iterdir()) == []  # no half-set, no staging folder


def test_a_full_disk_leaves_the_previous_runs_files_untouched(signed_scan, tmp_path, monkeypatch):
    previous, keys = signed_scan[0], signed_scan[2]
    out = tmp_path / "out"
    publish_scan(scan_result(previous), RunRecord(seconds=1.0), out, sign_key=keys / "memaudit-signing.key")
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    failing = scan_result(previous).model_copy(update={"verdict": "fail", "summary": "FAIL: a later run"})
    _full_disk_after(3, monkeypatch)
    with pytest.raises(MemauditError, match="holds what it held before"):
        publish_scan(failing, RunRecord(seconds=2.0), out)
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_reused_out_folder_holds_exactly_the_new_runs_files(signed_scan, tmp_path):
    previous, keys = signed_scan[0], signed_scan[2]
    out = tmp_path / "out"
    publish_scan(scan_result(previous), RunRecord(seconds=1.0), out, sign_key=keys / "memaudit-signing.key")
    (out / "notes.txt").write_text("the user's own")
    (out / "remediation").mkdir()  # an earlier gate's
    published = publish_scan(scan_result(previous), RunRecord(seconds=2.0), out)  # unsigned this time
    assert not (out / "attestation.dsse.json").exists()  # an earlier run's signature beside new files: removed
    assert json.loads((out / "run.json").read_text())["seconds"] == 2.0
    assert {p.name for p in out.iterdir()} == SCAN_FILES | {"notes.txt", "remediation"}
    assert published.others == [out / "notes.txt", out / "remediation"]  # named, not touched
    assert (out / "notes.txt").read_text() == "the user's own"


def test_a_remediation_is_published_as_its_result_and_its_report(signed_scan, tmp_path):
    out, _, keys, _ = signed_scan
    result = remediation_result(scan_result(out))
    mask = tmp_path / "out" / "mask.json"
    mask.parent.mkdir()
    mask.write_text("{}\n")
    published = publish_remediation(result, tmp_path / "out", records=[mask], sign_key=keys / "memaudit-signing.key")
    written = published.files
    assert [p.name for p in written] == [
        "remediation.json", "remediation.html", "remediation.pdf", "attestation.dsse.json"
    ]  # fmt: skip
    parsed = RemediationResult.model_validate_json((tmp_path / "out" / "remediation.json").read_text())
    assert parsed == result and json.loads(written[0].read_text())["schema_version"] == "1.0"
    html = written[1].read_text()
    assert "Before: FAIL" in html and "After: PASS" in html and "(trial 1 of 3)" in html
    assert verify_attestation(written[-1], keys / "memaudit-signing.pub").valid
    assert published.others == []  # mask.json is one of its records
