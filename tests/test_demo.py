"""The embedded demo runs offline on the shipped models and its story holds."""

from __future__ import annotations

import json

import pytest

from memaudit.cli import run


@pytest.mark.slow
def test_demo_story(tmp_path, capsys):
    assert run(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "loads to the same model: yes" in out
    assert "demo story holds: yes" in out
    hospital = json.loads((tmp_path / "scan-hospital" / "result.json").read_text())
    base = json.loads((tmp_path / "scan-base" / "result.json").read_text())
    assert hospital["verdict"] == "fail" and base["verdict"] == "pass"
    planted = set(json.loads((tmp_path / "data" / "ground_truth.json").read_text())["planted_ids"])
    extracted = hospital["checks"]["extraction"]["extraction"]["extracted_train_ids"]
    assert extracted and set(extracted) <= planted
    remediation = json.loads((tmp_path / "remediate" / "remediation.json").read_text())
    assert remediation["verdict"] == {"before": "fail", "after": "pass"}
    assert (tmp_path / "remediate" / "remediation.pdf").is_file()
    assert (tmp_path / "remediate" / "before" / "result.json").is_file()


def test_demo_names_a_models_folder_it_cannot_use(tmp_path, capsys):
    (tmp_path / "models" / "base").mkdir(parents=True)
    assert run(["demo", "--out", str(tmp_path / "out"), "--models", str(tmp_path / "models")]) == 2
    assert f"{tmp_path / 'models' / 'base'}" in capsys.readouterr().err
