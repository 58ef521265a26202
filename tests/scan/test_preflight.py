"""The holdout-size check of preflight: prompts counted as the model reads them, patients for patient rules."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from memaudit.data import ImageCaptionDataset
from memaudit.errors import DataError
from memaudit.policy import load_policy
from memaudit.scan.preflight import check_holdout_size

POLICY = """
name: holdout-size
calibration: {{small_holdout: {small_holdout}}}
checks:
  noise_magnitude: {{enabled: {noise}, calibration_quantile: 0.9}}  # 29 holdout prompts at confidence 0.95
  extraction: {{enabled: false}}
  nearest_neighbour: {{enabled: false}}
  fid: {{enabled: false}}
  membership: {{enabled: {membership}}}
rules:
{rules}
"""
NOISE_RULE = "  noise-flags: {metric: noise_magnitude.flagged_fraction, at_most: 1.0}"
PATIENT_RULE = "  patient-tpr: {metric: membership.patient_tpr_at_1pct_fpr, at_most: 0.05}"
LONG = " ".join(["no acute cardiopulmonary process"] * 20)  # 80 tokens: the encoder reads 75 of them


def _policy(tmp_path, *, small_holdout="error", noise="true", membership="false", rules=NOISE_RULE):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(small_holdout=small_holdout, noise=noise, membership=membership, rules=rules))
    return load_policy(path).policy


def _holdout(tmp_path, captions: list[str], patients: list[str | None] | None = None) -> ImageCaptionDataset:
    folder = tmp_path / "holdout"
    folder.mkdir()
    Image.new("L", (8, 8)).save(folder / "study.png")
    patients = patients or [None] * len(captions)
    rows = [
        {"id": f"study-{k}", "file_name": "study.png", "text": caption} | ({"patient_id": patient} if patient else {})
        for k, (caption, patient) in enumerate(zip(captions, patients, strict=True))
    ]
    (folder / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return ImageCaptionDataset(folder)


def test_captions_the_tokenizer_cuts_to_one_prompt_count_once(tmp_path, tiny_pipeline):
    holdout, policy = _holdout(tmp_path, [f"{LONG} study {k}" for k in range(30)]), _policy(tmp_path)
    check_holdout_size(holdout, policy=policy, with_model=True)  # 30 distinct captions: enough for 29
    counted = (
        r"has 1 distinct prompts to the model \(30 distinct captions, 30 of them longer than the text encoder's 77 "
        r"tokens and truncated\).*needs at least 29"
    )
    with pytest.raises(DataError, match=counted):
        check_holdout_size(holdout, policy=policy, with_model=True, tokenizer=tiny_pipeline.tokenizer)
    warned = _policy(tmp_path, small_holdout="warn")
    check_holdout_size(holdout, policy=warned, with_model=True, tokenizer=tiny_pipeline.tokenizer)


def test_thirty_captions_the_tokenizer_keeps_apart_are_thirty_prompts(tmp_path, tiny_pipeline):
    holdout = _holdout(tmp_path, [f"study {k}" for k in range(30)])
    check_holdout_size(holdout, policy=_policy(tmp_path), with_model=True, tokenizer=tiny_pipeline.tokenizer)


def test_a_patient_rule_needs_enough_distinct_holdout_patients(tmp_path):
    holdout = _holdout(tmp_path, ["clear"] * 500, ["p-1"] * 500)
    policy = _policy(tmp_path, noise="false", membership="true", rules=PATIENT_RULE)
    counted = (
        r"holdout has 1 distinct patients \(in 500 studies\); policy holdout-size's rule patient-tpr .* at least 299"
    )
    with pytest.raises(DataError, match=counted):
        check_holdout_size(holdout, policy=policy, with_model=True)
    check_holdout_size(holdout, policy=policy, with_model=False)  # a folder of images: no membership
    study_rule = "  auc: {metric: membership.auc, at_most: 0.6}"  # no patient rule: patients are not counted
    check_holdout_size(
        holdout, policy=_policy(tmp_path, noise="false", membership="true", rules=study_rule), with_model=True
    )


def test_studies_without_patient_ids_give_a_patient_rule_no_patients(tmp_path):
    holdout = _holdout(tmp_path, ["clear"] * 400, ["p-1", None] * 200)
    policy = _policy(tmp_path, noise="false", membership="true", rules=PATIENT_RULE)
    with pytest.raises(DataError, match=r"has 0 patients to count \(200 of 400 studies name no patient_id\)"):
        check_holdout_size(holdout, policy=policy, with_model=True)


def test_a_small_holdout_the_policy_accepts_is_left_to_the_scan_to_warn(tmp_path):
    holdout = _holdout(tmp_path, ["clear"] * 10, ["p-1"] * 10)
    policy = _policy(tmp_path, small_holdout="warn", noise="false", membership="true", rules=PATIENT_RULE)
    check_holdout_size(holdout, policy=policy, with_model=True)
