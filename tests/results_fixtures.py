"""Results built from a real scan's result.json, for tests of what consumes results (statements,
renderers, publishing) without running another scan."""

from __future__ import annotations

from pathlib import Path

from memaudit.results.remediation_result import PolicyReference, RemediationResult, TrialRecord
from memaudit.results.scan_result import ScanResult


def scan_result(out: Path) -> ScanResult:
    return ScanResult.model_validate_json((Path(out) / "result.json").read_text())


def remediation_result(scan: ScanResult) -> RemediationResult:
    """A remediation whose before-scan failed and whose after-scan passed (verdicts set by hand)."""
    trials = [
        TrialRecord(number=0, state="complete", space="svdiff", mask="111", trainable_parameters=90,
                    memorization=2.0, fid=5.0, pareto=True),
        TrialRecord(number=1, state="complete", space="difffit", mask="101", trainable_parameters=40,
                    memorization=1.0, fid=6.0, pareto=True),
        TrialRecord(number=2, state="fail", space=None, mask=None, trainable_parameters=None,
                    memorization=None, fid=None, pareto=False),
    ]  # fmt: skip
    return RemediationResult(
        memaudit="0.1.0",
        policy=PolicyReference(name=scan.policy.name, sha256=scan.policy.sha256),
        space="difffit",
        blocks=["down_blocks.0", "mid_block", "up_blocks.1"],
        mask="101",
        chosen_trial=1,
        trials=trials,
        trainable_parameters=40,
        trainable_fraction=40 / 800_000,
        remediated_model="out/remediated/model",
        before=scan.model_copy(update={"verdict": "fail"}),
        after=scan,
    )
