"""RemediationResult: the single source of truth of a remediation (remediation.json); its reports and
its attestation are views of it, as a scan's are of ScanResult."""

from __future__ import annotations

import json
from typing import Literal

from memaudit.results.frozen import Frozen
from memaudit.results.scan_result import ScanResult

REMEDIATION_SCHEMA_VERSION = "1.0"


class TrialRecord(Frozen):
    """One trial of the MemControl search (objectives are None for a trial that did not complete)."""

    number: int
    state: Literal["complete", "running", "waiting", "pruned", "fail"]
    space: str | None
    mask: str | None
    trainable_parameters: int | None
    memorization: float | None
    fid: float | None
    pareto: bool


class PolicyReference(Frozen):
    name: str
    sha256: str


class RemediationResult(Frozen):
    schema_version: str = REMEDIATION_SCHEMA_VERSION
    memaudit: str
    policy: PolicyReference
    space: str  # the PEFT method the chosen mask trains
    blocks: list[str]  # the mask's units (transformer blocks or attentions), in mask order
    mask: str  # one bit per unit
    chosen_trial: int | None  # None when the mask was given (--mask): no search ran
    trials: list[TrialRecord]
    trainable_parameters: int
    trainable_fraction: float
    remediated_model: str  # the folder of the retrained model
    before: ScanResult
    after: ScanResult

    @property
    def searched(self) -> bool:
        return self.chosen_trial is not None

    def to_json(self) -> str:
        """Canonical bytes: sorted keys, two-space indent, trailing newline."""
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
