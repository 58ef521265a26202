"""The gate in one step: scan the submitted model; if it fails the policy, remediate it (MemControl),
re-scan, and judge the release by the remediated model, recording that the submitted one failed."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from memaudit.checkpoint import Checkpoint, load_checkpoint
from memaudit.checkpoint.base_check import check_base
from memaudit.publish import Published, publish_scan
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
    published: Published  # OUT's files (the submitted model's scan, the gate's junit.xml)

    @property
    def verdict(self) -> Verdict:
        """The release's verdict: the remediated model's when there is one, else the submitted model's."""
        return self.remediation.after.verdict if self.remediation else self.submitted.verdict


def gate(
    request: RemediateRequest, *, progress: Progress | None = None, checkpoint: Checkpoint | None = None
) -> GateResult:
    """Scan ``request.model``; on a fail, remediate into OUT/remediation. OUT's files are published last,
    all at once: the submitted model's scan, and on a fail a junit.xml with both models' rules (the
    submitted model's failures stay visible to CI). Until then the submitted scan's work folder stays,
    so a gate that stops during the remediation reruns without scanning again. The base is checked
    first (``check_base``). ``checkpoint``: the submitted model already loaded."""
    progress = progress or SilentProgress()
    out = Path(request.out)
    if checkpoint is None:
        checkpoint = load_checkpoint(
            request.model,
            config_dir=request.config_dir,
            allow_pickle=request.allow_pickle,
            adapters=list(request.adapters),
        )
    check_base(request.base, checkpoint, allow_pickle=request.allow_pickle)  # before the scan, not after it
    finished = scan_model(request, request.model, progress=progress, checkpoint=checkpoint)
    submitted, run = finished.result, finished.run
    remediation, replace_files, ours = None, {}, ()
    with finished.publishing():
        if submitted.verdict == "fail":
            remediation = remediate(replace(request, out=out / REMEDIATION_FOLDER), progress, before=(submitted, run))
            junit = gate_junit_xml(submitted, remediation.after, remediation.remediated_model)
            replace_files, ours = {"junit.xml": junit}, (REMEDIATION_FOLDER,)
        published = publish_scan(submitted, run, out, sign_key=request.sign_key, replace=replace_files, ours=ours)
    return GateResult(submitted=submitted, remediation=remediation, published=published)
