"""Whether a family test over m candidates can single out anything at a holdout's size (DESIGN 3.5, 3.8).

With n holdout values no conformal p-value falls below 1 / (n + 1), and the Benjamini-Hochberg step-up at
level alpha over m candidates selects k of them only when k of their p-values are at most alpha k / m. At
the conformal floor alone, then, nothing is selected unless at least ceil(m / (alpha (n + 1))) candidates
reach it together: with n = 300, m = 1,497 and alpha = 1%, about 500. The lower-tail fit (metrics.tail)
extrapolates below the floor, so one clear outlier can be selected alone; without a fit, a rule on the
count can pass but never fail, and is not applicable at these sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from memaudit.metrics.tail import LowerTail


@dataclass(frozen=True)
class IdentificationPower:
    holdout: int  # n: holdout values the p-values come from
    candidates: int  # m: hypotheses the family test runs over
    alpha: float
    conformal_floor: float  # 1 / (n + 1): the smallest p-value the holdout gives without extrapolation
    extrapolates: bool  # a lower tail was fitted: p-values below the floor are possible
    fewest_at_floor: int  # without extrapolation, selections happen only this many at a time

    @property
    def can_identify(self) -> bool:
        return self.candidates > 0 and (self.extrapolates or self.fewest_at_floor <= self.candidates)

    @property
    def holdout_for_one(self) -> int:
        """The holdout size at which one candidate at the conformal floor is selected alone."""
        return max(0, math.ceil(self.candidates / self.alpha) - 1)

    def statement(self) -> str:
        """What the family test can do at these sizes, for a person."""
        floor = f"the smallest p-value {self.holdout} holdout values give is 1/{self.holdout + 1}"
        if self.extrapolates:
            return f"{floor}; below it p-values extrapolate the holdout's lower tail: one clear outlier can be named"
        if self.can_identify:
            return (
                f"{floor} and no lower tail could be fitted: the family test over {self.candidates} singles out "
                f"studies only {self.fewest_at_floor} or more at a time"
            )
        return (
            f"{floor} and no lower tail could be fitted: over {self.candidates} candidates at level {self.alpha:g} "
            f"nothing can be singled out (one alone needs a holdout of {self.holdout_for_one:,})"
        )


def identification_power(tail: LowerTail, *, candidates: int, alpha: float) -> IdentificationPower:
    """What BH at ``alpha`` over ``candidates`` p-values from ``tail`` can select."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"`alpha` must be in (0, 1), got {alpha}")
    if candidates < 0:
        raise ValueError(f"`candidates` must be non-negative, got {candidates}")
    floor = 1.0 / (tail.n + 1)
    return IdentificationPower(
        holdout=tail.n,
        candidates=candidates,
        alpha=alpha,
        conformal_floor=floor,
        extrapolates=tail.k > 0,
        fewest_at_floor=math.ceil(floor * candidates / alpha - 1e-12),
    )
