"""The battery on models whose answer is known: a planted memorizer, and a non-memorizing tiny model."""

from __future__ import annotations

import json

import pytest

from memaudit.cli import run
from memaudit.errors import ExitCode
from memaudit.scan import ScanRequest, run_scan
from memaudit.tiny.memorizer import build_memorizer

# Exact memorization needs the conditional prediction alone (guidance 1); CFG dynamics on trained
# models are the demo benchmark's job. The pixels extractor needs no weights.
POLICY = """
name: ground-truth
sampling: {seed: 0, scheduler: ddim, num_inference_steps: 10, guidance_scale: 1.0, batch_size: 16}
calibration: {small_holdout: warn}
checks:
  noise_magnitude: {steps: 1, generations: 2, calibration_quantile: 0.99}
  extraction: {generations: 12, prompts: triage, random_prompts: 3, verify_quantile: 0.01}
  nearest_neighbour: {extractor: pixels, generations_per_prompt: 2, near_copy_quantile: 0.05}
  fid: {required: true}
rules:
  no-extracted-images: {metric: extraction.extracted_count, at_most: 0, severity: fail}
  noise-flags: {metric: noise_magnitude.flagged_fraction, at_most: 0.01, severity: warn}
  near-copy-rate: {metric: nearest_neighbour.near_copy_rate, at_most: 0.5, severity: warn}
  fid: {metric: fid.fid, at_most: 1000000, severity: warn}
"""


@pytest.fixture(scope="module")
def memorizer(tiny_pipeline, tmp_path_factory):
    root = tmp_path_factory.mktemp("memorizer")
    (root / "policy.yaml").write_text(POLICY)
    checkpoint, train, holdout, planted_ids = build_memorizer(tiny_pipeline, root)
    return checkpoint, train, holdout, planted_ids, root / "policy.yaml"


@pytest.fixture(scope="module")
def memorizer_result(memorizer):
    checkpoint, train, holdout, _, policy = memorizer
    request = ScanRequest(train=train, holdout=holdout, policy=policy, model=checkpoint.source)
    return run_scan(request, checkpoint=checkpoint)


def test_flags_exactly_the_planted_prompts(memorizer, memorizer_result):
    planted_ids = memorizer[3]
    evidence = memorizer_result.checks["noise_magnitude"].noise_magnitude
    assert sorted(evidence.flagged_item_ids) == sorted(planted_ids)


def test_extracts_exactly_the_planted_training_images(memorizer, memorizer_result):
    planted_ids = memorizer[3]
    extraction = memorizer_result.checks["extraction"].extraction
    assert extraction.extracted_train_ids == sorted(planted_ids)
    for attacked in extraction.attacked:
        assert attacked.extracted == (attacked.reason == "flagged")
        if attacked.extracted:
            assert attacked.clique_size == 12 and attacked.item_ids == [attacked.nearest_train_id]
    assert {a.reason for a in extraction.attacked} == {"flagged", "sampled"}


def test_memorizer_fails_the_policy(memorizer_result):
    assert memorizer_result.verdict == "fail"
    rule = next(r for r in memorizer_result.rules if r.id == "no-extracted-images")
    assert rule.status == "fail" and rule.value == 4.0 and "by 4" in rule.message


def test_result_has_no_captions(memorizer_result):
    text = memorizer_result.to_json()
    assert "planted patient" not in text and "pleural" not in text and "holdout patient" not in text


def test_same_inputs_and_seed_give_identical_bytes(memorizer, memorizer_result):
    checkpoint, train, holdout, _, policy = memorizer
    again = run_scan(
        ScanRequest(train=train, holdout=holdout, policy=policy, model=checkpoint.source), checkpoint=checkpoint
    )
    assert again.to_json() == memorizer_result.to_json()


def test_cli_scan_exits_1_on_the_memorizer(memorizer, tmp_path, monkeypatch, capsys):
    checkpoint, train, holdout, planted_ids, policy = memorizer
    monkeypatch.setattr("memaudit.scan.run.load_checkpoint", lambda *args, **kwargs: checkpoint)
    out = tmp_path / "out"
    code = run(
        [
            "scan",
            "memorizer",
            "--train",
            str(train),
            "--holdout",
            str(holdout),
            "--policy",
            str(policy),
            "--out",
            str(out),
            "--feature-cache",
            str(tmp_path / "cache"),
        ]
    )
    assert code == ExitCode.FINDING
    result = json.loads((out / "result.json").read_text())
    assert result["checks"]["extraction"]["extraction"]["extracted_train_ids"] == sorted(planted_ids)
    junit = (out / "junit.xml").read_text()
    assert junit.count("<testcase") == 4 and junit.count("<failure") == 1
    assert "FAILED" in capsys.readouterr().out


def test_a_smaller_comparison_side_extracts_the_same_images(memorizer, memorizer_result, tmp_path):
    checkpoint, train, holdout, planted_ids, policy = memorizer
    halved = tmp_path / "halved.yaml"
    halved.write_text(policy.read_text().replace("extraction: {", "extraction: {comparison_side: 8, "))
    request = ScanRequest(train=train, holdout=holdout, policy=halved, model=checkpoint.source)
    result = run_scan(request, checkpoint=checkpoint)
    extraction = result.checks["extraction"].extraction
    assert extraction.extracted_train_ids == sorted(planted_ids)
    assert len(extraction.attacked) == len(memorizer_result.checks["extraction"].extraction.attacked)
