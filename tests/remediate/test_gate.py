"""The gate in one command (`memaudit scan MODEL --remediate-on-fail --base BASE`) and `remediate` on a
model that needs none, on the tiny job. The demo test shows the fail -> remediate -> pass story on the
shipped models; here: exit codes, what is written, what is said, and the refused combinations."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from memaudit.cli import run
from memaudit.errors import ExitCode
from tests.remediate.conftest import POLICY, remediate_argv

# The tiny model memorizes nothing; a rule nothing meets makes its scan (and any retrain's) fail.
FAILING_POLICY = POLICY.replace(
    "rules:\n", "rules:\n  unreachable-quality: {metric: fid.fid, at_most: 0, severity: fail}\n"
).replace("name: remediation-test", "name: gate-test")


def _gate_argv(job, out, policy, *extra):
    root, model, train, holdout = job
    return [
        "scan", str(model), "--remediate-on-fail", "--base", str(model), "--train", str(train),
        "--holdout", str(holdout), "--policy", str(policy), "--out", str(out),
        "--feature-cache", str(root / "cache"), *map(str, extra),
    ]  # fmt: skip


def test_a_passing_model_passes_the_gate_without_a_search(job, tmp_path, capsys):
    out = tmp_path / "gate"
    assert run(_gate_argv(job, out, job[0] / "policy.yaml")) == ExitCode.OK
    assert json.loads((out / "result.json").read_text())["verdict"] == "pass"
    assert not (out / "remediation").exists()
    assert len(ElementTree.parse(out / "junit.xml").getroot().findall("testsuite")) == 1
    assert "FAILED" not in capsys.readouterr().out


def test_a_failing_model_is_remediated_and_the_release_judged_by_the_result(job, tmp_path, capsys):
    policy = tmp_path / "failing.yaml"
    policy.write_text(FAILING_POLICY)
    out = tmp_path / "gate"
    assert run(_gate_argv(job, out, policy)) == ExitCode.FINDING  # the remediated model fails the rule too
    said = capsys.readouterr().out
    submitted = json.loads((out / "result.json").read_text())
    assert submitted["verdict"] == "fail"
    remediation = json.loads((out / "remediation" / "remediation.json").read_text())
    assert remediation["before"] == submitted and remediation["after"]["verdict"] == "fail"
    assert remediation["chosen_trial"] is not None and remediation["trials"]
    assert (out / "remediation" / "before" / "result.json").read_text() == (out / "result.json").read_text()
    model = out / "remediation" / "remediated" / "model"
    assert remediation["remediated_model"] == str(model) and (model / "model_index.json").is_file()
    suites = ElementTree.parse(out / "junit.xml").getroot().findall("testsuite")
    assert [suite.get("name").split(": ")[1].split(" ")[0] for suite in suites] == ["submitted", "remediated"]
    assert str(model) in suites[1].get("name") and all(int(suite.get("failures")) == 1 for suite in suites)
    assert f"submitted model {job[1]} FAILED the policy" in said
    assert f"release verdict: FAIL for the remediated model {model}" in said


def test_remediate_stops_when_the_model_already_passes(job, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [arg for arg in remediate_argv(job, out) if arg != "--search-anyway"]
    assert run(argv) == ExitCode.OK
    assert "passes policy" in capsys.readouterr().out
    assert json.loads((out / "before" / "result.json").read_text())["verdict"] == "pass"
    assert not (out / "study.db").exists() and not (out / "remediated").exists()
    assert not (out / "remediation.json").exists()


def _error(capsys, argv) -> str:
    assert run(argv) == ExitCode.ERROR
    return capsys.readouterr().err


def test_gate_option_combinations_are_refused_before_any_work(job, tmp_path, capsys):
    _, model, train, holdout = job
    out = tmp_path / "never"
    plain = ["scan", str(model), "--train", str(train), "--holdout", str(holdout), "--policy", "ci", "--out", str(out)]
    assert "--remediate-on-fail needs --base" in _error(capsys, [*plain, "--remediate-on-fail"])
    audit = ["scan", "--images", str(holdout), "--train", str(train), "--holdout", str(holdout), "--policy", "ci"]
    assert "--images audits images, not a model" in _error(capsys, [*audit, "--out", str(out), "--base", str(model)])
    gate = [*plain, "--remediate-on-fail", "--base", str(model)]
    assert "does not take --seed" in _error(capsys, [*gate, "--seed", "3"])
    message = _error(capsys, [*gate, "--include-evidence-images", "--batch-size", "2"])
    assert "--batch-size" in message and "--include-evidence-images" in message
    assert not out.exists()


@pytest.fixture(scope="module")
def other_architecture(tmp_path_factory):
    """A tiny model of the same family with another block layout (two layers per block)."""
    from memaudit.checkpoint.saving import save_diffusers_folder
    from memaudit.tiny.pipeline import TinySDConfig, build_tiny_pipeline

    pipeline = build_tiny_pipeline(TinySDConfig(layers_per_block=2), seed=0)
    return save_diffusers_folder(pipeline, tmp_path_factory.mktemp("other") / "model")


def _never_scanned(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the model was scanned before the base was checked")

    monkeypatch.setattr("memaudit.remediate.gate.scan_model", refuse)
    monkeypatch.setattr("memaudit.remediate.run.scan_model", refuse)


@pytest.mark.parametrize("failing", [False, True])
def test_a_missing_base_is_refused_before_the_scan(failing, job, tmp_path, capsys, monkeypatch):
    policy = job[0] / "policy.yaml"
    if failing:
        policy = tmp_path / "failing.yaml"
        policy.write_text(FAILING_POLICY)
    _never_scanned(monkeypatch)
    argv = _gate_argv(job, tmp_path / "gate", policy)
    argv[argv.index("--base") + 1] = str(tmp_path / "MISSING")
    assert f"--base {tmp_path / 'MISSING'}: no such file or folder" in _error(capsys, argv)
    assert not (tmp_path / "gate").exists()


def test_a_base_of_another_block_layout_is_refused_before_the_scan(
    job, other_architecture, tmp_path, capsys, monkeypatch
):
    _never_scanned(monkeypatch)
    argv = _gate_argv(job, tmp_path / "gate", job[0] / "policy.yaml")
    argv[argv.index("--base") + 1] = str(other_architecture)
    message = _error(capsys, argv)
    assert f"--base {other_architecture} is not a base of the model {job[1]}" in message, message
    assert "transformer blocks" in message and not (tmp_path / "gate").exists()
    remediate = remediate_argv(job, tmp_path / "remediate")
    remediate[remediate.index("--base") + 1] = str(other_architecture)
    assert "is not a base of the model" in _error(capsys, remediate)  # `memaudit remediate` checks it first too
    assert not (tmp_path / "remediate").exists()


def test_a_failing_adapter_is_remediated_from_the_model_it_sits_on(job, tmp_path, capsys):
    """`scan BASE --adapter LORA --remediate-on-fail`: the fine-tune is BASE + LORA; without --base the
    remediation retrains from BASE, and the remediated model is whole (scanned without the adapter)."""
    from memaudit.checkpoint import load_checkpoint
    from tests.checkpoint.lora_files import write_lora

    root, model, train, holdout = job
    lora, _ = write_lora(load_checkpoint(model).pipeline, tmp_path / "lora")
    policy = tmp_path / "failing.yaml"
    policy.write_text(FAILING_POLICY)
    out = tmp_path / "gate"
    argv = [
        "scan", str(model), "--adapter", str(lora), "--adapter-scale", "0.5", "--remediate-on-fail",
        "--train", str(train), "--holdout", str(holdout), "--policy", str(policy), "--out", str(out),
        "--feature-cache", str(root / "cache"),
    ]  # fmt: skip
    assert run(argv) == ExitCode.FINDING, capsys.readouterr().err
    submitted = json.loads((out / "result.json").read_text())
    assert [(Path(a["path"]).name, a["scale"]) for a in submitted["model"]["adapters"]] == [(lora.name, 0.5)]
    remediation = json.loads((out / "remediation" / "remediation.json").read_text())
    assert remediation["before"] == submitted and remediation["after"]["model"]["adapters"] == []
    assert remediation["after"]["model"]["source"] == str(out / "remediation" / "remediated" / "model")
