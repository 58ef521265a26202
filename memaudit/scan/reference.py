"""The membership check's reference: the base the model was fine-tuned from (``--base``), loaded and
checked against the model's family and block layout before any scan work."""

from __future__ import annotations

from memaudit.checkpoint import Checkpoint, load_checkpoint
from memaudit.checkpoint.base_check import check_base
from memaudit.policy import Policy
from memaudit.scan.progress import Progress
from memaudit.scan.request import ScanRequest, sampling_dtype


def load_reference(
    request: ScanRequest, checkpoint: Checkpoint, *, policy: Policy, progress: Progress
) -> Checkpoint | None:
    """The base, checked against the model and on the scan's device, when the membership check calibrates
    against it: ``--base``, else for a model given as adapters over a base that base itself (MODEL without
    its adapters: exactly what the adapters were trained from); None otherwise (a --base this policy does
    not use is said, not loaded)."""
    settings = policy.checks.membership
    wanted = settings.enabled and settings.reference == "base"
    if request.base is None:
        if not (wanted and request.adapters):
            return None
        progress.note(f"membership reference: {request.model} without its adapters")
        base = load_checkpoint(request.model, config_dir=request.config_dir, allow_pickle=request.allow_pickle)
    elif not wanted:
        # Said, not refused: the same --base may serve a remediation (the gate), which is not this scan's concern.
        progress.note(
            f"note: --base {request.base} is not this scan's membership reference: the policy's membership check "
            "does not calibrate against a base"
        )
        return None
    else:
        base = check_base(request.base, checkpoint, allow_pickle=request.allow_pickle)
    base.pipeline = base.pipeline.to(request.device).to(sampling_dtype(policy.sampling.dtype, request.device))
    return base
