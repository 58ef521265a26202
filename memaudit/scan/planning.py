"""``memaudit scan --plan``: prepare the scan as it would run (its input checks included: a plan refuses
what the scan refuses), time one real batch of each kind of work on the device and multiply by the
counts the policy implies (``memaudit.scan.plan``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from memaudit.checkpoint import Checkpoint
from memaudit.policy import Policy
from memaudit.scan.plan import DEFAULT_FEATURE_DIM, PlanSizes, ScanPlan, UnitCosts, plan_scan
from memaudit.scan.plan_costs import measure_costs, plan_sizes
from memaudit.scan.progress import Progress
from memaudit.scan.request import ScanRequest
from memaudit.scan.run import prepare_scan


@dataclass(frozen=True)
class Measured:
    """A scan prepared as it would run and its unit costs timed on the device: what any plan of it multiplies."""

    sizes: PlanSizes
    costs: UnitCosts
    model_bytes: int
    feature_dim: int
    with_before: bool
    with_reference: bool
    start_seconds: float

    def plan(self, policy: Policy) -> ScanPlan:
        """The plan of ``policy`` on these inputs at these costs (the policy may differ in its budgets)."""
        return plan_scan(
            policy,
            self.sizes,
            costs=self.costs,
            model_bytes=self.model_bytes,
            feature_dim=self.feature_dim,
            with_before=self.with_before,
            with_reference=self.with_reference,
            start_seconds=self.start_seconds,
        )


def measure_request(
    request: ScanRequest,
    *,
    progress: Progress | None = None,
    checkpoint: Checkpoint | None = None,
    process_started: float | None = None,
) -> tuple[Measured, Policy]:
    """Prepare the scan (its input checks included), time one real batch of each kind of work; (what was
    measured, the policy as the scan would run it: family defaults applied)."""
    began = time.time() if process_started is None else process_started
    prepared = prepare_scan(request, progress=progress, checkpoint=checkpoint)
    start_seconds = time.time() - began
    context = prepared.context
    released = len(prepared.released) if prepared.released is not None else 0
    model_bytes = 0
    if context.pipeline is not None:
        parts = context.pipeline.components().values()
        model_bytes = sum(p.numel() * p.element_size() for part in parts for p in part.parameters())
    costs = measure_costs(context)
    measured = Measured(
        sizes=plan_sizes(context, released_images=released),
        costs=costs,
        model_bytes=model_bytes,
        feature_dim=context.extractor.feature_dim if costs.feature_extraction else DEFAULT_FEATURE_DIM,
        with_before=prepared.before is not None,
        with_reference=context.reference is not None,
        start_seconds=start_seconds,
    )
    return measured, context.policy


def plan_request(
    request: ScanRequest,
    *,
    progress: Progress | None = None,
    checkpoint: Checkpoint | None = None,
    process_started: float | None = None,
) -> ScanPlan:
    """What ``run_scan(request)`` will cost: its counts, disk and memory, and times from one real batch.
    The scan's start (reading manifests and digests, loading the model) is measured, not estimated: the
    time this call took to prepare, counted from ``process_started`` (``time.time()`` when the process
    began, as the CLI passes) if given, so that imports count too."""
    measured, policy = measure_request(
        request, progress=progress, checkpoint=checkpoint, process_started=process_started
    )
    return measured.plan(policy)
