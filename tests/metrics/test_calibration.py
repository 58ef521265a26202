"""Order-statistic calibration: known answers, and the binomial/beta arithmetic against scipy."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import beta, binom

from memaudit.metrics.calibration import (
    CalibrationError,
    binomial_cdf,
    binomial_exceedance,
    calibrate,
    minimum_holdout,
)


@pytest.mark.parametrize(("successes", "trials", "probability"), [(0, 10, 0.1), (3, 100, 0.05), (20, 1000, 0.01),
                                                                   (4887, 100_000, 0.05), (7, 24, 0.1)])  # fmt: skip
def test_binomial_cdf_matches_scipy(successes, trials, probability):
    assert binomial_cdf(successes, trials, probability) == pytest.approx(binom.cdf(successes, trials, probability))
    assert binomial_exceedance(successes, trials, probability) == pytest.approx(
        binom.sf(successes - 1, trials, probability)
    )


@pytest.mark.parametrize(("false_alarm", "confidence", "expected"), [(0.01, 0.95, 299), (0.05, 0.95, 59),
                                                                     (0.03, 0.95, 99), (0.01, 0.99, 459)])  # fmt: skip
def test_minimum_holdout_is_where_the_smallest_value_first_qualifies(false_alarm, confidence, expected):
    assert minimum_holdout(false_alarm, confidence) == expected
    assert (1 - false_alarm) ** expected <= 1 - confidence < (1 - false_alarm) ** (expected - 1)


@pytest.mark.parametrize("n", [59, 100, 300, 1000, 5000])
@pytest.mark.parametrize("false_alarm", [0.01, 0.05])
def test_the_order_and_bound_agree_with_the_beta_distribution(n, false_alarm):
    values = torch.randperm(n).double()  # 0..n-1, shuffled: the k-th smallest is k - 1
    if n < minimum_holdout(false_alarm, 0.95):
        with pytest.raises(CalibrationError, match=f"needs at least {minimum_holdout(false_alarm, 0.95)}"):
            calibrate(values, false_alarm=false_alarm, confidence=0.95, tail="lower")
        return
    result = calibrate(values, false_alarm=false_alarm, confidence=0.95, tail="lower")
    k = result.k
    # F(v_(k)) ~ Beta(k, n + 1 - k): at least 95% sure it is within the false-alarm share, and k is the largest such.
    assert beta.cdf(false_alarm, k, n + 1 - k) >= 0.95 - 1e-9
    assert k == n or beta.cdf(false_alarm, k + 1, n - k) < 0.95
    assert result.threshold == k - 1 and result.sufficient
    assert result.bound == pytest.approx(beta.ppf(0.95, k, n + 1 - k), rel=1e-6)
    assert result.bound <= false_alarm


def test_upper_tail_counts_from_the_top():
    values = torch.arange(100).double()
    result = calibrate(values, false_alarm=0.03, confidence=0.95, tail="upper")
    assert (result.k, result.threshold) == (1, 99.0)
    result = calibrate(values, false_alarm=0.05, confidence=0.95, tail="upper")
    assert (result.k, result.threshold) == (2, 98.0)


def test_a_small_holdout_is_an_error_naming_the_size_needed_or_a_stated_warning():
    values = torch.arange(24).double()
    with pytest.raises(CalibrationError, match="24 holdout values cannot bound .* 0.01 .* needs at least 299"):
        calibrate(values, false_alarm=0.01, confidence=0.95, tail="lower")
    result = calibrate(values, false_alarm=0.01, confidence=0.95, tail="lower", allow_small=True)
    assert (result.k, result.threshold, result.sufficient) == (1, 0.0, False)
    assert result.bound == pytest.approx(1 - 0.05 ** (1 / 24))  # about 0.117, stated rather than hidden


def test_unseen_items_from_the_same_distribution_rarely_fall_beyond_the_threshold():
    """Simulation: over many holdouts, the threshold's true false-alarm share exceeds q at most ~5% of the time."""
    generator = torch.Generator().manual_seed(0)
    exceed = 0
    for _ in range(400):
        holdout = torch.rand(300, generator=generator, dtype=torch.float64)  # uniform: F(t) = t
        threshold = calibrate(holdout, false_alarm=0.01, confidence=0.95, tail="lower").threshold
        exceed += threshold > 0.01
    assert exceed / 400 <= 0.08  # 5% expected; 400 draws leave room for chance
