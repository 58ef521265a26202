"""Calibrate a check's threshold on the holdout with the policy's confidence, and say how (DESIGN 3.5)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from memaudit.metrics.calibration import Tail, calibrate, minimum_holdout
from memaudit.results.scan_result import CalibrationRecord
from memaudit.scan.context import ScanContext


@dataclass(frozen=True)
class Calibrated:
    threshold: float
    record: CalibrationRecord
    warnings: list[str]


def calibrated_threshold(
    context: ScanContext, values: torch.Tensor, *, false_alarm: float, tail: Tail, what: str
) -> Calibrated:
    """The order-statistic threshold of ``values``; a holdout too small is an error unless the policy
    accepts a warning, which then travels with the check's outcome."""
    settings = context.policy.calibration
    result = calibrate(
        values,
        false_alarm=false_alarm,
        confidence=settings.confidence,
        tail=tail,
        allow_small=settings.small_holdout == "warn",
        what=what,
    )
    record = CalibrationRecord(
        tail=tail,
        n=result.n,
        k=result.k,
        false_alarm=result.false_alarm,
        confidence=result.confidence,
        bound=result.bound,
        sufficient=result.sufficient,
    )
    warnings = []
    if not result.sufficient:
        warnings.append(
            f"{what} rests on {result.n} holdout values: at {result.confidence:g} confidence it keeps false "
            f"alarms under {result.bound:.3g}, not {false_alarm:g} (that needs "
            f"{minimum_holdout(false_alarm, result.confidence)})"
        )
    return Calibrated(threshold=result.threshold, record=record, warnings=warnings)
