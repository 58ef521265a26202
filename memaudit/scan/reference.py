"""The membership check's reference: the base the model was fine-tuned from (``--base``), loaded and
checked against the model's family and block layout before any scan work."""

from __future__ import annotations

from memaudit.checkpoint import Checkpoint
from memaudit.checkpoint.base_check import check_base
from memaudit.policy import Policy
from memaudit.scan.progress import Progress
from memaudit.scan.request import ScanRequest, sampling_dtype


def load_reference(
    request: ScanRequest, checkpoint: Checkpoint, *, policy: Policy, progress: Progress
) -> Checkpoint | None:
    """The base (``--base``), checked against the model and on the scan's device, when the membership check
    calibrates against it; None otherwise (a --base this policy does not use is said, not loaded)."""
    if request.base is None:
        return None
    settings = policy.checks.membership
    if not (settings.enabled and settings.reference == "base"):
        progress.note(f"note: --base {request.base} is not used: this policy's membership check has no base reference")
        return None
    base = check_base(request.base, checkpoint, allow_pickle=request.allow_pickle)
    base.pipeline = base.pipeline.to(request.device).to(sampling_dtype(policy.sampling.dtype, request.device))
    return base
