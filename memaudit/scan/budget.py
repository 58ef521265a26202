"""A policy's budgets fitted to a stated time (``memaudit policy init --hours``).

The scan is prepared and one batch of each kind of work timed on the device (``planning.measure_request``);
the plan is then a pure function of the policy, so the sample sizes a policy may shrink are scaled by one
factor, found by bisection, to the largest that the plan fits in the time: the prompts the extraction
attack may attack (``max_prompts``), the prompts of the nearest-neighbour sample (no fewer than FID's
minimum needs), and the training studies membership inference scores (``max_train``; its holdout stays
whole, it is the calibration). Generations per prompt, sampling steps and triage over every prompt are
what the checks' sensitivity rests on: they are not cut, and when the plan still does not fit at the
smallest sizes the shortfall is said, with the stage that takes the time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from memaudit.errors import MemauditError
from memaudit.policy import Policy
from memaudit.policy.initial import InitialPolicy
from memaudit.scan.plan import PlanSizes, expected_attacked
from memaudit.scan.planning import Measured, measure_request
from memaudit.scan.request import ScanRequest

BISECTIONS = 40


@dataclass(frozen=True)
class Knob:
    path: tuple[str, str, str]  # checks.<check>.<setting>
    size: Callable[[Policy, PlanSizes], int]  # what the policy does now (None settings read as their count)
    smallest: Callable[[Policy], int]

    @property
    def name(self) -> str:
        return ".".join(self.path)

    def enabled(self, policy: Policy) -> bool:
        return getattr(policy.checks, self.path[1]).enabled


def _sample_floor(policy: Policy) -> int:
    fid, neighbour = policy.checks.fid, policy.checks.nearest_neighbour
    return math.ceil(fid.min_samples / neighbour.generations_per_prompt) if fid.enabled else 1


KNOBS = (
    Knob(("checks", "extraction", "max_prompts"), lambda p, s: expected_attacked(p, s)[1], lambda p: 1),
    Knob(
        ("checks", "nearest_neighbour", "max_prompts"),
        lambda p, s: min(s.train_prompts, p.checks.nearest_neighbour.max_prompts or s.train_prompts),
        _sample_floor,
    ),
    Knob(
        ("checks", "membership", "max_train"),
        lambda p, s: min(s.train_items, p.checks.membership.max_train or s.train_items),
        lambda p: 2,
    ),
)


@dataclass(frozen=True)
class BudgetFit:
    policy: Policy
    seconds: float  # the plan of ``policy``
    seconds_before: float  # the plan of the policy as given
    changes: list[str]  # one line per budget changed
    unmet: str | None  # why the time cannot be met, when it cannot


def scaled(policy: Policy, sizes: PlanSizes, scale: float) -> Policy:
    """``policy`` with every enabled knob at ``scale`` of its current size (never below its smallest)."""
    content = policy.model_dump(mode="json")
    for knob in KNOBS:
        if not knob.enabled(policy):
            continue
        size = knob.size(policy, sizes)
        value = max(min(knob.smallest(policy), size), min(size, math.floor(size * scale)))
        content["checks"][knob.path[1]][knob.path[2]] = value
    return Policy.model_validate(content)


def fit_budget(policy: Policy, measured: Measured, *, seconds: float) -> BudgetFit:
    """The largest budgets (one scale for all knobs) whose plan takes at most ``seconds``."""
    if seconds <= 0:
        raise ValueError(f"the time to fit must be positive, got {seconds} s")
    plan = measured.plan(policy)
    planned = plan.seconds
    if planned is None:
        untimed = ", ".join(stage.stage for stage in plan.stages if stage.seconds is None)
        raise MemauditError(
            f"the scan cannot be timed on {measured.costs.device}: no cost for {untimed} (its feature extractor "
            "could not be built: give checks.nearest_neighbour.extractor_weights, or start from a policy whose "
            "extractor runs here)"
        )
    if planned <= seconds:
        return BudgetFit(policy, planned, planned, [], None)
    smallest = scaled(policy, measured.sizes, 0.0)
    floor_plan = measured.plan(smallest)
    if floor_plan.seconds > seconds:
        stage = max(floor_plan.stages, key=lambda s: s.seconds or 0.0)
        unmet = (
            f"even at the smallest budgets the scan plans {_hours(floor_plan.seconds)}, over the "
            f"{_hours(seconds)} given; {stage.stage} alone takes {_hours(stage.seconds or 0.0)} ({stage.note})"
        )
        return BudgetFit(smallest, floor_plan.seconds, planned, _changes(policy, smallest, measured), unmet)
    low, high = 0.0, 1.0  # the plan of scale `low` fits, of `high` does not
    for _ in range(BISECTIONS):
        middle = (low + high) / 2
        if measured.plan(scaled(policy, measured.sizes, middle)).seconds <= seconds:
            low = middle
        else:
            high = middle
    fitted = scaled(policy, measured.sizes, low)
    return BudgetFit(fitted, measured.plan(fitted).seconds, planned, _changes(policy, fitted, measured), None)


def _changes(before: Policy, after: Policy, measured: Measured) -> list[str]:
    lines = []
    for knob in KNOBS:
        if not knob.enabled(before):
            continue
        old, new = knob.size(before, measured.sizes), knob.size(after, measured.sizes)
        if old != new:
            written = getattr(getattr(before.checks, knob.path[1]), knob.path[2])
            lines.append(f"{knob.name}: {written} -> {new} ({new:,} of {old:,} that the policy as given covers)")
    return lines


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def fit_initial_policy(written: InitialPolicy, request: ScanRequest, *, hours: float, progress=None) -> InitialPolicy:
    """``written`` (``policy init``'s policy) with its budgets fitted to ``hours`` of a scan of
    ``request.model`` on ``request.device``, the plan's figures stated in its comments."""
    import tempfile
    from dataclasses import replace
    from pathlib import Path

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "policy.yaml"
        path.write_text(written.text, encoding="utf-8")
        measured, policy = measure_request(replace(request, policy=path), progress=progress)
    fit = fit_budget(policy, measured, seconds=hours * 3600)
    costs = measured.costs
    said = (
        f"Budgets fitted to {hours:g} h on {costs.device} (one batch of each kind of work timed there; "
        f"{costs.unet_evaluation * 1000:.3g} ms per denoiser evaluation): the plan takes {_hours(fit.seconds)}"
    )
    if not fit.changes:
        header = [f"{said}; the policy's budgets fit as written."]
    else:
        header = [f"{said}, {_hours(fit.seconds_before)} as written. Sample sizes cut:"]
        header += [f"  {line}" for line in fit.changes]
    if fit.unmet:
        header.append(f"NOT met: {fit.unmet}")
    return written.amended(fit.policy, header=header, changes=fit.changes, unmet=[fit.unmet] if fit.unmet else [])
