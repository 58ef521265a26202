"""How unusual a small distance is, beyond what a holdout can resolve, and which of many candidates are
significant together (DESIGN 3.5-3.6).

A candidate at distance x from its nearest training image is judged by how often an unseen image comes
that close. The conformal p-value (1 + #{holdout values <= x}) / (n + 1) is exact for exchangeable data
but never falls below 1 / (n + 1): with 300 holdout images a byte copy (x = 0) and an unseen near-twin
just below the smallest holdout distance look alike. Below the k-th smallest holdout value the p-value
therefore extrapolates the lower tail as a power law. Nearest-neighbour distances to a set with a
local density in d dimensions satisfy P(D <= x) ~ c * x^d as x -> 0; d is estimated by the Hill
(Levina-Bickel) estimator on the k smallest values and lowered to its one-sided confidence bound (for
an exact power law, 2k * d / d_hat is chi-square with 2k degrees of freedom), and the anchor
P(D <= v_(k)) is raised to its order-statistic bound. Both err towards larger p-values. This is the one
modelled step of the calibration; the report states k, the anchor and both exponents.

Over m candidates (every attacked prompt, or every image of a release), the Benjamini-Hochberg step-up
at level alpha selects the significant ones. When nothing is copied every hypothesis is null, and then
the chance that any candidate is selected is at most alpha (BH controls the false discovery rate, which
under the complete null is the family-wise error; positively dependent p-values, as these are through
the shared holdout, keep the guarantee). When many are copied the cut relaxes towards alpha per
candidate, so a memorizer keeps its extractions.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from scipy.stats import chi2

from memaudit.metrics.calibration import order_statistic_bound


@dataclass(frozen=True)
class LowerTail:
    """The holdout's lower tail: conformal p-values, and a power law below its k-th smallest value."""

    values: tuple[float, ...]  # holdout values, ascending
    k: int  # values in the tail fit; 0 when no power law could be fitted
    anchor: float | None  # the k-th smallest value, where the extrapolation starts
    anchor_bound: float | None  # at the confidence, P(D <= anchor) is at most this
    dimension: float | None  # the Hill estimate of the exponent
    dimension_low: float | None  # its one-sided lower confidence bound, the exponent used

    @property
    def n(self) -> int:
        return len(self.values)

    def conformal_p_value(self, x: float) -> float:
        return (1 + bisect.bisect_right(self.values, x)) / (self.n + 1)

    def p_value(self, x: float) -> float:
        """P(an unseen item's value <= x), conservatively: conformal, extrapolated below the anchor."""
        conformal = self.conformal_p_value(x)
        if self.anchor is None or x >= self.anchor:
            return conformal
        if x <= 0.0:
            return 0.0
        return min(conformal, self.anchor_bound * (x / self.anchor) ** self.dimension_low)


def tail_size(n: int) -> int:
    """Values in the Hill fit: about sqrt(n) (a bias-variance compromise), at least 2, at most n - 1."""
    return max(2, min(n - 1, round(math.sqrt(n))))


def fit_lower_tail(values: torch.Tensor, *, confidence: float, k: int | None = None) -> LowerTail:
    """Fit the lower tail of non-negative ``values`` (see the module docstring).

    No power law is fitted (k = 0, conformal p-values only) below 3 values or when any of the k + 1
    smallest is 0, e.g. a holdout that overlaps training data where the policy allows it.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"`confidence` must be in (0, 1), got {confidence}")
    ordered = torch.sort(values.double().flatten()).values
    if ordered.numel() and float(ordered[0]) < 0:
        raise ValueError(f"values must be non-negative distances, got {float(ordered[0])}")
    n = ordered.numel()
    plain = LowerTail(tuple(ordered.tolist()), 0, None, None, None, None)
    k = tail_size(n) if k is None and n >= 3 else k
    if k is None or not 2 <= k < n or float(ordered[0]) <= 0.0:
        return plain
    spread = float(torch.log(ordered[k] / ordered[:k]).sum())
    if spread <= 0.0:  # the k + 1 smallest are equal: no tail shape to estimate
        return plain
    dimension = k / spread
    return LowerTail(
        values=plain.values,
        k=k,
        anchor=float(ordered[k - 1]),
        anchor_bound=order_statistic_bound(n, k, confidence),
        dimension=dimension,
        dimension_low=dimension * float(chi2.ppf(1.0 - confidence, 2 * k)) / (2 * k),
    )


def benjamini_hochberg(p_values: Sequence[float], alpha: float) -> list[bool]:
    """Which hypotheses the Benjamini-Hochberg step-up rejects at level ``alpha``, in input order."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"`alpha` must be in (0, 1), got {alpha}")
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    cut = 0
    for rank, index in enumerate(order, start=1):
        if p_values[index] <= rank * alpha / m:
            cut = rank
    selected = set(order[:cut])
    return [i in selected for i in range(m)]
