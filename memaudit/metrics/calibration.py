"""Holdout calibration: every memaudit threshold is a quantile of what unseen real data scores.

One definition for all checks: linear interpolation between order statistics (numpy's default).
"""

from __future__ import annotations

import torch


def holdout_quantile(holdout_values: torch.Tensor, quantile: float) -> float:
    """The ``quantile`` of the holdout values, in float64."""
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"`quantile` must be in (0, 1), got {quantile}")
    if holdout_values.numel() == 0:
        raise ValueError("calibration needs at least one holdout value")
    return float(torch.quantile(holdout_values.double().flatten(), quantile))
