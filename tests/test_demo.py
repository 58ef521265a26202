"""The embedded demo runs offline and its story holds."""

from __future__ import annotations

import json

from memaudit.cli import run


def test_demo_story(tmp_path, capsys):
    assert run(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "both load to the same model: yes" in out
    assert "demo story holds: yes" in out
    memorizer = json.loads((tmp_path / "scan-memorizer" / "result.json").read_text())
    clean = json.loads((tmp_path / "scan-tiny-model" / "result.json").read_text())
    assert memorizer["verdict"] == "fail" and clean["verdict"] == "pass"
    assert memorizer["checks"]["extraction"]["extraction"]["extracted_train_ids"] == [
        "train-000",
        "train-001",
        "train-002",
        "train-003",
    ]
    remediation = json.loads((tmp_path / "remediate" / "remediation.json").read_text())
    assert remediation["verdict"] == {"before": "fail", "after": "pass"}
    assert (tmp_path / "remediate" / "remediation.pdf").is_file()
