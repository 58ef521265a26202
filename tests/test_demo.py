"""The embedded demo runs offline on the shipped models and its story holds."""

from __future__ import annotations

import json
from xml.etree import ElementTree

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
    # The gate: the hospital model failed, was remediated and the remediated model passes (exit 0);
    # the base passed and no search ran.
    assert "exit code of `memaudit scan MODEL --remediate-on-fail` a CI job would see: 0" in out
    remediated = tmp_path / "scan-hospital" / "remediation"
    remediation = json.loads((remediated / "remediation.json").read_text())
    assert (remediation["before"]["verdict"], remediation["after"]["verdict"]) == ("fail", "pass")
    assert remediation["before"] == hospital and remediation["chosen_trial"] is not None
    assert (remediated / "remediation.pdf").is_file() and (remediated / "before" / "result.json").is_file()
    assert not (tmp_path / "scan-base" / "remediation").exists()
    suites = ElementTree.parse(tmp_path / "scan-hospital" / "junit.xml").getroot().findall("testsuite")
    assert [int(suite.get("failures")) > 0 for suite in suites] == [True, False]
    assert "submitted model" in suites[0].get("name") and str(remediated) in suites[1].get("name")


def test_demo_names_a_models_folder_it_cannot_use(tmp_path, capsys):
    (tmp_path / "models" / "base").mkdir(parents=True)
    assert run(["demo", "--out", str(tmp_path / "out"), "--models", str(tmp_path / "models")]) == 2
    assert f"{tmp_path / 'models' / 'base'}" in capsys.readouterr().err
