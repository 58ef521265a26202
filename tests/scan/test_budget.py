"""Budgets fitted to a time: the largest sample sizes whose plan fits, known answers on set costs."""

from __future__ import annotations

import pytest

from memaudit.policy import load_policy
from memaudit.scan.budget import fit_budget, scaled
from memaudit.scan.plan import PlanSizes, UnitCosts
from memaudit.scan.planning import Measured

SIZES = PlanSizes(
    train_prompts=2000, train_rows=2000, train_images=2000, train_items=2000,
    holdout_prompts=300, holdout_rows=300, holdout_items=300, comparison_side=64,
)  # fmt: skip
COSTS = UnitCosts(
    device="cpu", unet_evaluation=0.01, vae_decode=0.0, vae_encode=0.0, feature_extraction=0.0,
    tiled_l2_comparison=0.0, image_load=0.0,
)  # fmt: skip


def _measured() -> Measured:
    return Measured(
        sizes=SIZES, costs=COSTS, model_bytes=0, feature_dim=8, with_before=False, with_reference=False,
        start_seconds=0.0,
    )  # fmt: skip


def test_a_policy_that_fits_is_left_as_it_is():
    policy = load_policy("research").policy
    measured = _measured()
    planned = measured.plan(policy).seconds
    fit = fit_budget(policy, measured, seconds=planned + 1)
    assert fit.policy == policy and fit.changes == [] and fit.unmet is None and fit.seconds == planned


def test_the_fitted_budgets_are_the_largest_that_fit():
    policy = load_policy("research").policy
    measured = _measured()
    planned = measured.plan(policy).seconds
    floor = measured.plan(scaled(policy, SIZES, 0.0)).seconds
    allowed = (planned + floor) / 2
    fit = fit_budget(policy, measured, seconds=allowed)
    assert fit.seconds <= allowed < planned and fit.seconds_before == planned and fit.unmet is None
    assert fit.changes and all("->" in line for line in fit.changes)
    from memaudit.scan.plan import expected_attacked

    scale = expected_attacked(fit.policy, SIZES)[1] / expected_attacked(policy, SIZES)[1]
    assert measured.plan(scaled(policy, SIZES, scale + 0.01)).seconds > allowed  # 1% more would not fit


def test_a_time_even_the_smallest_budgets_miss_names_the_stage_that_takes_it():
    policy = load_policy("research").policy
    fit = fit_budget(policy, _measured(), seconds=1.0)
    assert fit.unmet is not None and "even at the smallest budgets" in fit.unmet and "triage alone takes" in fit.unmet
    assert fit.policy.checks.extraction.max_prompts == 1
    with pytest.raises(ValueError, match="positive"):
        fit_budget(policy, _measured(), seconds=0)
