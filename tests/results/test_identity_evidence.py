"""Re-identification evidence read back from results earlier 2.11 versions wrote."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from memaudit.results.identity_evidence import ReidentificationEvidence

EVIDENCE = {
    "verifier": "verifier",
    "verifier_sha256": "0" * 64,
    "architecture": "small-cnn",
    "input_side": 32,
    "top_k": 5,
    "family_false_alarm": 0.01,
    "images_scored": 2,
    "holdout_images": 3,
    "training_patients": 4,
    "identification": "conformal p-values only",
    "image_distances": [0.4, 0.5],
    "holdout_distances": [0.3, 0.6, 0.7],
    "patients": [],
    "count_tested": 1,
}


@pytest.mark.parametrize("null", ["base", "holdout", None])
def test_an_early_2_11_count_null_is_read_and_not_kept(null):
    evidence = ReidentificationEvidence.model_validate(EVIDENCE | {"count_null": null})
    assert evidence == ReidentificationEvidence.model_validate(EVIDENCE)
    assert "count_null" not in evidence.model_dump()


def test_other_unknown_keys_are_still_refused():
    with pytest.raises(ValidationError, match="extra"):
        ReidentificationEvidence.model_validate(EVIDENCE | {"count_nul": "base"})
