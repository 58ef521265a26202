"""The in-toto Statements memaudit signs: what a scan's and a remediation's name and claim."""

from __future__ import annotations

from memaudit.attest.statement import REMEDIATION_PREDICATE_TYPE, remediation_statement, scan_statement
from memaudit.checkpoint.files import sha256_file
from tests.results_fixtures import remediation_result, scan_result


def test_a_scan_statement_covers_every_checkpoint_file_and_the_given_reports(signed_scan):
    out = signed_scan[0]
    result = scan_result(out)
    statement = scan_statement(result, [out / "result.json"])
    digests = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert digests.pop("report/result.json") == sha256_file(out / "result.json")
    files = [*result.model.weight_files, *result.model.config_files]
    assert digests == {f"model/{w.path}": w.sha256 for w in files}
    assert {"model/model_index.json", "model/scheduler/scheduler_config.json"} <= set(digests)
    rules = statement["predicate"]["rules"]
    assert [r["id"] for r in rules] == [r.id for r in result.rules]


def test_a_remediation_statement_names_the_remediated_model_and_both_verdicts(signed_scan, tmp_path):
    out = signed_scan[0]
    result = remediation_result(scan_result(out))
    record = tmp_path / "mask.json"
    record.write_text("{}\n")
    statement = remediation_statement(result, [record])
    assert statement["predicateType"] == REMEDIATION_PREDICATE_TYPE
    names = [s["name"] for s in statement["subject"]]
    model = result.after.model
    assert names == [f"model/{w.path}" for w in [*model.weight_files, *model.config_files]] + ["report/mask.json"]
    assert statement["predicate"]["verdict"] == {"before": "fail", "after": "pass"}
    assert statement["predicate"]["mask"] == "101" and statement["predicate"]["space"] == "difffit"
