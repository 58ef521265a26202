"""The gate in one step: scan the submitted model; if it fails the policy, remediate it (MemControl),
re-scan, and judge the release by the remediated model, recording that the submitted one failed."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from memaudit.atomic_files import write_atomic
from memaudit.checkpoint import Checkpoint
from memaudit.publish import publish_scan
from memaudit.remediate.request import RemediateRequest
from memaudit.remediate.run import remediate, scan_model
from memaudit.render.junit import gate_junit_xml
from memaudit.results.remediation_result import RemediationResult
from memaudit.results.scan_result import ScanResult, Verdict
from memaudit.scan.progress import Progress, SilentProgress

REMEDIATION_FOLDER = "remediation"


@dataclass(frozen=True)
class GateResult:
    submitted: ScanResult
    remediation: RemediationResult | None  # None when the submitted model did not fail

    @property
    def verdict(self) -> Verdict:
        """The release's verdict: the remediated model's when there is one, else the submitted model's."""
        return self.remediation.after.verdict if self.remediation else self.submitted.verdict


def gate(
    request: RemediateRequest, *, progress: Progress | None = None, checkpoint: Checkpoint | None = None
) -> GateResult:
    """Scan ``request.model`` into OUT; on a fail, remediate into OUT/remediation and rewrite OUT/junit.xml
    with both models' rules (the submitted model's failures stay visible to CI). ``checkpoint``: the
    submitted model already loaded."""
    progress = progress or SilentProgress()
    out = Path(request.out)
    submitted, run = scan_model(request, request.model, progress=progress, checkpoint=checkpoint)
    publish_scan(submitted, run, out, sign_key=request.sign_key)
    if submitted.verdict != "fail":
        return GateResult(submitted=submitted, remediation=None)
    remediation = remediate(replace(request, out=out / REMEDIATION_FOLDER), progress, before=(submitted, run))
    write_atomic(out / "junit.xml", gate_junit_xml(submitted, remediation.after, remediation.remediated_model))
    return GateResult(submitted=submitted, remediation=remediation)
