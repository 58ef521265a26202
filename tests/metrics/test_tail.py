"""Tail p-values beyond the holdout's resolution and the Benjamini-Hochberg family test."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.stats import false_discovery_control

from memaudit.metrics.calibration import order_statistic_bound
from memaudit.metrics.tail import benjamini_hochberg, fit_lower_tail, tail_size


def _power_law(n: int, dimension: float, seed: int) -> torch.Tensor:
    """Values with P(D <= x) = x^dimension on [0, 1]: the lower tail of nearest-neighbour distances
    to a set with a local density in ``dimension`` dimensions."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, generator=generator, dtype=torch.float64) ** (1.0 / dimension)


def test_conformal_p_values_count_the_holdout_values_at_or_below():
    tail = fit_lower_tail(torch.tensor([1.0, 2.0, 3.0]), confidence=0.95, k=0)
    assert tail.k == 0
    assert tail.p_value(0.5) == pytest.approx(1 / 4)
    assert tail.p_value(2.0) == pytest.approx(3 / 4)  # ties count: the holdout reaches 2.0
    assert tail.p_value(9.0) == pytest.approx(1.0)


def test_the_hill_estimate_recovers_the_exponent_of_a_power_law():
    for dimension in (2.0, 8.0, 30.0):
        tail = fit_lower_tail(_power_law(20_000, dimension, seed=1), confidence=0.95, k=400)
        assert tail.dimension == pytest.approx(dimension, rel=0.15)
        assert tail.dimension_low < tail.dimension


def test_the_lower_bound_on_the_exponent_covers_it_at_the_stated_confidence():
    covered = [
        fit_lower_tail(_power_law(400, 10.0, seed=seed), confidence=0.95).dimension_low <= 10.0 for seed in range(400)
    ]
    # Exact for a power law: 2k d / d_hat is chi-square(2k); 400 draws put the share within 0.93-0.97.
    assert 0.92 <= np.mean(covered) <= 0.98


def test_the_anchor_is_the_kth_smallest_value_with_its_order_statistic_bound():
    values = _power_law(300, 12.0, seed=3)
    tail = fit_lower_tail(values, confidence=0.95)
    assert tail.k == tail_size(300) == 17
    assert tail.anchor == pytest.approx(float(torch.sort(values).values[16]))
    assert tail.anchor_bound == pytest.approx(order_statistic_bound(300, 17, 0.95))


def test_tail_p_values_are_valid_for_fresh_draws_below_the_holdout_resolution():
    """P(p <= t) <= t for unseen values from the same law, at t far below 1 / (n + 1)."""
    tail = fit_lower_tail(_power_law(300, 12.0, seed=4), confidence=0.95)
    fresh = _power_law(200_000, 12.0, seed=5).tolist()
    p_values = np.array([tail.p_value(x) for x in fresh])
    for level in (1e-2, 3e-3, 1e-3, 1e-4):
        assert np.mean(p_values <= level) <= level * 1.2 + 2e-5


def test_a_byte_copy_has_p_value_zero_and_a_near_twin_does_not():
    tail = fit_lower_tail(_power_law(300, 12.0, seed=6), confidence=0.95)
    smallest = tail.values[0]
    assert tail.p_value(0.0) == 0.0
    assert 1e-4 < tail.p_value(0.97 * smallest) <= 1 / 301
    assert tail.p_value(0.3 * smallest) < 1e-6


def test_p_values_never_decrease_with_the_distance():
    tail = fit_lower_tail(_power_law(200, 6.0, seed=7), confidence=0.95)
    grid = np.linspace(0.0, 1.1, 2_000)
    p_values = [tail.p_value(float(x)) for x in grid]
    assert all(a <= b for a, b in itertools.pairwise(p_values))


@pytest.mark.parametrize(
    "values",
    [torch.tensor([0.5, 0.7]), torch.tensor([0.0, 0.0, 0.0, 0.4, 0.5]), torch.tensor([0.3] * 10)],
    ids=["two values", "zeros in the tail", "all equal"],
)
def test_no_power_law_is_fitted_where_the_tail_has_no_shape(values):
    tail = fit_lower_tail(values, confidence=0.95)
    assert tail.k == 0 and tail.anchor is None
    assert all(tail.p_value(x) == tail.conformal_p_value(x) for x in (0.0, 0.1, 0.45, 0.9))


def test_negative_distances_and_bad_confidence_are_refused():
    with pytest.raises(ValueError, match="non-negative"):
        fit_lower_tail(torch.tensor([-0.1, 0.2, 0.3]), confidence=0.95)
    with pytest.raises(ValueError, match="confidence"):
        fit_lower_tail(torch.tensor([0.1, 0.2, 0.3]), confidence=1.0)


def test_benjamini_hochberg_known_answer():
    # m = 4, alpha = 0.05: cuts 0.0125, 0.025, 0.0375, 0.05; the third p-value (0.03) is the last under its cut.
    assert benjamini_hochberg([0.03, 0.5, 0.001, 0.02], 0.05) == [True, False, True, True]
    assert benjamini_hochberg([0.2, 0.3], 0.05) == [False, False]
    assert benjamini_hochberg([], 0.05) == []


def test_benjamini_hochberg_agrees_with_scipy():
    rng = np.random.default_rng(8)
    for _ in range(50):
        p_values = np.concatenate([rng.uniform(size=30), rng.uniform(0, 0.01, size=rng.integers(0, 10))])
        ours = benjamini_hochberg(p_values.tolist(), 0.05)
        assert ours == (false_discovery_control(p_values, method="bh") <= 0.05).tolist()


def test_under_the_complete_null_any_selection_is_as_rare_as_alpha():
    """Innocent releases: m candidates drawn like the holdout; the chance that BH selects any is <= alpha."""
    rejections = 0
    for seed in range(300):
        tail = fit_lower_tail(_power_law(300, 12.0, seed=10_000 + seed), confidence=0.95)
        release = _power_law(24, 12.0, seed=20_000 + seed).tolist()
        rejections += any(benjamini_hochberg([tail.p_value(x) for x in release], 0.05))
    assert rejections / 300 <= 0.05
