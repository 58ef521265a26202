"""Holdout calibration as a statement with numbers: every threshold is an order statistic of n holdout
values, chosen so that, at a stated confidence, the share of unseen items falling beyond it is at
most the policy's false-alarm share q.

Distribution-free: for continuous values, the probability mass F(v_(k)) below the k-th smallest of n
values is Beta(k, n + 1 - k) distributed, so P(F(v_(k)) <= q) = P(Binomial(n, q) >= k). The threshold
is the k-th smallest value (the k-th largest for an upper tail) with the largest k for which that
probability is at least the confidence. Below ``minimum_holdout(q, confidence)`` values no k qualifies:
the holdout cannot estimate the quantile, which is an error unless the policy accepts a warning (then
k = 1 and the bound achieved, larger than q, is stated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

Tail = Literal["lower", "upper"]  # lower: items below the threshold alarm; upper: items above it


class CalibrationError(ValueError):
    """A holdout too small to calibrate a threshold at the asked quantile and confidence."""


@dataclass(frozen=True)
class Calibration:
    threshold: float
    n: int  # holdout values
    k: int  # the threshold is the k-th smallest (lower tail) or k-th largest (upper tail) value
    false_alarm: float  # q: the share of unseen items beyond the threshold the policy accepts
    confidence: float
    bound: float  # at ``confidence``, the share of unseen items beyond the threshold is at most this
    sufficient: bool  # bound <= false_alarm; False only when a small holdout was accepted with a warning


def _log_pmf(successes: int, trials: int, probability: float) -> float:
    """log P(Binomial(trials, probability) = successes), for 0 < probability < 1."""
    return (
        math.lgamma(trials + 1)
        - math.lgamma(successes + 1)
        - math.lgamma(trials - successes + 1)
        + successes * math.log(probability)
        + (trials - successes) * math.log1p(-probability)
    )


def binomial_cdf(successes: int, trials: int, probability: float) -> float:
    """P(Binomial(trials, probability) <= successes), summed in log space (exact for any trials)."""
    if successes < 0:
        return 0.0
    if successes >= trials or probability <= 0.0:
        return 1.0
    if probability >= 1.0:
        return 0.0
    terms = [_log_pmf(i, trials, probability) for i in range(successes + 1)]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(term - top) for term in terms))


def minimum_holdout(false_alarm: float, confidence: float) -> int:
    """The fewest holdout values for which the smallest one bounds ``false_alarm`` at ``confidence``."""
    _check_probabilities(false_alarm, confidence)
    return math.ceil(math.log(1.0 - confidence) / math.log1p(-false_alarm))


def _order(n: int, false_alarm: float, confidence: float) -> int:
    """The largest k with P(Binomial(n, q) <= k - 1) <= 1 - confidence; 0 when none qualifies.

    The CDF is accumulated term by term, so this is linear in k (n = 10^5 takes milliseconds).
    """
    cumulative, k = 0.0, 0
    while k < n:
        cumulative += math.exp(_log_pmf(k, n, false_alarm))
        if cumulative > (1.0 - confidence) * (1.0 + 1e-12):  # equality qualifies, whatever the sum rounds to
            break
        k += 1
    return k


def order_statistic_bound(n: int, k: int, confidence: float) -> float:
    """The ``confidence`` quantile of Beta(k, n + 1 - k): solve P(Binomial(n, b) >= k) = confidence."""
    low, high = 0.0, 1.0
    for _ in range(100):
        middle = (low + high) / 2
        if 1.0 - binomial_cdf(k - 1, n, middle) < confidence:
            low = middle
        else:
            high = middle
    return high


def _check_probabilities(false_alarm: float, confidence: float) -> None:
    if not 0.0 < false_alarm < 1.0:
        raise ValueError(f"`false_alarm` must be in (0, 1), got {false_alarm}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"`confidence` must be in (0, 1), got {confidence}")


def calibrate(
    holdout_values: torch.Tensor,
    *,
    false_alarm: float,
    confidence: float,
    tail: Tail,
    allow_small: bool = False,
    what: str = "threshold",
) -> Calibration:
    """The order-statistic threshold of ``holdout_values`` for ``tail`` (see the module docstring)."""
    _check_probabilities(false_alarm, confidence)
    values = holdout_values.double().flatten()
    n = values.numel()
    if n == 0:
        raise CalibrationError(f"{what}: calibration needs at least one holdout value")
    k = _order(n, false_alarm, confidence)
    sufficient = k >= 1
    if not sufficient:
        if not allow_small:
            raise CalibrationError(
                f"{what}: {n} holdout values cannot bound a false-alarm share of {false_alarm:g} at "
                f"{confidence:g} confidence; that needs at least {minimum_holdout(false_alarm, confidence)} "
                "(or set calibration.small_holdout: warn in the policy)"
            )
        k = 1
    ordered = torch.sort(values, descending=tail == "upper").values
    return Calibration(
        threshold=float(ordered[k - 1]),
        n=n,
        k=k,
        false_alarm=false_alarm,
        confidence=confidence,
        bound=order_statistic_bound(n, k, confidence),
        sufficient=sufficient,
    )


def binomial_exceedance(successes: int, trials: int, rate: float) -> float:
    """One-sided p-value P(Binomial(trials, rate) >= successes): how surprising ``successes`` would be
    if the true rate were ``rate``."""
    return 1.0 - binomial_cdf(successes - 1, trials, rate)


def holdout_quantile(holdout_values: torch.Tensor, quantile: float) -> float:
    """The interpolated ``quantile`` of the holdout values, in float64 (descriptive use only: thresholds
    come from ``calibrate``)."""
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"`quantile` must be in (0, 1), got {quantile}")
    if holdout_values.numel() == 0:
        raise ValueError("calibration needs at least one holdout value")
    return float(torch.quantile(holdout_values.double().flatten(), quantile))
