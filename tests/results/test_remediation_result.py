"""RemediationResult: canonical JSON that reads back to the same result."""

from __future__ import annotations

import json

from memaudit.results.remediation_result import REMEDIATION_SCHEMA_VERSION, RemediationResult
from tests.results_fixtures import remediation_result, scan_result


def test_remediation_json_is_canonical_and_reads_back(signed_scan):
    result = remediation_result(scan_result(signed_scan[0]))
    text = result.to_json()
    assert text.endswith("}\n") and json.loads(text)["schema_version"] == REMEDIATION_SCHEMA_VERSION
    assert list(json.loads(text)) == sorted(json.loads(text))
    assert RemediationResult.model_validate_json(text) == result
    assert result.searched and not result.model_copy(update={"chosen_trial": None}).searched
